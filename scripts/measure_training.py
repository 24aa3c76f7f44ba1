"""Training throughput with and without length grouping and bf16, measured side by side in one run.

Usage: python scripts/measure_training.py [TRAIN_JSONL] [N]   (default: ../shared/data/sst2_sentence, 1,000 rows)
Each configuration trains MiniLM for one epoch on the same N rows; the order is interleaved (A B C D A B C D)
so that machine drift hits every configuration alike. Prints samples/s per configuration and their ratios.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from baton.training import TrainConfig, run_training

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/data/sst2_sentence/train.jsonl"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    configs = {
        "grouped, fp32": {"group_by_length": True, "bf16": "off"},
        "ungrouped, fp32": {"group_by_length": False, "bf16": "off"},
        "grouped, bf16": {"group_by_length": True, "bf16": "on"},
        "ungrouped, bf16": {"group_by_length": False, "bf16": "on"},
    }
    speeds: dict[str, list[float]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.jsonl"
        data.write_text("".join(source.read_text().splitlines(keepends=True)[:n]))
        for _round in range(2):
            for name, extra in configs.items():
                result = run_training(
                    TrainConfig(
                        train_file=str(data),
                        output_dir=str(Path(tmp) / "run"),
                        epochs=1,
                        baseline=False,
                        overwrite=True,
                        patience=0,
                        **extra,  # type: ignore[arg-type]
                    )
                )
                speeds[name].append(result.metrics["training"]["train_samples_per_second"])
                print(json.dumps({"config": name, "samples_per_s": speeds[name][-1]}), flush=True)
    base = statistics.median(speeds["grouped, fp32"])
    print("\n| configuration | samples/s (median of 2) | vs grouped fp32 |\n|---|---|---|")
    for name, values in speeds.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()

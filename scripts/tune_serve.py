"""Compare `baton serve` flag sets side by side: 1 and 64 single-text clients each, plus the in-process ceiling.

Usage: python scripts/tune_serve.py BUNDLE DATA.jsonl ["--spin" "--spin --max-batch-size 16" ...]
Produced the tuning table in docs/benchmarks.md (3 s per level).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import baton.serving.bench as bench


def main() -> None:
    bundle, data, *flag_sets = sys.argv[1:]
    texts = bench.load_texts(data, samples=872)
    options = bench.BenchOptions(duration_s=3, warmup_s=1, samples=872)
    print("| server flags | 1 client texts/s | 1 client p50 ms | 64 clients texts/s | mean batch at 64 |")
    print("|---|---|---|---|---|")
    for flags in flag_sets or [""]:
        report = bench.bench_serve(Path(bundle), texts, [1, 64], 1, "baton", options, shlex.split(flags), echo=False)
        one, many = report["grpc"]["results"]
        print(
            f"| `{flags or '(defaults)'}` | {one['texts_per_s']:.0f} | {one['p50_ms']:.2f} | "
            f"{many['texts_per_s']:.0f} | {many.get('mean_batch_size') or 0:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Does `baton adapt` help? Domain-adapt the base model on unlabeled text, then fine-tune with and without it.

    python benchmarks/adapt_gain.py OUT [--unlabeled ../shared/data/sst2_glue/train.jsonl]
        [--train ../shared/data/sst2_sentence/train.jsonl] [--validation …/validation.jsonl]
        [--samples 1000] [--seeds 1,2,3,4,5] [--adapted RUN]

1. `baton adapt` (default settings: 1 epoch, whole-word masking 0.15, blocks of 128) on the unlabeled file's texts
   (labels, if any, are never read), unless `--adapted` names a finished adapt run.
2. For each seed, `baton train` with the default recipe on `--samples` labelled texts (the seed picks them, so both
   arms of a seed see the same texts and the same seed) from the base model and from the adapted one.
3. Prints one JSON line per run and a table: validation accuracy per seed and arm, the paired difference, the mean
   and standard deviation of each arm, and whether the mean difference exceeds the seed spread (the standard
   deviation of the paired differences). Wall times are printed too. Figures: docs/training.md, "Domain adaptation".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import run

from baton.training import TrainConfig, run_training
from baton.training.adapt import AdaptConfig, run_adaptation

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path)
    p.add_argument("--unlabeled", default=str(DATA / "sst2_glue/train.jsonl"))
    p.add_argument("--train", default=str(DATA / "sst2_sentence/train.jsonl"))
    p.add_argument("--validation", default=str(DATA / "sst2_sentence/validation.jsonl"))
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--adapted", type=Path, help="a finished `baton adapt` run to reuse")


def _adapt(args: argparse.Namespace) -> Path:
    if args.adapted is not None:
        return Path(args.adapted)
    run = args.out / "adapted"
    started = time.perf_counter()
    result = run_adaptation(AdaptConfig(train_file=args.unlabeled, output_dir=str(run), overwrite=True))
    print(json.dumps({"adapt": result.metrics, "wall_s": round(time.perf_counter() - started, 1)}), flush=True)
    return run


def _train(args: argparse.Namespace, model: str, seed: int, name: str) -> tuple[float, float]:
    started = time.perf_counter()
    result = run_training(
        TrainConfig(
            model=model,
            train_file=args.train,
            validation_file=args.validation,
            output_dir=str(args.out / f"{name}-{seed}"),
            max_train_samples=args.samples,
            seed=seed,
            overwrite=True,
        )
    )
    wall = time.perf_counter() - started
    accuracy = float(result.metrics["validation"]["accuracy"])
    print(json.dumps({"arm": name, "seed": seed, "accuracy": accuracy, "wall_s": round(wall, 1)}), flush=True)
    return accuracy, wall


def measure(args: argparse.Namespace) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    adapted = _adapt(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    base: dict[int, float] = {}
    tuned: dict[int, float] = {}
    walls: list[float] = []
    for seed in seeds:  # arms alternate within a seed, so drift hits both alike
        base[seed], w1 = _train(args, "minilm", seed, "base")
        tuned[seed], w2 = _train(args, str(adapted / "model"), seed, "adapted")
        walls += [w1, w2]
    diffs = [tuned[s] - base[s] for s in seeds]
    print("\n| seed | base | adapted | adapted - base |\n|---|---|---|---|")
    for s, diff in zip(seeds, diffs, strict=True):
        print(f"| {s} | {base[s]:.4f} | {tuned[s]:.4f} | {diff * 100:+.2f} points |")
    spread = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
    mean = statistics.mean(diffs)
    for name, arm in (("base", base), ("adapted", tuned)):
        values = list(arm.values())
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        print(f"{name}: mean {statistics.mean(values):.4f}, sd {sd:.4f} over {len(values)} seeds")
    verdict = "larger" if abs(mean) > spread else "not larger"
    print(
        f"mean difference {mean * 100:+.2f} points, sd of the paired differences {spread * 100:.2f} points: "
        f"the difference is {verdict} than the seed spread; fine-tune wall time {min(walls):.0f}-{max(walls):.0f} s"
    )
    return {
        "base": base,
        "adapted": tuned,
        "mean_difference": mean,
        "sd_of_differences": spread,
        "fine_tune_wall_s": walls,
    }


run(__name__, __doc__, configure, measure)

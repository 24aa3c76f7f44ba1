"""`baton learning-curve`: should we label more data? Train on growing, seeded, stratified subsets and look.

1. **One validation split for every point.** `--validation-file`, or a seeded 10 % of the training file held out
   once (stratified for single-label), so that every size is judged on the same rows.
2. **Subsets.** For each size and seed, a sample of the remaining training rows: stratified by label for
   single-label data (each class keeps its share, at least one row), random sentences for entity data and
   multi-label data. Sizes default to `DEFAULT_FRACTIONS` of the training rows.
3. **Training.** Each subset is trained by `run_training` with the recipe `baton train` would use (the same
   schedule, the few-shot path where it applies), in `OUT/runs/n{size}-s{seed}`, and only its validation metric is
   kept (the run directories are removed unless `--keep-runs`).
4. **Verdict** (`verdict`): still rising when the mean gain from the second-largest to the largest size is above
   both `MIN_GAIN` and the spread over seeds at those two sizes; else flat.

Writes `curve.json`, `curve.md` and `curve.png` to `--output`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton._io import write_json_atomic, write_text_atomic
from baton.errors import ConfigError
from baton.training.config import TrainConfig

__all__ = ["DEFAULT_FRACTIONS", "MIN_GAIN", "CurveConfig", "CurvePoint", "run_curve", "verdict"]

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
MIN_GAIN = 0.01


@dataclass(frozen=True, kw_only=True)
class CurveConfig:
    train: TrainConfig  # the data, model and recipe of every point (its output_dir is the curve's)
    sizes: tuple[int, ...] | None = None  # training rows per point; None: DEFAULT_FRACTIONS of the training file
    seeds: int = 3
    keep_runs: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.sizes, str):
            try:
                object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes.split(",") if s.strip()))
            except ValueError as exc:
                raise ConfigError(f"--sizes must be comma-separated integers (got {self.sizes!r})") from exc
        if self.sizes is not None and (not self.sizes or min(self.sizes) < 1):
            raise ConfigError(f"--sizes must be positive integers (got {self.sizes})")
        if not 1 <= self.seeds <= 20:
            raise ConfigError(f"--seeds must be in [1, 20] (got {self.seeds})")
        if self.train.train_file is None:
            raise ConfigError("learning-curve needs --train-file")


@dataclass(frozen=True)
class CurvePoint:
    size: int
    scores: tuple[float, ...]  # the validation metric of each seed

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def spread(self) -> float:
        return statistics.pstdev(self.scores) if len(self.scores) > 1 else 0.0


def verdict(points: Sequence[CurvePoint]) -> tuple[bool, str]:
    """(still rising, a sentence) from the two largest sizes (rule 4 of the module docstring)."""
    if len(points) < 2:
        return False, "one size only: no slope to read"
    before, last = sorted(points, key=lambda p: p.size)[-2:]
    gain = last.mean - before.mean
    noise = max(last.spread, before.spread)
    rising = gain > max(MIN_GAIN, noise)
    how = f"{gain:+.3f} from {before.size} to {last.size} rows (spread over seeds {noise:.3f})"
    if rising:
        return True, f"still rising at full size, {how}: labelling more data is likely to help"
    return False, f"flat at full size, {how}: more of the same labels is unlikely to help much"


def _sample(rows: list[dict[str, Any]], size: int, seed: int, key: Any) -> list[dict[str, Any]]:
    """`size` rows, seeded, each stratum keeping its share (at least one row while the size allows)."""
    rng = random.Random(seed)
    strata: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        strata.setdefault(key(row), []).append(row)
    if size >= len(rows):
        picked = list(rows)
    else:
        quota = {k: max(1, round(size * len(v) / len(rows))) for k, v in strata.items()}
        while sum(quota.values()) > size:  # rounding up (and the floor of one) can overshoot: trim the largest
            quota[max(quota, key=lambda k: quota[k])] -= 1
        picked = [r for k, v in strata.items() for r in rng.sample(v, min(quota[k], len(v)))]
    rng.shuffle(picked)
    return picked


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows), encoding="utf-8")
    return path


def _plot(points: Sequence[CurvePoint], metric: str, path: Path) -> None:
    from baton.training.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [p.size for p in points]
    means = [p.mean for p in points]
    spreads = [p.spread for p in points]
    ax.errorbar(xs, means, yerr=spreads, fmt="o-", capsize=4)
    for p in points:
        ax.scatter([p.size] * len(p.scores), p.scores, s=10, color="grey", alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("learning curve (mean and spread over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_curve(cfg: CurveConfig) -> dict[str, Any]:
    """Train every (size, seed), write curve.json/.md/.png, and return curve.json's content."""
    from baton.training.tasks import resolve_task, run_training, training_task

    base = cfg.train
    out = Path(base.output_dir)
    if (out / "curve.json").is_file() and not base.overwrite:
        raise ConfigError(f"--output: {out} already holds a learning curve; pass --overwrite to replace it")
    task = resolve_task(base)
    trains = training_task(task)
    rows = trains.rows(base)

    def key(row: dict[str, Any]) -> str:
        return trains.stratum(row, base)

    data_dir = out / "data"
    validation_file, held = base.validation_file, None
    if validation_file is None:
        held = _sample(rows, max(1, int(len(rows) * base.validation_fraction)), base.seed, key)
        held_ids = {id(r) for r in held}
        rows = [r for r in rows if id(r) not in held_ids]
    sizes = sorted(set(cfg.sizes or [max(2, round(f * len(rows))) for f in DEFAULT_FRACTIONS]))
    too_big = [s for s in sizes if s > len(rows)]
    if too_big:
        raise ConfigError(f"--sizes: {too_big} exceed the {len(rows)} training rows left after validation")
    if held is not None:
        validation_file = str(_write(held, data_dir / "validation.jsonl"))
    metric, points = "", []
    for size in sizes:
        scores = []
        for seed in range(base.seed, base.seed + cfg.seeds):
            subset = _write(_sample(rows, size, seed, key), data_dir / f"train-n{size}-s{seed}.jsonl")
            run_dir = out / "runs" / f"n{size}-s{seed}"
            point_cfg = dataclasses.replace(
                base,
                train_file=str(subset),
                validation_file=validation_file,
                test_file=None,
                output_dir=str(run_dir),
                overwrite=True,
                seed=seed,
                max_train_samples=None,
                task=task,
                **trains.subset_columns,  # the columns the subsets are written with
            )
            metrics = run_training(point_cfg).metrics
            metric = metrics["trivial_baseline"]["metric"]
            scores.append(float(metrics["validation"][metric]))
            logger.info("learning curve: %d rows, seed %d: validation %s %.4f", size, seed, metric, scores[-1])
            if not cfg.keep_runs:
                shutil.rmtree(run_dir, ignore_errors=True)
        points.append(CurvePoint(size, tuple(scores)))
    rising, sentence = verdict(points)
    result = {
        "metric": metric,
        "task": task,
        "validation": validation_file,
        "seeds": cfg.seeds,
        "points": [{"size": p.size, "mean": p.mean, "spread": p.spread, "scores": list(p.scores)} for p in points],
        "still_rising": rising,
        "verdict": sentence,
    }
    _plot(points, metric, out / "curve.png")
    table = [
        f"| {p.size} | {p.mean:.4f} | {p.spread:.4f} | {', '.join(f'{s:.4f}' for s in p.scores)} |" for p in points
    ]
    write_text_atomic(
        out / "curve.md",
        "\n".join(
            [
                "# Learning curve",
                "",
                f"Validation {metric} on {validation_file}, {cfg.seeds} seed(s) per size, the `baton train` recipe.",
                "",
                f"| training examples | mean {metric} | spread (std) | per seed |",
                "|---|---|---|---|",
                *table,
                "",
                f"**{sentence}.**",
                "",
                "![learning curve](curve.png)",
                "",
            ]
        ),
    )
    write_json_atomic(out / "curve.json", result)
    if not cfg.keep_runs:
        shutil.rmtree(out / "runs", ignore_errors=True)
    return result

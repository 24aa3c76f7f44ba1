"""The default recipe as a function of the training set's size: a pure decision, with its rules here.

A fixed "3 epochs at batch 16" gave 200 SST-2 sentences 39 optimizer steps and a model near chance (issue 28), while
the same rows at batch 8 and more steps reached 0.84. So the schedule is set in optimizer steps, with a floor:

1. **Batch size**: `SMALL_BATCH` (8) up to `SMALL_DATA_ROWS` training rows, else `BATCH` (16): more, smaller steps
   where there are few rows.
2. **Epochs**: `EPOCHS` (3), or as many as it takes to reach `MIN_STEPS` optimizer steps, up to `MAX_EPOCHS`.
3. **Evaluation**: once an epoch while there are at most `EVALUATIONS` epochs; past that every
   `ceil(steps / EVALUATIONS)` steps, so a long small-data run is judged about `EVALUATIONS` times, not 100.
4. **Early-stopping patience**: `PATIENCE` evaluations, `PATIENCE_STEPS` when evaluating by steps (more, shorter
   intervals are noisier).
5. **Learning rate and warm-up**: `LEARNING_RATE` and `WARMUP_RATIO` at every size.
6. **Method** (`pick_method`), for single-label single texts: the few-shot path when the smallest class has at most
   `FEW_SHOT_PER_CLASS` rows; pooled fine-tuning up to `POOLED_MAX_ROWS` rows when the model is a mean-pooled
   sentence-transformer (both packaged models are); the model's own head otherwise, and always for multi-label
   data, pairs and resumed runs. `--few-shot` / `--no-few-shot` pick the first or the last.

Flags win: a value the user gave is kept, and the rest are derived from it (`--batch-size 32` still gets the step
floor). The figures behind each constant are in docs/training.md, "The default recipe"; the decision is in
docs/decisions.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "BATCH",
    "EPOCHS",
    "EVALUATIONS",
    "FEW_SHOT_PER_CLASS",
    "LEARNING_RATE",
    "MAX_EPOCHS",
    "MIN_STEPS",
    "PATIENCE",
    "PATIENCE_STEPS",
    "POOLED_MAX_ROWS",
    "SMALL_BATCH",
    "SMALL_DATA_ROWS",
    "WARMUP_RATIO",
    "Method",
    "Schedule",
    "describe_schedule",
    "pick_method",
    "plan_schedule",
]

BATCH = 16
SMALL_BATCH = 8
SMALL_DATA_ROWS = 1000
EPOCHS = 3.0
MIN_STEPS = 300
MAX_EPOCHS = 100.0
EVALUATIONS = 10
PATIENCE = 2
PATIENCE_STEPS = 4
LEARNING_RATE = 1e-4
WARMUP_RATIO = 0.1
# At most this many training rows in the smallest class: `baton train` takes the few-shot path by itself
# (single-label single texts; training/fewshot.py). docs/training.md, "Few-shot", has the curves that set it.
FEW_SHOT_PER_CLASS = 16
# Up to this many training rows, single-label single texts train a head on mean-pooled embeddings and then fine-tune
# body and head together (training/fewshot.py). docs/training.md, "Pooled fine-tuning", has the figures.
POOLED_MAX_ROWS = 300


class Method(StrEnum):
    """How a classification run trains."""

    FINE_TUNE = "fine-tune"  # the model's own sequence-classification head, with Trainer
    FEW_SHOT = "few-shot"  # SetFit: contrastive pairs tune the body, then a logistic-regression head
    POOLED = "pooled"  # a logistic-regression head on mean-pooled embeddings, then body and head fine-tuned together


def pick_method(
    rows: int, smallest_class: int | None, few_shot: bool | None, mean_pooled: bool = True
) -> tuple[Method, str]:
    """The method and why (rule 6). `smallest_class` is None where only fine-tuning applies (multi-label, pairs,
    a resumed run); `mean_pooled`: the model is a sentence-transformer with mean pooling (pooled fine-tuning's
    premise; another encoder keeps its own head)."""
    if few_shot is not None:
        return (Method.FEW_SHOT, "--few-shot") if few_shot else (Method.FINE_TUNE, "--no-few-shot")
    if smallest_class is None:
        return Method.FINE_TUNE, "multi-label, pairs or a resumed run"
    if smallest_class <= FEW_SHOT_PER_CLASS:
        return Method.FEW_SHOT, f"the smallest class has {smallest_class} training rows (<= {FEW_SHOT_PER_CLASS})"
    if rows <= POOLED_MAX_ROWS and mean_pooled:
        return Method.POOLED, f"{rows} training rows (<= {POOLED_MAX_ROWS}) of a mean-pooled sentence-transformer"
    return Method.FINE_TUNE, f"{rows} training rows (> {POOLED_MAX_ROWS})"


@dataclass(frozen=True)
class Schedule:
    """A resolved recipe: what `TrainingArguments` gets, and why (`reason`, written to train_args.json and the
    report)."""

    rows: int
    batch_size: int
    learning_rate: float
    epochs: float
    warmup_ratio: float
    patience: int
    steps_per_epoch: int
    steps: int
    eval_steps: int | None  # None: evaluate (and checkpoint) once an epoch
    reason: str

    def __post_init__(self) -> None:
        if self.rows < 1 or self.batch_size < 1 or self.epochs <= 0 or self.steps < 1:
            raise ValueError(f"not a schedule: {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_schedule(
    rows: int,
    *,
    world: int = 1,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    epochs: float | None = None,
    warmup_ratio: float | None = None,
    patience: int | None = None,
) -> Schedule:
    """The recipe for `rows` training rows on `world` processes; any value given (a flag) wins over the rule."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1 (got {rows})")
    why: list[str] = []
    if batch_size is None:
        batch_size = SMALL_BATCH if rows <= SMALL_DATA_ROWS else BATCH
        why.append(f"batch {batch_size} for {'<=' if rows <= SMALL_DATA_ROWS else '>'} {SMALL_DATA_ROWS} rows")
    steps_per_epoch = math.ceil(rows / (batch_size * max(world, 1)))
    if epochs is None:
        needed = math.ceil(MIN_STEPS / steps_per_epoch)
        epochs = float(min(MAX_EPOCHS, max(EPOCHS, needed)))
        if epochs > EPOCHS:
            capped = " (capped)" if needed > MAX_EPOCHS else ""
            why.append(f"{epochs:g} epochs{capped} to reach the {MIN_STEPS}-step floor")
    steps = max(1, math.ceil(steps_per_epoch * epochs))
    eval_steps = None if epochs <= EVALUATIONS else max(steps_per_epoch, math.ceil(steps / EVALUATIONS))
    if patience is None:
        patience = PATIENCE if eval_steps is None else PATIENCE_STEPS
    if eval_steps is not None:
        why.append(f"evaluated every {eval_steps} steps")
    return Schedule(
        rows=rows,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE if learning_rate is None else learning_rate,
        epochs=epochs,
        warmup_ratio=WARMUP_RATIO if warmup_ratio is None else warmup_ratio,
        patience=patience,
        steps_per_epoch=steps_per_epoch,
        steps=steps,
        eval_steps=eval_steps,
        reason="; ".join(why) or "as given",
    )


def describe_schedule(schedule: Schedule) -> str:
    """One line for the log: the values and why."""
    return (
        f"{schedule.rows} rows: batch {schedule.batch_size}, lr {schedule.learning_rate:g}, "
        f"{schedule.epochs:g} epochs = {schedule.steps} optimizer steps, warm-up {schedule.warmup_ratio:g}, "
        f"patience {schedule.patience} ({schedule.reason})"
    )

"""What a finished run tells its user: each thing that is wrong, and what to do about it. Pure decisions.

Rules, each one `Advice` with a fix that names a flag, more data, `--few-shot` or a stronger `--model`:

1. **Too few optimizer steps**: fewer than `schedule.MIN_STEPS` (only when flags held the schedule below its floor;
   not for the few-shot path, whose steps are contrastive pairs, not fine-tuning).
2. **A validation split too small to judge**: the metric's 95 % interval (Wilson) is wider than `WIDE_INTERVAL` on
   either side; the interval is printed.
3. **Labels dropped**: validation or test labels never seen in train were dropped (`--drop-unseen-labels`).
4. **Not better than a constant**: the model does not beat the best constant answer on validation by the margin
   the validation size supports (training/trivial.py); `baton export` refuses such a run.
5. **One answer for (almost) everything**: the model's most frequent answer covers `trivial.ONE_ANSWER_SHARE` of
   validation rows or more.
6. **Few examples per class**: the smallest training class has fewer than `FEW_PER_CLASS` rows and the run did
   not use the few-shot path.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import Any

from baton.training.schedule import MIN_STEPS, Schedule
from baton.training.trivial import ONE_ANSWER_SHARE

__all__ = ["FEW_PER_CLASS", "WIDE_INTERVAL", "Advice", "AdviceCode", "advise", "logged", "wilson_interval"]

logger = logging.getLogger(__name__)

# Half-width of the validation metric's 95 % interval past which the split is called too small to judge:
# 0.05 is about 380 rows at p = 0.5, 140 rows at p = 0.9.
WIDE_INTERVAL = 0.05
FEW_PER_CLASS = 16


class AdviceCode(str, enum.Enum):
    FEW_STEPS = "few-steps"
    SMALL_VALIDATION = "small-validation"
    UNSEEN_LABELS = "unseen-labels"
    UNTRAINED = "untrained"
    ONE_ANSWER = "one-answer"
    FEW_PER_CLASS = "few-per-class"


@dataclass(frozen=True)
class Advice:
    code: AdviceCode
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.message}. Fix: {self.fix}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message, "fix": self.fix}


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion `p` measured on `n` rows."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def advise(
    *,
    schedule: Schedule,
    validation: dict[str, Any],
    validation_rows: int,
    baseline: dict[str, Any] | None,
    dropped: dict[str, int],
    smallest_class: int | None,
    few_shot: bool,
    metric: str,
) -> list[Advice]:
    """Everything worth a warning about one finished run (rules in the module docstring)."""
    out: list[Advice] = []
    if schedule.steps < MIN_STEPS and not few_shot:
        out.append(
            Advice(
                AdviceCode.FEW_STEPS,
                f"only {schedule.steps} optimizer steps ({schedule.epochs:g} epochs of {schedule.steps_per_epoch})",
                f"leave --epochs and --batch-size to the default recipe, which plans at least {MIN_STEPS} steps",
            )
        )
    value = validation.get(metric)
    if value is not None:
        low, high = wilson_interval(float(value), validation_rows)
        if max(value - low, high - value) > WIDE_INTERVAL:
            out.append(
                Advice(
                    AdviceCode.SMALL_VALIDATION,
                    f"validation has {validation_rows} rows: {metric} {value:.3f}, 95 % interval "
                    f"[{low:.3f}, {high:.3f}], too wide to compare runs",
                    "pass a --validation-file with more labelled rows (about 400 give +-0.05)",
                )
            )
    unseen = {k: v for k, v in dropped.items() if k.endswith("unseen labels")}
    for where, count in unseen.items():
        out.append(
            Advice(
                AdviceCode.UNSEEN_LABELS,
                f"{where.removesuffix(': unseen labels')}: dropped {count} label(s) that train never saw",
                "label examples of those classes in the training data, or keep them out of validation",
            )
        )
    if baseline is not None and not baseline.get("beaten", True) and not baseline.get("judgeable", True):
        out.append(
            Advice(
                AdviceCode.UNTRAINED,
                f"validation has {validation_rows} rows: too few to show that any model beats always answering the "
                f"best constant ({baseline['metric']} {baseline['value']:.3f}, +{baseline.get('margin', 0):.3f} "
                "needed); `baton export` refuses the run",
                "pass a --validation-file with more labelled rows, or export with --allow-untrained",
            )
        )
    elif baseline is not None and not baseline.get("beaten", True):
        out.append(
            Advice(
                AdviceCode.UNTRAINED,
                f"the model does not beat always answering the best constant ({baseline['metric']} "
                f"{baseline['value']:.3f}, +{baseline.get('margin', 0):.3f} needed on {validation_rows} rows); "
                "`baton export` refuses it",
                "label more data, try --few-shot, or a stronger --model (mpnet)",
            )
        )
    share = validation.get("top_answer_share")
    if share is not None and share >= ONE_ANSWER_SHARE:
        out.append(
            Advice(
                AdviceCode.ONE_ANSWER,
                f"the model gives one answer to {share:.0%} of validation rows",
                "check the labels are balanced enough to learn from; label more of the rare classes, or --few-shot",
            )
        )
    if smallest_class is not None and smallest_class < FEW_PER_CLASS and not few_shot:
        out.append(
            Advice(
                AdviceCode.FEW_PER_CLASS,
                f"the smallest class has {smallest_class} training example(s)",
                "label more examples of it, or train with --few-shot",
            )
        )
    return out


def logged(found: list[Advice]) -> list[dict[str, str]]:
    """Log each warning with its fix; returns them as metrics.json's `warnings`."""
    for advice in found:
        logger.warning("%s", advice.line())
    return [a.to_dict() for a in found]

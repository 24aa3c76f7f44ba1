"""The one run loop of every `transformers.Trainer` run: classification, entity recognition and masked-LM domain
adaptation (and, through classification, distillation). Only the steps marked (task) differ between them.

    check the output directory          refuse a finished or interrupted run before anything is read or deleted
    resolve the model, read the data    (task) a bad file fails here, before a checkpoint is cleared
    clear stale checkpoints             unless resuming
    build the Trainer                   (task) model, rows, arguments, metrics, console
    score before training               (task) the untrained baseline, when it is asked for and not resuming
    train                               from the last checkpoint when resuming
    score after training                (task) the metrics of metrics.json, with the `training` record added here
    save the model beside the run       `.model.tmp`, installed by the task's writer
    write the run                       (task) rank 0 only; metrics.json last (rundir.finish_run)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol, TypeVar

from baton.training.rundir import (
    MODEL_DIR,
    Hardware,
    RunResult,
    clear_stale_checkpoints,
    prepare_output_dir,
    training_record,
)

__all__ = ["Built", "RunSteps", "run_loop"]

logger = logging.getLogger(__name__)


class Built(Protocol):
    """What a task's builder returns: the Trainer and the hardware it runs on."""

    trainer: Any
    hw: Hardware


B = TypeVar("B", bound=Built)


class RunSteps(Protocol[B]):
    """A task's part of the loop (the steps marked (task) in the module's docstring); B is what its builder makes."""

    def prepare(self, model_path: str) -> None: ...

    def build(self, out: Path, model_path: str, checkpoint: str | None) -> B: ...

    def before(self, built: B) -> dict[str, Any]: ...

    def after(self, built: B, before: dict[str, Any]) -> dict[str, Any]: ...

    def sizes(self, built: B) -> dict[str, Any]: ...

    def write(self, out: Path, tmp_model: Path, model_path: str, built: B, metrics: dict[str, Any]) -> None: ...


def run_loop(cfg: Any, model: str, steps: RunSteps[B]) -> RunResult:
    """Run `steps` in the loop above on `cfg`'s output directory, from `model` (a `--model` value)."""
    import torch  # noqa: F401  (first: a missing torch is named as such, not as transformers' own error)

    from baton.training.models import resolve_model

    started = time.perf_counter()
    out, checkpoint = prepare_output_dir(cfg)  # checks only: nothing is deleted before the inputs are valid
    model_path = resolve_model(model)
    steps.prepare(model_path)
    if checkpoint is None:
        clear_stale_checkpoints(out)
    built = steps.build(out, model_path, checkpoint)
    hw = built.hw
    before = steps.before(built) if checkpoint is None else {}
    logger.info("training on %s with bf16=%s, %d process(es)", "cuda" if hw.cuda else "cpu", hw.bf16, hw.world)
    train_output = built.trainer.train(resume_from_checkpoint=checkpoint)
    metrics = steps.after(built, before)
    tmp_model = out / f".{MODEL_DIR}.tmp"
    built.trainer.save_model(str(tmp_model))
    metrics["training"] = training_record(built.trainer, train_output, hw, started, **steps.sizes(built))
    if built.trainer.is_world_process_zero():
        steps.write(out, tmp_model, model_path, built, metrics)
    return RunResult(out, metrics)

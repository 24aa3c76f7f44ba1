"""Fine-tuning: `baton train`.

`run_training` and `RunResult` load on first use, so that importing a light module of this package (the schedule's
defaults, which the CLI's help reads) does not import the trainer and its dependencies."""

from typing import Any

from baton.training.config import Bf16Mode, TrainConfig, load_train_config

__all__ = ["Bf16Mode", "RunResult", "TrainConfig", "load_train_config", "run_training"]


def __getattr__(name: str) -> Any:
    if name in ("RunResult", "run_training"):
        from baton.training import rundir, tasks

        return getattr(rundir if name == "RunResult" else tasks, name)
    raise AttributeError(f"module 'baton.training' has no attribute {name!r}")

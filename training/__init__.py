"""Fine-tuning: `baton train`."""

from baton.training.config import Bf16Mode, TrainConfig, load_train_config
from baton.training.trainer import RunResult, run_training

__all__ = ["Bf16Mode", "RunResult", "TrainConfig", "load_train_config", "run_training"]

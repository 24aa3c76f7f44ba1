"""The typed configuration of one training run: defaults, validation, YAML + flag merging."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton._config import load_config
from baton.errors import ConfigError
from baton.task import Task
from baton.training.schedule import Schedule, plan_schedule

__all__ = ["TASKS", "Bf16Mode", "ReportTo", "TrainConfig", "load_train_config"]

TASKS = ("auto", *(t.value for t in Task))


class Bf16Mode(str, enum.Enum):
    """Whether to train under bf16 autocast."""

    AUTO = "auto"  # on when the hardware has native bf16 (AVX512-BF16/AMX on x86, BF16 on Arm, CUDA Ampere+)
    ON = "on"
    OFF = "off"

    @classmethod
    def parse(cls, value: object) -> Bf16Mode:
        """A mode from a flag or YAML value (any case); a bad value is one ConfigError naming --bf16."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError as exc:
            raise ConfigError(f"--bf16 must be one of auto, on, off (got {value!r})") from exc


class ReportTo(str, enum.Enum):
    """Where Trainer also logs a run's curves (`--report-to`); off by default."""

    NONE = "none"
    TENSORBOARD = "tensorboard"  # event files in RUN/logs: `tensorboard --logdir RUN/logs`
    MLFLOW = "mlflow"  # MLflow's tracking URI (MLFLOW_TRACKING_URI, default ./mlruns): `mlflow ui`

    @classmethod
    def parse(cls, value: object) -> ReportTo:
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError as exc:
            raise ConfigError(f"--report-to must be one of none, tensorboard, mlflow (got {value!r})") from exc


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything `baton train` needs. Field names are the flag names with `_` for `-`."""

    model: str = "minilm"
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    # "auto": token-classification when the training file holds entity data (training/ner_data.py), else text.
    task: str = "auto"
    tokens_column: str = "tokens"
    tags_column: str = "ner_tags"
    tag_names: tuple[str, ...] | None = None  # the tag of each id, when the tags column holds ints
    label_all_tokens: bool = False  # tag every sub-token (B- turned into I- after the first), not only the first
    # entity data: sub-tokens shared by neighbouring windows of a long sentence (capped at half a window)
    stride: int = 32
    output_dir: str = "runs/latest"
    # None ("auto"): set from the training set's size by training/schedule.py once the rows are counted; a value
    # given here or as a flag wins. The resolved values are what train_args.json records.
    epochs: float | None = None
    batch_size: int | None = None
    eval_batch_size: int = 64
    learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float | None = None
    max_length: int = 128
    seed: int = 42
    patience: int | None = None  # evaluations without improvement before stopping; 0 disables; None: scheduled
    max_train_samples: int | None = None
    validation_fraction: float = 0.1
    # validation/test rows whose label train never saw are dropped (multi-label: those labels), counted, and warned
    # about, instead of refused
    drop_unseen_labels: bool = False
    # Multi-label decision threshold; None: tuned on the validation split for the best micro-F1 (and served so).
    threshold: float | None = None
    # Multi-label loss: "weighted" (per-label pos_weight, output bias at the prior: training/multilabel.py) or
    # "plain" (transformers' BCE, which settled on the label prior in docs/training.md's GoEmotions runs).
    multi_label_loss: str = "weighted"
    group_by_length: bool = True
    # True: SetFit-style contrastive training and a logistic-regression head (training/fewshot.py); False: the
    # model's own head; None: as training/schedule.py's `pick_method` decides from the data's size
    few_shot: bool | None = None
    bf16: Bf16Mode = Bf16Mode.AUTO
    report_to: ReportTo = ReportTo.NONE
    baseline: bool = True
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bf16", Bf16Mode.parse(self.bf16))
        object.__setattr__(self, "report_to", ReportTo.parse(self.report_to))
        if (self.train_file is None) == (self.dataset is None):
            raise ConfigError("give exactly one of --train-file or --dataset")
        if self.dataset is None and self.dataset_config is not None:
            raise ConfigError("--dataset-config needs --dataset")
        if isinstance(self.tag_names, str):
            object.__setattr__(self, "tag_names", tuple(t.strip() for t in self.tag_names.split(",") if t.strip()))
        elif isinstance(self.tag_names, list):
            object.__setattr__(self, "tag_names", tuple(self.tag_names))
        checks: list[tuple[bool, str]] = [
            (self.task in TASKS, f"--task must be one of {', '.join(TASKS)} (got {self.task!r})"),
            (self.stride >= 0, f"--stride must be >= 0 (got {self.stride})"),
            (self.epochs is None or self.epochs > 0, f"--epochs must be > 0 (got {self.epochs})"),
            (self.batch_size is None or self.batch_size > 0, f"--batch-size must be > 0 (got {self.batch_size})"),
            (self.eval_batch_size > 0, f"--eval-batch-size must be > 0 (got {self.eval_batch_size})"),
            (
                self.learning_rate is None or 0 < self.learning_rate < 1,
                f"--learning-rate must be in (0, 1) (got {self.learning_rate})",
            ),
            (8 <= self.max_length <= 8192, f"--max-length must be in [8, 8192] (got {self.max_length})"),
            (self.patience is None or self.patience >= 0, f"--patience must be >= 0 (got {self.patience})"),
            (0 < self.validation_fraction < 1, "--validation-fraction must be in (0, 1)"),
            (self.threshold is None or 0 < self.threshold < 1, f"--threshold must be in (0, 1) (got {self.threshold})"),
            (self.warmup_ratio is None or 0 <= self.warmup_ratio < 1, "--warmup-ratio must be in [0, 1)"),
            (
                self.multi_label_loss in ("weighted", "plain"),
                f"--multi-label-loss must be weighted or plain (got {self.multi_label_loss!r})",
            ),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (not (self.resume and self.overwrite), "--resume and --overwrite exclude each other"),
        ]
        if self.max_train_samples is not None:
            checks.append((self.max_train_samples > 0, "--max-train-samples must be > 0"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def scheduled(self, rows: int, world: int = 1) -> tuple[TrainConfig, Schedule]:
        """This config with every "auto" recipe value set for `rows` training rows (flags kept), and the schedule."""
        schedule = plan_schedule(
            rows,
            world=world,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            warmup_ratio=self.warmup_ratio,
            patience=self.patience,
        )
        resolved = dataclasses.replace(
            self,
            batch_size=schedule.batch_size,
            learning_rate=schedule.learning_rate,
            epochs=schedule.epochs,
            warmup_ratio=schedule.warmup_ratio,
            patience=schedule.patience,
        )
        return resolved, schedule

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["bf16"] = self.bf16.value
        out["report_to"] = self.report_to.value
        out["tag_names"] = list(self.tag_names) if self.tag_names is not None else None
        return out


def load_train_config(config_file: str | Path | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """Build a config from defaults, then the YAML file, then flags (`overrides`; None means 'not given')."""
    return load_config(TrainConfig, config_file, overrides)

"""What every run shares: the run directory's life cycle (refuse or resume, install the model, finish), the
training arguments and hardware, a seeded hold-out split."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from baton._io import write_json_atomic
from baton.errors import ConfigError, ModelError, OutputDirError
from baton.task import Task
from baton.training.config import Bf16Mode, ReportTo

T = TypeVar("T")

__all__ = [
    "CHECKPOINT_DIR",
    "LOG_HISTORY",
    "METRICS_FILE",
    "MODEL_DIR",
    "RUN_FILES",
    "Hardware",
    "RunResult",
    "TrainedRun",
    "clear_stale_checkpoints",
    "finish_run",
    "hold_out",
    "install_model",
    "is_main_process",
    "last_checkpoint",
    "prepare_output_dir",
    "read_run",
    "trainer_arguments",
    "training_record",
    "use_bf16",
    "world_size",
]

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunResult:
    """A finished run: its directory and its metrics.json."""

    output_dir: Path
    metrics: dict[str, Any]


LOG_HISTORY = "log_history.json"  # Trainer's log lines (loss, evaluations), for `baton compare`
# What a finished run writes beside model/ (and an --overwrite run replaces only once its model is saved)
RUN_FILES = ("train_args.json", "report.md", "training_curves.png", LOG_HISTORY)
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


def _cpu_has_bf16() -> bool:
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8").split())
    except OSError:
        return False
    if platform.machine().lower() in {"aarch64", "arm64"}:
        return "bf16" in flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_bf16(mode: Bf16Mode) -> bool:
    import torch

    if mode is Bf16Mode.OFF:
        return False
    if mode is Bf16Mode.ON:
        return True
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return _cpu_has_bf16()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_dir = output_dir / CHECKPOINT_DIR
    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


class _RunFlags(Protocol):
    @property
    def output_dir(self) -> str: ...
    @property
    def resume(self) -> bool: ...
    @property
    def overwrite(self) -> bool: ...


def prepare_output_dir(cfg: _RunFlags) -> tuple[Path, str | None]:
    """(output dir, checkpoint to resume or None); refuses a finished or interrupted run unless told what to do."""
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--output: {out} is a file, not a run directory; name a folder")
    finished = (out / METRICS_FILE).is_file()
    checkpoint = last_checkpoint(out)
    if cfg.resume:
        if checkpoint is None and finished:
            raise OutputDirError(f"--resume: {out} already holds a finished run (metrics.json); nothing to resume")
        if checkpoint is None:
            raise OutputDirError(f"--resume: no checkpoint found under {out / CHECKPOINT_DIR}")
        return out, checkpoint
    if not cfg.overwrite:
        if finished:
            raise OutputDirError(f"--output: {out} already holds a finished run; pass --overwrite to replace it")
        if checkpoint is not None:
            raise OutputDirError(
                f"--output: {out} holds an interrupted run; pass --resume to continue it or --overwrite"
            )
    return out, None


def clear_stale_checkpoints(out: Path) -> None:
    """Before a fresh (--overwrite) run: drop an interrupted run's checkpoints. A finished run's model, metrics and
    report stay until the new run has its model saved (`_write_run`): nothing is lost if this run fails."""
    if is_main_process():
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)


@dataclass(frozen=True)
class Hardware:
    """Where a run trains: processes (torchrun), CUDA or CPU, bf16 autocast."""

    world: int
    cuda: bool
    bf16: bool


class _Recipe(Protocol):
    """A resolved recipe (TrainConfig.scheduled, AdaptConfig): None is refused here."""

    @property
    def epochs(self) -> float | None: ...
    @property
    def batch_size(self) -> int | None: ...
    @property
    def learning_rate(self) -> float | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def bf16(self) -> Bf16Mode: ...


def world_size() -> int:
    """Processes in this run (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def trainer_arguments(
    cfg: _Recipe,
    out: Path,
    rows: int,
    metric: str,
    greater_is_better: bool = True,
    evaluate_every: int | None = None,
    **overrides: Any,
) -> tuple[Any, Hardware]:
    """The `TrainingArguments` every baton run shares: checkpoints under the run directory, evaluation and saving
    each epoch (or every `evaluate_every` steps: training/schedule.py), the best checkpoint by `metric` loaded at the
    end, about 40 log lines, bf16 where the hardware has it, gloo for CPU torchrun. A config without
    `eval_batch_size`, `weight_decay`, `warmup_ratio` or `group_by_length` gets the batch size, 0.01, 0.06 and no
    grouping; `overrides` win."""
    import torch
    from transformers import TrainingArguments

    if cfg.epochs is None or cfg.batch_size is None or cfg.learning_rate is None:
        raise ValueError("trainer_arguments needs a resolved recipe (TrainConfig.scheduled)")
    hw = Hardware(world_size(), torch.cuda.is_available(), use_bf16(cfg.bf16))
    steps = math.ceil(rows / (cfg.batch_size * hw.world)) * cfg.epochs
    warmup = getattr(cfg, "warmup_ratio", None)
    args: dict[str, Any] = {
        "output_dir": str(out / CHECKPOINT_DIR),
        "num_train_epochs": cfg.epochs,
        "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": getattr(cfg, "eval_batch_size", cfg.batch_size),
        "learning_rate": cfg.learning_rate,
        "weight_decay": getattr(cfg, "weight_decay", 0.01),
        "warmup_ratio": 0.06 if warmup is None else warmup,
        "seed": cfg.seed,
        "eval_strategy": "epoch" if evaluate_every is None else "steps",
        "save_strategy": "epoch" if evaluate_every is None else "steps",
        **({} if evaluate_every is None else {"eval_steps": evaluate_every, "save_steps": evaluate_every}),
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": metric,
        "greater_is_better": greater_is_better,
        "logging_strategy": "steps",
        "logging_steps": max(1, int(steps // 40)),
        "group_by_length": getattr(cfg, "group_by_length", False),
        "bf16": hw.bf16,
        "use_cpu": not hw.cuda,
        "ddp_backend": None if hw.cuda or hw.world == 1 else "gloo",
        **_reporting(getattr(cfg, "report_to", ReportTo.NONE), out),
        "dataloader_num_workers": 0,
        "save_safetensors": True,
    }
    return TrainingArguments(**{**args, **overrides}), hw


def _reporting(report_to: ReportTo, out: Path) -> dict[str, Any]:
    """Trainer's `report_to` (and where TensorBoard writes); an integration that is not installed is one line."""
    if report_to is ReportTo.NONE:
        return {"report_to": []}
    from transformers import integrations

    available = {
        ReportTo.TENSORBOARD: integrations.is_tensorboard_available,
        ReportTo.MLFLOW: integrations.is_mlflow_available,
    }
    if not available[report_to]():
        raise ConfigError(
            f"--report-to {report_to.value} needs the package '{report_to.value}': pip install {report_to.value}"
        )
    extra = {"logging_dir": str(out / "logs")} if report_to is ReportTo.TENSORBOARD else {}
    return {"report_to": [report_to.value], **extra}


def hold_out(items: list[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """A seeded random `fraction` of `items` (at least one) held out: (kept, held), both in their original order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, int(len(items) * fraction))])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def install_model(out: Path, tmp_model: Path, run_files: Iterable[str] = ()) -> None:
    """The new model is saved: now the old run (if --overwrite) goes. metrics.json first, so a crash from here on
    leaves an interrupted run, never a 'finished' one that mixes two runs."""
    (out / METRICS_FILE).unlink(missing_ok=True)
    for name in run_files:
        (out / name).unlink(missing_ok=True)
    for png in out.glob("confusion_matrix_*.png"):
        png.unlink()
    shutil.rmtree(out / MODEL_DIR, ignore_errors=True)
    tmp_model.rename(out / MODEL_DIR)


def finish_run(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json last (its presence marks the run finished), then the checkpoints go."""
    write_json_atomic(out / METRICS_FILE, metrics)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)


def training_record(trainer: Any, train_output: Any, hw: Hardware, started: float, **extra: Any) -> dict[str, Any]:
    """metrics.json's `training` section: what ran, for how long, where (`extra` first: sizes of the run's data)."""
    return {
        **extra,
        "epochs_run": float(trainer.state.epoch or 0.0),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
        "bf16": hw.bf16,
        "group_by_length": bool(trainer.args.group_by_length),
        "world_size": hw.world,
        "wall_time_s": time.perf_counter() - started,
    }


@dataclass(frozen=True)
class TrainedRun:
    """A finished `baton train` run directory (what `baton export` and `baton distill` read), read once: its model
    config, train_args.json and metrics.json."""

    root: Path
    config: dict[str, Any]
    train_args: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return [self.config["id2label"][str(i)] for i in range(len(self.config["id2label"]))]

    @property
    def multi_label(self) -> bool:
        return self.config.get("problem_type") == "multi_label_classification"

    @property
    def task(self) -> Task:
        """The run's task (runs from before entity recognition name none: classification)."""
        return Task.parse(self.train_args.get("task") or Task.CLASSIFICATION, f"{self.root}/train_args.json")

    @property
    def threshold(self) -> float:
        """The decision threshold the run chose (multi-label: tuned on validation or --threshold); older runs:
        the config's."""
        args = self.train_args
        return float(args.get("threshold") or args.get("config", {}).get("threshold") or 0.5)


def read_run(run_dir: str | Path) -> TrainedRun:
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{run_dir} holds no trained model ({model_dir}/config.json): run `baton train` first")
    for name in ("train_args.json", METRICS_FILE):
        if not (run_dir / name).is_file():
            raise ModelError(f"{run_dir} is not a finished run (no {name}): finish or resume `baton train`")
    parts = []
    for path in (model_dir / "config.json", run_dir / "train_args.json", run_dir / METRICS_FILE):
        try:
            parts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path} cannot be read as JSON ({str(exc)[:120]})") from exc
    return TrainedRun(run_dir, *parts)

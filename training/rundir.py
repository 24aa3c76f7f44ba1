"""The run directory's life cycle, shared by every task's trainer: refuse or resume, bf16, the main process."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Protocol

from baton.errors import OutputDirError
from baton.training.config import Bf16Mode

__all__ = [
    "CHECKPOINT_DIR",
    "METRICS_FILE",
    "MODEL_DIR",
    "clear_stale_checkpoints",
    "is_main_process",
    "last_checkpoint",
    "prepare_output_dir",
    "use_bf16",
]

METRICS_FILE = "metrics.json"
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
            raise OutputDirError(f"--output-dir: {out} already holds a finished run; pass --overwrite to replace it")
        if checkpoint is not None:
            raise OutputDirError(
                f"--output-dir: {out} holds an interrupted run; pass --resume to continue it or --overwrite"
            )
    return out, None


def clear_stale_checkpoints(out: Path) -> None:
    """Before a fresh (--overwrite) run: drop an interrupted run's checkpoints. A finished run's model, metrics and
    report stay until the new run has its model saved (`_write_run`): nothing is lost if this run fails."""
    if is_main_process():
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)

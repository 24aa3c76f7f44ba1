"""What a training run shows on the terminal, and what goes to its log file instead.

The terminal gets one progress bar (steps, with an ETA) and one compact line per evaluation: epoch, step, the last
training loss and the task's metric. Trainer's per-step dictionaries, transformers' notices ("You should probably
TRAIN this model...") and the `datasets` progress bars go to `RUN/train.log`, beside baton's own log lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LOG_FILE", "ConsoleCallback", "evaluation_line", "library_output_to", "use_console"]

LOG_FILE = "train.log"

logger = logging.getLogger(__name__)
# Trainer's per-step dictionaries: to the run's log file only (inside `library_output_to`, it does not propagate).
_trainer_log = logging.getLogger("baton.trainer_log")


def evaluation_line(epoch: float | None, step: int, loss: float | None, metric: str, value: float | None) -> str:
    """The compact line printed after each evaluation."""
    shown_loss = "n/a" if loss is None else f"{loss:.4f}"
    shown_value = "n/a" if value is None else f"{value:.4f}"
    return f"epoch {epoch or 0:.2f} step {step}: loss {shown_loss}, {metric} {shown_value}"


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback  # type: ignore[no-any-return]


def ConsoleCallback(metric: str) -> Any:
    """A `TrainerCallback` that draws the progress bar and the evaluation lines (rules in the module docstring)."""

    class _Console(_callback_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            self.bar: Any = None
            self.loss: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            from tqdm.auto import tqdm

            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, desc="training", unit="step", dynamic_ncols=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss = float(logs["loss"])
            if state.is_world_process_zero:
                _trainer_log.info("%s", json.dumps(logs, default=str))

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            value = (metrics or {}).get(f"eval_{metric}")
            line = evaluation_line(state.epoch, state.global_step, self.loss, metric, value)
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, flush=True)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return _Console()


def use_console(trainer: Any, metric: str) -> Any:
    """Swap Trainer's printer and progress callbacks for the console's; returns the trainer."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ConsoleCallback(metric))
    return trainer


@contextlib.contextmanager
def library_output_to(log_file: Path | None) -> Iterator[Path | None]:
    """For the block: transformers', datasets' and baton's log lines and Trainer's dictionaries go to `log_file`;
    transformers' own stderr handler and datasets' progress bars are off. Everything is restored after.

    The log is written as `.NAME.partial` and renamed to NAME when the block succeeds (to `NAME.failed` when it
    raises), so a run that is refused or dies never replaces the log of the finished run beside it. With no
    `log_file` (a torchrun rank other than 0), the same lines are dropped."""
    import datasets
    import transformers

    partial = None if log_file is None else log_file.with_name(f".{log_file.name}.partial")
    handler: logging.Handler
    if partial is None:
        handler = logging.NullHandler()
    else:
        partial.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(partial, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("transformers", "datasets", "baton", _trainer_log.name)]
    trainer_level = _trainer_log.level
    # transformers propagates to the root logger (the terminal) when CI is set: the libraries' lines and Trainer's
    # dictionaries go to the file only, whatever the environment
    quiet = [logging.getLogger(name) for name in ("transformers", "datasets", _trainer_log.name)]
    propagates = [lg.propagate for lg in quiet]
    for lg in quiet:
        lg.propagate = False
    bars_were_on = datasets.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_default_handler()
    datasets.utils.logging.disable_progress_bar()
    for lg in loggers:
        lg.addHandler(handler)
    _trainer_log.setLevel(logging.INFO)
    failed = True
    try:
        yield log_file
        failed = False
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        _trainer_log.setLevel(trainer_level)
        for lg, propagate in zip(quiet, propagates, strict=True):
            lg.propagate = propagate
        handler.close()
        transformers.utils.logging.enable_default_handler()
        if bars_were_on:
            datasets.utils.logging.enable_progress_bar()
        if partial is not None and log_file is not None:
            partial.replace(log_file.with_name(f"{log_file.name}.failed") if failed else log_file)

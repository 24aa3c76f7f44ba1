"""The training half of the task seam: what each task needs to train, found by its `Task`.

| task                 | data                 | trainer (twin: serving/tasks/)            | validation metric        |
|----------------------|----------------------|-------------------------------------------|--------------------------|
| text-classification  | training/data.py     | training/classification.py (+ fewshot.py) | accuracy; micro-F1 multi |
| token-classification | training/ner_data.py | training/token_classification.py          | entity F1                |

`run_training` (`baton train`), `baton tune`, `baton learning-curve` and `baton distill` ask this registry; none
compares task names. The trainers load on first use, so reading the registry imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from baton.task import Task
from baton.training.config import TrainConfig
from baton.training.rundir import RunResult

__all__ = ["TrainingTask", "resolve_task", "run_training", "training_task"]


def _lazy(module: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(import_module(module), name)(*args, **kwargs)

    call.__name__ = name
    return call


@dataclass(frozen=True)
class TrainingTask:
    """One task's training: how its files are checked and read, how a run and a trial are built, what it maximises.

    check_headers  the data files' columns, before torch is imported (a wrong column fails at once)
    run            a whole `baton train` run: TrainConfig → RunResult
    prepare        TrainConfig → (prepared data, validation metric): `baton tune` builds every trial on it
    build          (TrainConfig, data, model path, output dir, **Trainer arguments) → a built trainer
    rows           the training file as plain rows (`baton learning-curve` samples them)
    stratum        the stratum a row is sampled in ("" for one stratum)
    subset_columns the columns a sampled subset is written with (TrainConfig fields)
    distils        whether `baton distill` can distil a run of this task
    """

    task: Task
    check_headers: Callable[[TrainConfig], None]
    run: Callable[[TrainConfig], RunResult]
    prepare: Callable[[TrainConfig], tuple[Any, str]]
    build: Callable[..., Any]
    rows: Callable[[TrainConfig], list[dict[str, Any]]]
    stratum: Callable[[dict[str, Any], TrainConfig], str]
    subset_columns: dict[str, Any]
    distils: bool


def _no_check(cfg: TrainConfig) -> None:
    return None  # token files are read whole before torch: ner_data names the file, line and column


def _text_check(cfg: TrainConfig) -> None:
    from baton.training.data import check_headers

    check_headers(cfg)


def _text_prepare(cfg: TrainConfig) -> tuple[Any, str]:
    from baton.training.classification import validation_metric
    from baton.training.data import prepare_data

    data = prepare_data(cfg)
    return data, validation_metric(data.spec)


def _token_prepare(cfg: TrainConfig) -> tuple[Any, str]:
    from baton.training.token_classification import METRIC, prepare_token_data

    return prepare_token_data(cfg), METRIC


def _text_rows(cfg: TrainConfig) -> list[dict[str, Any]]:
    from baton.errors import DataError
    from baton.training.data import load_labelled_file

    assert cfg.train_file is not None
    ds = load_labelled_file(cfg.train_file, "--train-file")
    for column in (cfg.text_column, cfg.label_column, *([cfg.text_pair_column] if cfg.text_pair_column else [])):
        if column not in ds.column_names:
            raise DataError(f"--train-file: no column '{column}'; columns found: {', '.join(ds.column_names)}")
    return [dict(r) for r in ds]


def _token_rows(cfg: TrainConfig) -> list[dict[str, Any]]:
    from baton.training.ner_data import read_token_file

    assert cfg.train_file is not None
    f = read_token_file(cfg.train_file, "--train-file", cfg.tokens_column, cfg.tags_column, cfg.tag_names)
    return [{"tokens": list(s.words), "ner_tags": list(s.tags)} for s in f.sentences]


def _label_stratum(row: dict[str, Any], cfg: TrainConfig) -> str:
    """Single-label rows are sampled per label; multi-label rows in one stratum."""
    label = row[cfg.label_column]
    return "" if isinstance(label, list) else str(label)


_TASKS = {
    Task.CLASSIFICATION: TrainingTask(
        task=Task.CLASSIFICATION,
        check_headers=_text_check,
        run=_lazy("baton.training.classification", "run_classification"),
        prepare=_text_prepare,
        build=_lazy("baton.training.classification", "build_classification_trainer"),
        rows=_text_rows,
        stratum=_label_stratum,
        subset_columns={},
        distils=True,
    ),
    Task.ENTITIES: TrainingTask(
        task=Task.ENTITIES,
        check_headers=_no_check,
        run=_lazy("baton.training.token_classification", "run_token_training"),
        prepare=_token_prepare,
        build=_lazy("baton.training.token_classification", "build_token_trainer"),
        rows=_token_rows,
        stratum=lambda row, cfg: "",
        subset_columns={"tokens_column": "tokens", "tags_column": "ner_tags", "tag_names": None},
        distils=False,
    ),
}


def training_task(task: Task | str) -> TrainingTask:
    return _TASKS[Task(task)]


def resolve_task(cfg: TrainConfig) -> Task:
    """`--task`, or (auto) entity recognition when the training file holds token/tag rows, else classification."""
    from baton.training.ner_data import detect_token_layout

    if cfg.task != "auto":
        return Task(cfg.task)
    if cfg.train_file is not None and detect_token_layout(cfg.train_file, cfg.tokens_column, cfg.tags_column):
        return Task.ENTITIES
    return Task.CLASSIFICATION


def run_training(cfg: TrainConfig) -> RunResult:
    """Fine-tune `cfg.model` on the configured data with its task's trainer, and write the run directory.

    The terminal shows a progress bar and a line per evaluation; the rest goes to RUN/train.log
    (training/console.py). Under torchrun only rank 0 writes into the run directory."""
    task = training_task(resolve_task(cfg))
    task.check_headers(cfg)
    import torch  # noqa: F401  (first: a missing torch is named as such, not as transformers' own error)

    from baton.training.console import LOG_FILE, library_output_to
    from baton.training.rundir import is_main_process, prepare_output_dir

    prepare_output_dir(cfg)  # checks only: a finished run is refused before anything is written
    with library_output_to(Path(cfg.output_dir) / LOG_FILE if is_main_process() else None):
        return task.run(cfg)

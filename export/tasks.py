"""The export half of the task seam: what each task needs to become a verified bundle, found by its `Task`.

| task                 | parity samples (samples.py)         | judge (parity.py)   | manifest fields            |
|----------------------|-------------------------------------|---------------------|----------------------------|
| text-classification  | texts (+ pairs) and their label ids | ClassificationJudge | problem_type               |
| token-classification | CoNLL sentences joined, gold spans  | TokenJudge          | scheme, aggregation, stride|

The Optimum task is the task's own name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baton.errors import ExportError
from baton.export import parity
from baton.serving.encoder import TextEncoder
from baton.serving.tasks.classification import Classification
from baton.serving.tasks.token_classification import TokenClassification
from baton.task import Task
from baton.training.rundir import TrainedRun

__all__ = ["ENTITY_AGGREGATION", "ExportTask", "export_task", "task_of_architecture"]

# An entity model's default aggregation. Measured on CoNLL-2003 validation through the runtime: a first-sub-token
# run scored 0.49 (`first`) vs 0.32 (`simple`) on a slice, and even a `--label-all-tokens` run scored 0.909 (`first`)
# vs 0.874 (`simple`) on the whole split: token-level grouping cuts entities at the pre-tokenizer's splits inside
# words ("U.S.", "ex-England"), word-level grouping does not (docs/decisions.md).
ENTITY_AGGREGATION = "first"


@dataclass(frozen=True)
class ExportTask:
    """One task's export.

    architecture  the suffix of the `architectures` entry a run of this task holds (ForSequenceClassification)
    runtime       the runtime task the gates encode and judge through (the served rows are the verified rows)
    judge         (parity inputs, runtime task, gold spans or None, run) → the judge of "the same prediction"
    manifest      the manifest fields only this task has
    """

    task: Task
    architecture: str
    runtime: Callable[[TrainedRun, TextEncoder], Any]
    judge: Callable[[parity.ParityInputs, Any, Any, TrainedRun], parity.Judge]
    manifest: Callable[[TrainedRun], dict[str, Any]]


_TASKS = {
    Task.CLASSIFICATION: ExportTask(
        task=Task.CLASSIFICATION,
        architecture="ForSequenceClassification",
        runtime=lambda run, encoder: Classification(run.labels, encoder, run.multi_label, run.threshold),
        judge=lambda inputs, runtime, spans, run: parity.ClassificationJudge(inputs, run.multi_label),
        manifest=lambda run: {"problem_type": run.config.get("problem_type") or "single_label_classification"},
    ),
    Task.ENTITIES: ExportTask(
        task=Task.ENTITIES,
        architecture="ForTokenClassification",
        runtime=lambda run, encoder: TokenClassification(
            run.labels, encoder, ENTITY_AGGREGATION, int(run.train_args.get("stride", 0))
        ),
        judge=lambda inputs, runtime, spans, run: parity.TokenJudge(inputs, runtime, spans),
        manifest=lambda run: {
            "problem_type": "token_classification",
            "scheme": run.train_args.get("scheme", "IOB2"),
            "aggregation": ENTITY_AGGREGATION,
            "stride": int(run.train_args.get("stride", 0)),
        },
    ),
}


def export_task(task: Task | str) -> ExportTask:
    return _TASKS[Task(task)]


def task_of_architecture(config: dict[str, Any]) -> Task:
    """The task of a model by its head (`architectures` in config.json)."""
    for arch in config.get("architectures") or []:
        for task, spec in _TASKS.items():
            if arch.endswith(spec.architecture):
                return task
    heads = ", ".join(spec.architecture for spec in _TASKS.values())
    raise ExportError(f"unsupported architecture for export: {config.get('architectures')} (supported heads: {heads})")

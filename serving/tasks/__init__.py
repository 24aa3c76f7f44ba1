"""The runtime half of the task seam: what a model's logits mean, one module per task.

A task turns texts into model rows (`tokenize`, `collate`), checks the graph's output, and turns logits into answers
(`postprocess`). It also says what its answers look like outside the process: its KServe v2 outputs (`outputs`,
`encode_outputs`, used by every protocol front) and one JSON object per answer (`to_dict`: `baton predict`,
`baton score`). The engine runs whichever task the bundle's manifest names; a new task is a new module here plus
its entry in `_CLASSES`, and nothing else in the runtime changes.

| manifest task          | module                  | answer per text                                   |
|------------------------|-------------------------|---------------------------------------------------|
| text-classification    | classification.py       | `Prediction` (label, score, scores, top-k)        |
| token-classification   | token_classification.py | `Entities` (label, text, char offsets, score)     |
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any, ClassVar, Protocol, cast

import numpy as np

from baton.errors import InputError
from baton.serving.encoder import Encoded, TextEncoder, Tokens
from baton.serving.kserve_codec import Output, Tensor
from baton.serving.long_text import LongTextSpec
from baton.serving.manifest import AGGREGATION_CHOICES, Manifest
from baton.task import Task

__all__ = ["RuntimeTask", "check_aggregation", "runtime_task", "task_class"]

# the module and class of each task's runtime; imported on first use
_CLASSES: dict[Task, tuple[str, str]] = {
    Task.CLASSIFICATION: ("baton.serving.tasks.classification", "Classification"),
    Task.ENTITIES: ("baton.serving.tasks.token_classification", "TokenClassification"),
}


class RuntimeTask(Protocol):
    name: ClassVar[Task]
    takes_aggregation: ClassVar[bool]  # a request may name how tokens group into answers
    takes_pairs: ClassVar[bool]  # a bundle of this task may take a second text

    @classmethod
    def from_manifest(cls, manifest: Manifest, encoder: TextEncoder) -> RuntimeTask: ...

    @staticmethod
    def outputs(labels: Sequence[str]) -> tuple[Output, ...]:
        """The KServe v2 outputs every answer of this task can fill, the default set first to last."""
        ...

    @staticmethod
    def encode_outputs(answers: Sequence[Any], wanted: Sequence[str], labels: Sequence[str]) -> list[Tensor]:
        """The `wanted` outputs (names from `outputs`) of `answers`, as KServe tensors."""
        ...

    @staticmethod
    def to_dict(answer: Any) -> dict[str, Any]:
        """One answer as a JSON object."""
        ...

    @staticmethod
    def answer_bound(texts: int, chars: int, labels: Sequence[str]) -> int:
        """The most bytes the answer to `texts` texts of `chars` characters in all can take, on any protocol: a
        server refuses a request whose bound passes its send limit before doing any work."""
        ...

    def check_logits(self, shape: Sequence[Any]) -> str | None:
        """Why the graph's `logits` output shape does not fit the manifest, or None."""
        ...

    def tokenize(
        self, texts: Sequence[str], pairs: Sequence[str] | None, long_text: LongTextSpec | None = None
    ) -> list[Tokens]:
        """Model-ready items; `long_text` overrides the bundle's long-text rule (classification only)."""
        ...

    def collate(self, items: Sequence[Tokens]) -> Encoded: ...

    def empty_logits(self) -> np.ndarray: ...

    def postprocess(
        self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None, aggregation: str | None = None
    ) -> list[Any]: ...


def task_class(task: Task | str) -> type[RuntimeTask]:
    """The runtime class of `task` (the manifest has already refused unknown names)."""
    module, name = _CLASSES[Task(task)]
    return cast("type[RuntimeTask]", getattr(import_module(module), name))


def check_aggregation(task: Task | str, aggregation: str | None) -> None:
    """Refuse an aggregation the task cannot use (InputError): any for classification, an unknown name for
    entities. None means the bundle's default and always passes."""
    if aggregation is None:
        return
    if not task_class(task).takes_aggregation:
        raise InputError("aggregation applies to entity models only")
    if aggregation not in AGGREGATION_CHOICES:
        raise InputError(f"aggregation must be one of {', '.join(AGGREGATION_CHOICES)} (got {aggregation[:40]!r})")


def runtime_task(manifest: Manifest, encoder: TextEncoder) -> RuntimeTask:
    """The runtime task the manifest names."""
    return task_class(manifest.task).from_manifest(manifest, encoder)

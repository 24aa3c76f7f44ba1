"""The runtime half of the task seam: what a model's logits mean, one module per task.

A task turns texts into model rows (`tokenize`, `collate`), checks the graph's output, and turns logits into answers
(`postprocess`). The engine runs whichever task the bundle's manifest names; a new task is a new module here plus
its entry in `_TASKS`, and nothing else in the runtime changes.

| manifest task          | module                  | answer per text                                   |
|------------------------|-------------------------|---------------------------------------------------|
| text-classification    | classification.py       | `Prediction` (label, score, scores, top-k)        |
| token-classification   | token_classification.py | `Entities` (label, text, char offsets, score)     |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from baton.errors import InputError
from baton.serving.encoder import Encoded, TextEncoder, Tokens
from baton.serving.manifest import AGGREGATION_CHOICES, Manifest

__all__ = ["RuntimeTask", "check_aggregation", "runtime_task"]


class RuntimeTask(Protocol):
    name: str

    def check_logits(self, shape: Sequence[Any]) -> str | None:
        """Why the graph's `logits` output shape does not fit the manifest, or None."""
        ...

    def tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None) -> list[Tokens]: ...

    def collate(self, items: Sequence[Tokens]) -> Encoded: ...

    def empty_logits(self) -> np.ndarray: ...

    def postprocess(
        self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None, aggregation: str | None = None
    ) -> list[Any]: ...


def check_aggregation(task: str, aggregation: str | None) -> None:
    """Refuse an aggregation the task cannot use (InputError): any for classification, an unknown name for
    entities. None means the bundle's default and always passes."""
    if aggregation is None:
        return
    if task != "token-classification":
        raise InputError("aggregation applies to entity models only")
    if aggregation not in AGGREGATION_CHOICES:
        raise InputError(f"aggregation must be one of {', '.join(AGGREGATION_CHOICES)} (got {aggregation[:40]!r})")


def runtime_task(manifest: Manifest, encoder: TextEncoder) -> RuntimeTask:
    """The runtime task the manifest names."""
    if manifest.task == "token-classification":
        from baton.serving.tasks.token_classification import TokenClassification

        return TokenClassification(manifest.labels, encoder, manifest.aggregation, manifest.stride)
    from baton.serving.tasks.classification import Classification

    return Classification(manifest.labels, encoder, manifest.multi_label, manifest.threshold)

"""Parity gates: baton's own checks that an exported model still predicts what the trained one did.

The samples are encoded by the runtime's own task (`baton.serving.tasks`) on the staged bundle's tokenizer, so
PyTorch and onnxruntime see exactly the rows the server would build. What "the same prediction" means is the
task's: a `Judge` per task compares logits and scores quality.

| task                 | compared over            | agreement                              | quality     |
|----------------------|--------------------------|----------------------------------------|-------------|
| text-classification  | one row per text         | argmax (multi-label: the label set)    | accuracy    |
| token-classification | every unpadded token     | argmax per token                       | entity F1 * |

* of the runtime's own entities (its windows, aggregation and character offsets) against the gold spans.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from baton._ort import new_session
from baton.serving.encoder import Encoded, length_sorted_chunks

__all__ = [
    "ClassificationJudge",
    "Judge",
    "ParityInputs",
    "TokenJudge",
    "agreement",
    "alone_logits",
    "batch_effect",
    "both_batchings",
    "confident_agreement",
    "decisions",
    "encode_for_parity",
    "max_abs_diff",
    "onnx_logits",
    "paired_drop",
    "summary",
    "torch_logits",
]

logger = logging.getLogger(__name__)


class _Task(Protocol):
    def tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None) -> list[Any]: ...
    def collate(self, items: Sequence[Any]) -> Encoded: ...


@dataclass(frozen=True)
class ParityInputs:
    """Parity samples encoded by the runtime's own task, in length-sorted batches.

    The same arrays go to PyTorch and to onnxruntime, and they are what the server would feed the model for these
    texts: the bundle's tokenizer.json, its truncation side or windows, the character pre-cut, pairs, padding and
    input names. `order` maps each position in the batches back to its sample.
    """

    encoded: list[Encoded]
    order: list[int]
    label_ids: np.ndarray | None  # classification: class ids or multi-hot rows, in batch order; None: no labels
    source: str
    threshold: float = 0.5  # multi-label: the decision threshold the model was trained with
    calibration: list[Encoded] = field(default_factory=list)  # training texts, encoded alike: int8's fixed scales
    calibration_source: str = ""

    @property
    def batches(self) -> list[dict[str, np.ndarray]]:
        return [e.inputs for e in self.encoded]

    @property
    def size(self) -> int:
        return len(self.order)


def encode_for_parity(
    task: _Task,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    label_ids: np.ndarray | None,
    source: str,
    threshold: float = 0.5,
    batch_size: int = 32,
) -> ParityInputs:
    size = (lambda i: len(texts[i]) + len(pairs[i])) if pairs is not None else (lambda i: len(texts[i]))
    chunks = length_sorted_chunks(len(texts), size, batch_size)
    encoded = []
    for idx in chunks:
        tokens = task.tokenize([texts[i] for i in idx], None if pairs is None else [pairs[i] for i in idx])
        encoded.append(task.collate(tokens))
    order = [i for idx in chunks for i in idx]
    labels = None if label_ids is None else np.asarray(label_ids)[order]
    return ParityInputs(encoded, order, labels, source, threshold)


def torch_logits(model_dir: Path, inputs: ParityInputs, auto_class: str = "AutoModelForSequenceClassification") -> list:
    """Per-batch logits of the trained PyTorch model."""
    import torch
    import transformers

    model = getattr(transformers, auto_class).from_pretrained(model_dir).eval()
    out = []
    with torch.inference_mode():
        for batch in inputs.batches:
            out.append(model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy())
    return out


def onnx_logits(model_file: Path, inputs: ParityInputs, provider: str = "CPUExecutionProvider") -> list:
    """Per-batch logits of an ONNX file, through baton's own session settings."""
    return _batched(new_session(model_file, providers=[provider]), inputs)


def both_batchings(model_file: Path, inputs: ParityInputs) -> tuple[list, list]:
    """(batched, alone) logits of an ONNX file on the CPU, from one session: the two batchings a server produces."""
    session = new_session(model_file)
    return _batched(session, inputs), alone_logits(session, inputs)


def _feed(session: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The batch's arrays the graph takes (a graph may take no token_type_ids, say)."""
    names = {i.name for i in session.get_inputs()}
    return {k: v for k, v in batch.items() if k in names}


def _batched(session: Any, inputs: ParityInputs) -> list:
    return [np.asarray(session.run(["logits"], _feed(session, b))[0], dtype=np.float32) for b in inputs.batches]


def alone_logits(session: Any, inputs: ParityInputs) -> list:
    """Per-batch logits with every row run alone and unpadded, as the server runs a text that arrives by itself,
    laid out like the batched ones (token rows back at their positions, padding rows zero) so one judge compares
    the two. Dynamic int8 computes its activation scales per batch: this is the other batching."""
    out = []
    for batch in inputs.batches:
        feed = _feed(session, batch)
        mask = batch.get("attention_mask")
        rows, width = [], next(iter(feed.values())).shape[1]
        for r in range(next(iter(feed.values())).shape[0]):
            keep = np.arange(width) if mask is None else np.flatnonzero(mask[r])
            (logits,) = session.run(["logits"], {k: v[r : r + 1][:, keep] for k, v in feed.items()})
            logits = np.asarray(logits, dtype=np.float32)
            if logits.ndim == 3:
                placed = np.zeros((1, width, logits.shape[-1]), dtype=np.float32)
                placed[0, keep] = logits[0]
                logits = placed
            rows.append(logits)
        out.append(np.concatenate(rows))
    return out


def batch_effect(judge: Judge, batched: list, alone: list, min_margin: float) -> dict[str, Any]:
    """How much a model's answers depend on their batch-mates: decisions that differ between the two batchings,
    those of them that were confident alone (margin ≥ `min_margin`), and the largest logit change."""
    same = judge.same(batched, alone)
    sure = judge.margins(alone) >= min_margin
    return {
        "decisions": int(same.size),
        "flips": int((~same).sum()),
        "confident_flips": int((~same & sure).sum()),
        "confident_margin": min_margin,
        "max_abs_logit_diff": judge.max_abs_diff(batched, alone),
    }


def decisions(logits: np.ndarray, multi_label: bool, threshold: float = 0.5) -> np.ndarray:
    if multi_label:
        return (1.0 / (1.0 + np.exp(-logits)) >= threshold).astype(int)  # type: ignore[no-any-return]
    return logits.argmax(axis=-1)  # type: ignore[no-any-return]


def agreement(a: np.ndarray, b: np.ndarray, multi_label: bool, threshold: float = 0.5) -> float:
    """Share of rows with the same decision: argmax, or (multi-label) the same label set at `threshold`."""
    da, db = decisions(a, multi_label, threshold), decisions(b, multi_label, threshold)
    same = (da == db).all(axis=-1) if multi_label else da == db
    return float(np.mean(same)) if same.size else 1.0


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


class Judge(Protocol):
    """What 'the same prediction' means for one task."""

    quality_name: str
    auto_class: str

    def max_abs_diff(self, a: list, b: list) -> float: ...
    def agreement(self, a: list, b: list) -> float: ...
    def quality(self, logits: list) -> float | None: ...
    def margins(self, logits: list) -> np.ndarray: ...
    def same(self, a: list, b: list) -> np.ndarray: ...
    def correct(self, logits: list) -> np.ndarray | None: ...


class ClassificationJudge:
    quality_name = "accuracy"
    auto_class = "AutoModelForSequenceClassification"

    def __init__(self, inputs: ParityInputs, multi_label: bool) -> None:
        self.inputs, self.multi = inputs, multi_label

    def max_abs_diff(self, a: list, b: list) -> float:
        return max_abs_diff(np.concatenate(a), np.concatenate(b))

    def agreement(self, a: list, b: list) -> float:
        return agreement(np.concatenate(a), np.concatenate(b), self.multi, self.inputs.threshold)

    def quality(self, logits: list) -> float | None:
        right = self.correct(logits)
        return None if right is None else float(np.mean(right))

    def correct(self, logits: list) -> np.ndarray | None:
        """Per sample: 1 where the decision is right (multi-label: the whole label set), else 0."""
        labels = self.inputs.label_ids
        if labels is None:
            return None
        pred = decisions(np.concatenate(logits), self.multi, self.inputs.threshold)
        if self.multi:
            return (pred == (labels >= 0.5)).all(axis=-1).astype(float)  # type: ignore[no-any-return]
        return (pred == labels).astype(float)  # type: ignore[no-any-return]

    def same(self, a: list, b: list) -> np.ndarray:
        """Per decision: the same answer (multi-label: per label, flattened)."""
        da = decisions(np.concatenate(a), self.multi, self.inputs.threshold)
        db = decisions(np.concatenate(b), self.multi, self.inputs.threshold)
        return (da == db).reshape(-1)  # type: ignore[no-any-return]

    def margins(self, logits: list) -> np.ndarray:
        """How far each decision is from flipping: top-1 minus top-2 probability; multi-label: per label decision,
        |p - threshold| (flattened like `same`)."""
        x = np.concatenate(logits).astype(np.float64)
        if self.multi:
            return np.abs(1.0 / (1.0 + np.exp(-x)) - self.inputs.threshold).reshape(-1)  # type: ignore[no-any-return]
        return _top2_margin(x)


class TokenJudge:
    """Token rows compared over real tokens (attention mask 1); quality is entity F1 of the runtime's own entities
    (its windows, grouping and character offsets) against the gold character spans."""

    quality_name = "entity_f1"
    auto_class = "AutoModelForTokenClassification"

    def __init__(self, inputs: ParityInputs, task: Any, gold: Sequence[set[tuple[str, int, int]]] | None) -> None:
        self.inputs, self.task = inputs, task
        self.gold = None if gold is None else [gold[i] for i in inputs.order]

    def _real(self, logits: list) -> np.ndarray:
        rows = []
        for batch, encoded in zip(logits, self.inputs.encoded, strict=True):
            mask = encoded.inputs.get("attention_mask")
            mask = np.ones(batch.shape[:2], dtype=bool) if mask is None else mask.astype(bool)
            rows.append(batch[mask])
        return np.concatenate(rows)

    def max_abs_diff(self, a: list, b: list) -> float:
        return max_abs_diff(self._real(a), self._real(b))

    def agreement(self, a: list, b: list) -> float:
        return agreement(self._real(a), self._real(b), False)

    def margins(self, logits: list) -> np.ndarray:
        return _top2_margin(self._real(logits).astype(np.float64))

    def same(self, a: list, b: list) -> np.ndarray:
        return self._real(a).argmax(axis=-1) == self._real(b).argmax(axis=-1)  # type: ignore[no-any-return]

    def correct(self, logits: list) -> np.ndarray | None:
        return None  # entity F1 is not a mean over samples: the gate takes its point estimate

    def quality(self, logits: list) -> float | None:
        from baton.training.ner_metrics import span_metrics

        if self.gold is None:
            return None
        pred: list[set[tuple[str, int, int]]] = []
        for batch, encoded in zip(logits, self.inputs.encoded, strict=True):
            for answer in self.task.postprocess(batch, encoded):
                pred.append({(e.label, e.start, e.end) for e in answer.entities})
        return float(span_metrics(self.gold, pred)["entity_f1"])


def _top2_margin(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = shifted / shifted.sum(axis=-1, keepdims=True)
    top = np.sort(probs, axis=-1)
    return top[..., -1] - top[..., -2]  # type: ignore[no-any-return]


def paired_drop(correct_a: np.ndarray, correct_b: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """Quality drop a → b on the same samples (a paired comparison), with its normal-approximation interval:
    (drop, low, high), as fractions. Only samples on which the two disagree in correctness move it."""
    diff = np.asarray(correct_a, dtype=np.float64) - np.asarray(correct_b, dtype=np.float64)
    n = len(diff)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = float(diff.mean())
    half = z * float(diff.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
    return mean, mean - half, mean + half


def confident_agreement(judge: Judge, reference: list, other: list, min_margin: float) -> tuple[float, float]:
    """(agreement where the reference is confident, share of decisions that are): a flip of a 0.51-vs-0.49
    decision is not a regression."""
    sure = judge.margins(reference) >= min_margin
    if not sure.any():
        return 1.0, 0.0
    return float(judge.same(reference, other)[sure].mean()), float(sure.mean())


def summary(judge: Judge, logits: dict[str, list]) -> dict[str, Any]:
    """Per-variant quality (when labels are known)."""
    scores = {name: judge.quality(v) for name, v in logits.items()}
    return {} if any(v is None for v in scores.values()) else scores

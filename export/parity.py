"""Parity gates: baton's own checks that an exported model still predicts what the trained one did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton._ort import new_session
from baton.serving.encoder import TextEncoder, length_sorted_chunks

__all__ = ["ParityInputs", "agreement", "encode_for_parity", "max_abs_diff", "onnx_logits", "torch_logits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityInputs:
    """Parity samples encoded by the runtime's own `TextEncoder`, in length-sorted batches.

    The same arrays go to PyTorch and to onnxruntime, and they are what the server would feed the model for these
    texts: the bundle's tokenizer.json, its truncation side, the character pre-cut, pairs, padding and input names.
    """

    batches: list[dict[str, np.ndarray]]
    label_ids: np.ndarray | None  # class ids (single-label) or multi-hot rows; None when the file has no labels
    source: str
    threshold: float = 0.5  # multi-label: the decision threshold the model was trained with

    @property
    def size(self) -> int:
        return sum(len(b["input_ids"]) for b in self.batches)


def encode_for_parity(
    encoder: TextEncoder,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    label_ids: np.ndarray | None,
    source: str,
    threshold: float = 0.5,
    batch_size: int = 32,
) -> ParityInputs:
    size = (lambda i: len(texts[i]) + len(pairs[i])) if pairs is not None else (lambda i: len(texts[i]))
    chunks = length_sorted_chunks(len(texts), size, batch_size)
    batches = []
    for idx in chunks:
        tokens = encoder.tokenize([texts[i] for i in idx], None if pairs is None else [pairs[i] for i in idx])
        batches.append(encoder.collate(tokens).inputs)
    order = [i for idx in chunks for i in idx]
    labels = None if label_ids is None else np.asarray(label_ids)[order]
    return ParityInputs(batches, labels, source, threshold)


def torch_logits(model_dir: Path, inputs: ParityInputs) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.inference_mode():
        for batch in inputs.batches:
            out.append(model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy())
    return np.concatenate(out)


def onnx_logits(model_file: Path, inputs: ParityInputs, provider: str = "CPUExecutionProvider") -> np.ndarray:
    session = new_session(model_file, providers=[provider])
    names = {i.name for i in session.get_inputs()}
    out = []
    for batch in inputs.batches:
        (logits,) = session.run(["logits"], {k: v for k, v in batch.items() if k in names})
        out.append(np.asarray(logits, dtype=np.float32))
    return np.concatenate(out)


def decisions(logits: np.ndarray, multi_label: bool, threshold: float = 0.5) -> np.ndarray:
    if multi_label:
        return (1.0 / (1.0 + np.exp(-logits)) >= threshold).astype(int)  # type: ignore[no-any-return]
    return logits.argmax(axis=-1)  # type: ignore[no-any-return]


def agreement(a: np.ndarray, b: np.ndarray, multi_label: bool, threshold: float = 0.5) -> float:
    """Share of samples with the same decision: argmax, or (multi-label) the same label set at `threshold`."""
    da, db = decisions(a, multi_label, threshold), decisions(b, multi_label, threshold)
    same = (da == db).all(axis=-1) if multi_label else da == db
    return float(np.mean(same))


def accuracy(logits: np.ndarray, label_ids: np.ndarray, multi_label: bool, threshold: float = 0.5) -> float:
    pred = decisions(logits, multi_label, threshold)
    if multi_label:
        return float(np.mean((pred == (label_ids >= 0.5)).all(axis=-1)))
    return float(np.mean(pred == label_ids))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def summary(logits: dict[str, np.ndarray], inputs: ParityInputs, multi_label: bool) -> dict[str, Any]:
    """Per-variant accuracy (when labels are known)."""
    if inputs.label_ids is None:
        return {}
    return {name: accuracy(v, inputs.label_ids, multi_label, inputs.threshold) for name, v in logits.items()}

"""Parity gates: baton's own checks that an exported model still predicts what the trained one did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton._ort import new_session

__all__ = ["ParityInputs", "agreement", "max_abs_diff", "onnx_logits", "tokenize_for_parity", "torch_logits"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityInputs:
    """Tokenized parity samples in length-sorted batches (same arrays go to PyTorch and onnxruntime)."""

    batches: list[dict[str, np.ndarray]]
    label_ids: np.ndarray | None  # class ids (single-label) or multi-hot rows; None when the file has no labels
    source: str

    @property
    def size(self) -> int:
        return sum(len(b["input_ids"]) for b in self.batches)


def tokenize_for_parity(
    model_dir: Path,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    label_ids: np.ndarray | None,
    max_length: int,
    source: str,
    batch_size: int = 32,
) -> ParityInputs:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx],
            [pairs[i] for i in idx] if pairs else None,
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        batches.append({k: np.asarray(v, dtype=np.int64) for k, v in enc.items()})
    labels = None if label_ids is None else np.asarray(label_ids)[order]
    return ParityInputs(batches, labels, source)


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


def agreement(a: np.ndarray, b: np.ndarray, multi_label: bool) -> float:
    da, db = decisions(a, multi_label), decisions(b, multi_label)
    same = (da == db).all(axis=-1) if multi_label else da == db
    return float(np.mean(same))


def accuracy(logits: np.ndarray, label_ids: np.ndarray, multi_label: bool) -> float:
    pred = decisions(logits, multi_label)
    if multi_label:
        return float(np.mean((pred == (label_ids >= 0.5)).all(axis=-1)))
    return float(np.mean(pred == label_ids))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def summary(logits: dict[str, np.ndarray], inputs: ParityInputs, multi_label: bool) -> dict[str, Any]:
    """Per-variant accuracy (when labels are known)."""
    if inputs.label_ids is None:
        return {}
    return {name: accuracy(v, inputs.label_ids, multi_label) for name, v in logits.items()}

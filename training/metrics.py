"""Classification metrics from scikit-learn, shaped for metrics.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baton.serving.engine import sigmoid, softmax
from baton.training.trivial import top_answer_share

__all__ = ["classification_metrics", "encode_label_ids", "probabilities"]


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return sigmoid(logits) if multi_label else softmax(logits)


def encode_label_ids(raw: Sequence[Any], labels: Sequence[str], multi_label: bool) -> np.ndarray:
    """Class ids (single-label) or multi-hot rows (multi-label) of raw label values, by name.

    Raises KeyError naming the first labels the model does not know.
    """
    index = {name: i for i, name in enumerate(labels)}
    seen = {str(v) for row in raw for v in (row if multi_label else [row])}
    unknown = sorted(seen - set(index))
    if unknown:
        raise KeyError(", ".join(unknown[:10]))
    if not multi_label:
        return np.asarray([index[str(v)] for v in raw])
    hot = np.zeros((len(raw), len(labels)))
    for r, row in enumerate(raw):
        for v in row:
            hot[r, index[str(v)]] = 1
    return hot


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    from sklearn.metrics import precision_recall_fscore_support

    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids if y_true.ndim == 1 else None, average=None, zero_division=0
    )
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


def classification_metrics(
    logits: np.ndarray, label_ids: np.ndarray, labels: Sequence[str], multi_label: bool, threshold: float = 0.5
) -> dict[str, Any]:
    """Metrics of `logits` against `label_ids` (class ids, or multi-hot rows for multi-label)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    if multi_label:
        y_true = (np.asarray(label_ids) >= 0.5).astype(int)
        y_pred = (probabilities(logits, True) >= threshold).astype(int)
        return {
            "samples": len(y_true),
            "accuracy": float(accuracy_score(y_true, y_pred)),  # exact match of the whole label set
            "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "threshold": threshold,
            "top_answer_share": top_answer_share(y_pred),
            "per_class": _per_class(y_true, y_pred, labels),
        }
    y_true = np.asarray(label_ids).astype(int)
    y_pred = np.asarray(logits).argmax(axis=-1)
    ids = list(range(len(labels)))
    return {
        "samples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "top_answer_share": top_answer_share(y_pred),
        "per_class": _per_class(y_true, y_pred, labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
    }

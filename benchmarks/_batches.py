"""Parity inputs re-cut for the benchmarks: every row alone (its padding stripped), and rows padded into batches."""

from __future__ import annotations

import numpy as np

from baton.export import parity

__all__ = ["batched", "rows_alone"]


def rows_alone(inputs: parity.ParityInputs) -> list[dict[str, np.ndarray]]:
    """The parity texts one by one, padding stripped, shortest first."""
    rows = []
    for batch in inputs.batches:
        for i in range(len(batch["input_ids"])):
            n = int(batch["attention_mask"][i].sum())
            rows.append({k: v[i : i + 1, :n] for k, v in batch.items()})
    return sorted(rows, key=lambda r: r["input_ids"].shape[1])


def batched(rows: list[dict[str, np.ndarray]], size: int) -> list[dict[str, np.ndarray]]:
    out = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        width = max(r["input_ids"].shape[1] for r in chunk)
        out.append(
            {k: np.concatenate([np.pad(r[k], ((0, 0), (0, width - r[k].shape[1]))) for r in chunk]) for k in chunk[0]}
        )
    return out

"""Bench inputs: options, the texts (and pairs) a run sends."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from baton.errors import BatonError, DataError

__all__ = ["DEVICES", "BenchOptions", "PairText", "check_device", "load_texts", "pairs_of"]

DEVICES = ("cpu", "cuda")  # where a bench runs: named, never "auto", so a figure says what it measured

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    duration_s: float = 10.0
    warmup_s: float = 2.0
    seed: int = 0
    samples: int = 512
    quick: bool = False

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.warmup_s < 0 or self.samples < 1:
            raise ValueError("duration must be > 0, warm-up >= 0, samples >= 1")


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise BatonError(f"--device: expected {' or '.join(DEVICES)} (got {device!r})")
    return device


# ---- data and small helpers -----------------------------------------------------------------------------------


class PairText(str):
    """A bench text that carries its second text, for sentence-pair models. It sorts, buckets and samples by its
    first text like any other, and every backend sends `.pair` beside it (`pairs_of`)."""

    pair: str

    def __new__(cls, text: str, pair: str) -> PairText:
        item = super().__new__(cls, text)
        item.pair = pair
        return item


def pairs_of(batch: Sequence[str]) -> list[str] | None:
    """The second texts of a batch of `PairText`, or None for single texts."""
    return [t.pair for t in batch] if batch and isinstance(batch[0], PairText) else None  # type: ignore[attr-defined]


def load_texts(
    path: str, text_column: str = "text", samples: int = 512, seed: int = 0, pair_column: str | None = None
) -> list[str]:
    """A deterministic sample of texts (`PairText` with `pair_column`) from a CSV/JSON/JSONL/parquet/text file."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"--data: file not found: {file}")
    texts: list[str]
    if file.suffix.lower() in (".txt", ""):
        if pair_column:
            raise DataError(f"--text-pair-column: {file} is plain text; use .jsonl, .csv or .parquet for pairs")
        texts = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif file.suffix.lower() == ".jsonl":
        texts = []
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            for column, flag in ((text_column, "--text-column"), (pair_column, "--text-pair-column")):
                if column and column not in row:
                    raise DataError(
                        f"--data {file}: line {number} has no '{column}' column (columns: {', '.join(row)}); set {flag}"
                    )
            text = str(row[text_column])
            texts.append(PairText(text, str(row[pair_column])) if pair_column else text)
    else:
        try:
            from baton.training.data import load_labelled_file
        except ImportError as exc:
            raise DataError("--data: use .jsonl or .txt, or install baton[train] for csv/parquet") from exc
        ds = load_labelled_file(path, "--data")
        for column in (text_column, pair_column):
            if column and column not in ds.column_names:
                raise DataError(f"--data {file}: no column '{column}'; columns found: {', '.join(ds.column_names)}")
        texts = [str(t) for t in ds[text_column]]
        if pair_column:
            texts = [PairText(t, str(p)) for t, p in zip(texts, ds[pair_column], strict=True)]
    if not texts:
        raise DataError(f"--data {file}: no texts")
    rng = random.Random(seed)
    return [texts[i] for i in sorted(rng.sample(range(len(texts)), min(samples, len(texts))))]

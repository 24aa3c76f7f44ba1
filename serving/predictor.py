"""`Predictor`: the embedded runtime. Loads a bundle, picks provider and variant, answers texts in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import InputError
from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Encoded, Engine, build_engine, choose_variant
from baton.serving.tasks import check_aggregation

__all__ = ["Predictor", "choose_variant"]

logger = logging.getLogger(__name__)


class Predictor:
    """Classify texts or find their entities in-process, with onnxruntime and tokenizers only (no torch)."""

    def __init__(self, engine: Engine, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.engine = engine
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        bundle_dir: str | Path,
        device: str = "auto",
        variant: str | None = None,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> Predictor:
        return cls(build_engine(bundle_dir, device, variant, threads), batch_size)

    @property
    def labels(self) -> list[str]:
        return self.engine.labels

    @property
    def pairs(self) -> bool:
        """Whether the model takes text pairs (`predict(texts, pairs=...)`), as its manifest declares."""
        return self.engine.pairs

    def _batches(
        self, texts: Sequence[str], pairs: Sequence[str] | None
    ) -> Iterator[tuple[list[int], Encoded, np.ndarray]]:
        """(indices, encoded batch, logits) over length-sorted batches of `texts` (and their pairs)."""
        if isinstance(texts, str) or isinstance(pairs, str):
            raise TypeError("takes a sequence of texts, not a single string")
        self.engine.check_inputs(texts, pairs)
        size = (lambda i: len(texts[i]) + len(pairs[i])) if pairs is not None else (lambda i: len(texts[i]))
        for idx in length_sorted_chunks(len(texts), size, self.batch_size):
            chunk_pairs = None if pairs is None else [pairs[i] for i in idx]
            encoded = self.engine.preprocess([texts[i] for i in idx], chunk_pairs)
            yield idx, encoded, self.engine.run(encoded)

    @property
    def task(self) -> str:
        """The bundle's task, as its manifest names it: text-classification or token-classification."""
        return self.engine.bundle.manifest.task

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw logits, one row per text in input order (classification bundles)."""
        if self.task != "text-classification":
            raise InputError(f"logits() is for classification; this bundle's task is {self.task}: use predict()")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx, _, logits in self._batches(texts, pairs):
            out[idx] = logits
        return out

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        pairs: Sequence[str] | None = None,
        aggregation: str | None = None,
    ) -> list[Any]:
        """One answer per text (or text pair), in input order; length-sorted into batches to cut padding.

        Classification: a `Prediction` each. Entity recognition: an `Entities` each (label, text, character
        offsets into the text, score), grouped by `aggregation` (default: the bundle's; see
        `baton.serving.tasks.token_classification`)."""
        check_aggregation(self.task, aggregation)  # before any batch runs
        results: list[Any] = [None] * len(texts)
        for idx, encoded, logits in self._batches(texts, pairs):
            for i, answer in zip(idx, self.engine.postprocess(logits, encoded, top_k, aggregation), strict=True):
                results[i] = answer
        truncated = sum(p.truncated for p in results if p is not None)
        if truncated:
            logger.info(
                "%d of %d text(s) were longer than %d tokens and were truncated",
                truncated,
                len(texts),
                self.engine.max_length,
            )
        return [p for p in results if p is not None]

"""`Predictor`: the embedded runtime. Loads a bundle, picks provider and variant, classifies texts in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Encoded, Engine, Prediction, build_engine, choose_variant

__all__ = ["Predictor", "choose_variant"]

logger = logging.getLogger(__name__)

class Predictor:
    """Classify texts in-process with onnxruntime and tokenizers only (no torch)."""

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

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw logits, one row per text in input order."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx, _, logits in self._batches(texts, pairs):
            out[idx] = logits
        return out

    def predict(
        self, texts: Sequence[str], top_k: int | None = None, pairs: Sequence[str] | None = None
    ) -> list[Prediction]:
        """One prediction per text (or text pair), in input order; length-sorted into batches to cut padding."""
        results: list[Prediction | None] = [None] * len(texts)
        for idx, encoded, logits in self._batches(texts, pairs):
            for i, prediction in zip(idx, self.engine.postprocess(logits, encoded, top_k), strict=True):
                results[i] = prediction
        truncated = sum(p.truncated for p in results if p is not None)
        if truncated:
            logger.info(
                "%d of %d text(s) were longer than %d tokens and were truncated",
                truncated,
                len(texts),
                self.engine.max_length,
            )
        return [p for p in results if p is not None]

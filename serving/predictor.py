"""`Predictor`: the embedded runtime. Loads a bundle, picks provider and variant, answers texts in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from baton.errors import InputError
from baton.serving.bundle import Bundle
from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Encoded, Engine, build_engine, choose_variant, default_threads, default_workers
from baton.serving.long_text import LongText, LongTextSpec, requested
from baton.serving.tasks import check_aggregation
from baton.task import Task

__all__ = ["Predictor", "choose_variant"]

logger = logging.getLogger(__name__)


_Batch = tuple[list[int], Encoded, np.ndarray]
_T = TypeVar("_T")


class Predictor:
    """Classify texts or find their entities in-process, with onnxruntime and tokenizers only (no torch).

    On a CPU with 2+ cores the engine has two workers: a call with several batches runs them two at a time, side by
    side, each on its share of the cores, which on 2 cores ran 1.25x the best single session (docs/decisions.md,
    "Serving: niced workers, uvloop, two sessions side by side"); a call of one batch runs it on every core.
    """

    def __init__(self, engine: Engine, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.engine = engine
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        bundle_dir: Bundle | str | Path,
        device: str = "auto",
        variant: str | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        workers: int | None = None,
    ) -> Predictor:
        """`workers`: batches run side by side (None: 2 with 2+ threads on CPU, else 1; only CPU runs two)."""
        threads = default_threads(threads)
        workers = default_workers(threads, workers)
        # Two workers tokenize their own batches: no tokenizer pool beside them (serving/encoder.py). The wide session
        # keeps spinning between calls, as with one worker: a lone call after a pause is then as fast as ever.
        engine = build_engine(
            bundle_dir, device, variant, threads, workers, tokenizer_pool=workers == 1, stop_wide_spin=False
        )
        return cls(engine, batch_size)

    @property
    def labels(self) -> list[str]:
        return self.engine.labels

    @property
    def pairs(self) -> bool:
        """Whether the model takes text pairs (`predict(texts, pairs=...)`), as its manifest declares."""
        return self.engine.pairs

    def _batches(
        self, texts: Sequence[str], pairs: Sequence[str] | None, long_text: LongTextSpec | None = None
    ) -> Iterator[tuple[list[int], Encoded, np.ndarray]]:
        """(indices, encoded batch, logits) over length-sorted batches of `texts` (and their pairs). A batch holds
        at most `batch_size` texts and, when texts run as several rows (windows, chunks), about `batch_size` rows:
        a long document makes a batch of its own rather than a batch of 32 such documents."""
        if isinstance(texts, str) or isinstance(pairs, str):
            raise TypeError("takes a sequence of texts, not a single string")
        self.engine.check_inputs(texts, pairs)
        size = (lambda i: len(texts[i]) + len(pairs[i])) if pairs is not None else (lambda i: len(texts[i]))
        chunks = length_sorted_chunks(len(texts), size, self.batch_size)

        def one(idx: list[int], wide: bool = True) -> list[_Batch]:
            chunk_pairs = None if pairs is None else [pairs[i] for i in idx]
            items = self.engine.tokenize([texts[i] for i in idx], chunk_pairs, long_text)
            out = []
            for part in _by_rows(list(range(len(idx))), [t.rows for t in items], self.batch_size):
                encoded = self.engine.collate([items[j] for j in part])
                out.append(([idx[j] for j in part], encoded, self._run(encoded, wide)))
            return out

        if self.engine.workers < 2 or len(chunks) < 2:
            for idx in chunks:
                yield from one(idx)
            return
        for batches in _side_by_side(chunks, lambda idx: one(idx, wide=False), self.engine.workers):
            yield from batches

    def _run(self, encoded: Encoded, wide: bool) -> np.ndarray:
        """The batch's logits, its rows run `batch_size` at a time: one document of many windows runs in slices,
        so memory follows the batch size, not the document's length."""
        rows = int(encoded.inputs["input_ids"].shape[0])
        if rows <= self.batch_size:
            return self.engine.run(encoded, wide=wide)
        parts = []
        for start in range(0, rows, self.batch_size):
            part = {k: v[start : start + self.batch_size] for k, v in encoded.inputs.items()}
            parts.append(self.engine.run(Encoded(part, [False] * len(part["input_ids"])), wide=wide))
        return np.concatenate(parts)

    @property
    def task(self) -> Task:
        """The bundle's task, as its manifest names it."""
        return self.engine.bundle.manifest.task

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw logits, one row per text in input order (classification bundles), of each text as the window takes
        it (truncated: a text in chunks has a row per window; `predict` combines them)."""
        if self.task is not Task.CLASSIFICATION:
            raise InputError(f"logits() is for classification; this bundle's task is {self.task}: use predict()")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx, _, logits in self._batches(texts, pairs, LongTextSpec(mode=LongText.TRUNCATE)):
            out[idx] = logits
        return out

    def predict(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        pairs: Sequence[str] | None = None,
        aggregation: str | None = None,
        long_text: str | LongTextSpec | None = None,
        chunk_combine: str | None = None,
    ) -> list[Any]:
        """One answer per text (or text pair), in input order; length-sorted into batches to cut padding.

        Classification: a `Prediction` each; a text past the window is truncated or scored in chunks (`long_text`
        "truncate" or "chunk", or a whole `LongTextSpec`; `chunk_combine` "mean" or "max"; default: the bundle's,
        serving/long_text.py).
        Entity recognition: an `Entities` each (label, text, character offsets into the text, score), grouped by
        `aggregation` (default: the bundle's; see `baton.serving.tasks.token_classification`)."""
        check_aggregation(self.task, aggregation)  # before any batch runs
        m = self.engine.bundle.manifest
        default = m.long_text if m.task is Task.CLASSIFICATION else None
        if isinstance(long_text, LongTextSpec):  # a whole rule (stride, max_chunks too), not just its mode
            spec = requested(default, long_text.mode.value, None) and long_text
        else:
            spec = requested(default, long_text, chunk_combine)
        results: list[Any] = [None] * len(texts)
        for idx, encoded, logits in self._batches(texts, pairs, spec):
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


def _by_rows(items: list[int], rows: list[int], limit: int) -> list[list[int]]:
    """`items` cut, in order, into runs of at most `limit` rows (an item of more rows makes a run of its own)."""
    runs: list[list[int]] = [[]]
    used = 0
    for item, n in zip(items, rows, strict=True):
        if runs[-1] and used + n > limit:
            runs.append([])
            used = 0
        runs[-1].append(item)
        used += n
    return runs


def _side_by_side(chunks: list[list[int]], run: Callable[[list[int]], _T], workers: int) -> Iterator[_T]:
    """`run` each chunk in `workers` threads, at most two chunks per worker in flight; results in chunk order."""
    with ThreadPoolExecutor(workers, thread_name_prefix="baton-predict") as pool:
        pending: list[Future[_T]] = []
        for idx in chunks:
            pending.append(pool.submit(run, idx))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()

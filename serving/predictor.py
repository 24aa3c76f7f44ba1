"""`Predictor`: the embedded runtime. Loads a bundle, picks provider and variant, classifies texts in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from baton.errors import BundleError
from baton.serving.bundle import Bundle, load_bundle
from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Encoded, Engine, Prediction, available_providers

__all__ = ["Predictor", "choose_variant"]

logger = logging.getLogger(__name__)

_DEVICES = ("auto", "cpu", "cuda")
_CPU_ORDER = ("int8", "fp32")
_CUDA_ORDER = ("fp16", "fp32")


def _cuda_answers() -> bool:
    if "CUDAExecutionProvider" not in available_providers():
        return False
    try:
        import ctypes

        for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
            try:
                lib = ctypes.CDLL(name)
                count = ctypes.c_int(0)
                return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
            except OSError:
                continue
    except Exception:  # any driver trouble means: no usable GPU
        return False
    return False


def choose_variant(bundle: Bundle, device: str, variant: str | None) -> tuple[str, str, str]:
    """Return (variant, provider, why) for a device request."""
    if device not in _DEVICES:
        raise BundleError(f"device must be one of {', '.join(_DEVICES)} (got {device!r})")
    cuda = device == "cuda" or (device == "auto" and _cuda_answers())
    if device == "cuda" and not _cuda_answers():
        raise BundleError(
            "device 'cuda' asked for, but onnxruntime has no CUDA provider or no GPU answers "
            "(install onnxruntime-gpu: see the 'gpu' extra)"
        )
    provider = "cuda" if cuda else "cpu"
    if variant is not None:
        if variant not in bundle.models:
            raise BundleError(
                f"bundle {bundle.root} has no '{variant}' variant (it has: {', '.join(sorted(bundle.models))})"
            )
        return variant, provider, f"variant {variant} requested"
    order = _CUDA_ORDER if cuda else _CPU_ORDER
    for name in order:
        if name in bundle.models:
            why = (
                "CUDA provider available and a GPU answers"
                if cuda
                else ("no usable CUDA provider" if device == "auto" else "CPU requested")
            )
            return name, provider, f"{why}; preferred {'/'.join(order)}"
    raise BundleError(f"bundle {bundle.root} has no variant usable on {provider} (has: {', '.join(bundle.models)})")


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
        bundle = load_bundle(bundle_dir)
        chosen, provider, why = choose_variant(bundle, device, variant)
        engine = Engine(bundle, chosen, provider, threads)
        logger.info(
            "loaded %s: variant %s on %s (%d threads): %s", bundle.root, chosen, engine.provider, engine.threads, why
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

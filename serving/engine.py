"""The inference engine: `preprocess` (tokenizers) → `run` (onnxruntime) → `postprocess` (probabilities, labels).

Three separate steps so the batcher can tokenize the next batch while the current one runs, and so tests can fake
any one of them. Imports neither torch nor transformers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baton._ort import new_session
from baton.errors import BundleError
from baton.serving.bundle import Bundle

__all__ = ["Encoded", "Engine", "Prediction", "Tokens", "available_providers", "default_threads", "sigmoid", "softmax"]

logger = logging.getLogger(__name__)

# Texts are cut to this many characters per allowed token before tokenizing, so a multi-megabyte input cannot
# stall the tokenizer; the cut is reported as truncation like any other.
_CHARS_PER_TOKEN_CAP = 24


@dataclass(frozen=True)
class Tokens:
    """One text, tokenized, unpadded."""

    ids: list[int]
    type_ids: list[int]
    truncated: bool

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Encoded:
    """A tokenized batch, padded to its longest member."""

    inputs: dict[str, np.ndarray]
    truncated: list[bool]

    @property
    def size(self) -> int:
        return len(self.truncated)

    @property
    def padded_tokens(self) -> int:
        ids = self.inputs["input_ids"]
        return int(ids.shape[0] * ids.shape[1])


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    top_k: list[tuple[str, float]]
    truncated: bool
    labels: list[str] | None = None  # multi-label: every label at or above the threshold


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))  # type: ignore[no-any-return]


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_threads(threads: int | None = None) -> int:
    """`threads` if given, else one intra-op thread per core."""
    return threads or max(1, os.cpu_count() or 1)


class Engine:
    """One bundle variant, its tokenizer, and the onnxruntime session(s) that run it.

    With `workers=1` there is one session using `threads` intra-op threads. With `workers=2` (the server on CPU)
    there is also a *narrow* session of `threads // workers` threads: two workers can then run two batches at
    once, one core each, which measured faster on 2 cores than one batch at a time on both (docs/benchmarks.md);
    `run(..., wide=True)` still uses every thread when a batch runs alone.
    """

    def __init__(
        self,
        bundle: Bundle,
        variant: str,
        provider: str = "cpu",
        threads: int | None = None,
        spin: bool = True,
        workers: int = 1,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if variant not in bundle.models:
            raise BundleError(
                f"bundle {bundle.root} has no '{variant}' variant (it has: {', '.join(sorted(bundle.models))})"
            )
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.bundle = bundle
        self.variant = variant
        self.labels = bundle.labels
        self.multi_label = bundle.multi_label
        self.threshold = float(bundle.manifest.get("threshold", 0.5))
        self.max_length = bundle.max_length
        tok_meta = bundle.manifest["tokenizer"]
        self._pad_id = int(tok_meta["pad_id"])
        # Set both explicitly: tokenizer.json files often carry fixed padding (e.g. to 128) that costs ~4x.
        # Padding happens in `collate`, per batch, after the batcher has grouped texts by length.
        self._tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        self._tokenizer.enable_truncation(
            self.max_length, direction=tok_meta.get("truncation_side", "right"), strategy="longest_first"
        )
        self._tokenizer.no_padding()
        self._input_names = list(bundle.manifest["input_names"])

        providers = ["CPUExecutionProvider"]
        if provider == "cuda":
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        model_path = str(bundle.models[variant].path)

        def session(intra: int, spin: bool, stop_spinning: bool) -> Any:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = intra
            options.inter_op_num_threads = 1
            # Spinning intra-op threads cut latency. With two workers the spin stops when a run ends, so an idle
            # wide session does not take a core from the narrow run beside it.
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            if stop_spinning:
                options.add_session_config_entry("session.force_spinning_stop", "1")
            return new_session(model_path, options, providers)

        self.threads = default_threads(threads)
        # Concurrent runs only pay on CPU, where each worker gets its own cores; one GPU session serves one worker.
        self.workers = workers if provider == "cpu" else 1
        self._session = session(self.threads, spin, stop_spinning=self.workers > 1)
        self.provider = "cuda" if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"
        self.narrow_threads = max(1, self.threads // self.workers)
        self._narrow = session(self.narrow_threads, False, False) if self.workers > 1 else self._session
        self._char_cap = self.max_length * _CHARS_PER_TOKEN_CAP

    def tokenize(self, texts: Sequence[str]) -> list[Tokens]:
        """Tokenize without padding (the batcher pads per batch, after sorting by length)."""
        cut = [t if len(t) <= self._char_cap else t[: self._char_cap] for t in texts]
        encodings = self._tokenizer.encode_batch(cut)
        return [
            Tokens(e.ids, e.type_ids, bool(e.overflowing) or len(c) < len(t))
            for e, c, t in zip(encodings, cut, texts, strict=True)
        ]

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        """Pad tokenized texts to the longest among them."""
        width = max((len(t) for t in items), default=0)
        ids = np.full((len(items), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(items), width), dtype=np.int64)
        types = np.zeros((len(items), width), dtype=np.int64)
        for row, t in enumerate(items):
            ids[row, : len(t)] = t.ids
            mask[row, : len(t)] = 1
            types[row, : len(t)] = t.type_ids
        inputs = {"input_ids": ids}
        if "attention_mask" in self._input_names:
            inputs["attention_mask"] = mask
        if "token_type_ids" in self._input_names:
            inputs["token_type_ids"] = types
        return Encoded(inputs, [t.truncated for t in items])

    def preprocess(self, texts: Sequence[str]) -> Encoded:
        """Tokenize and pad to the longest in the batch."""
        return self.collate(self.tokenize(texts))

    def run(self, encoded: Encoded, wide: bool = True) -> np.ndarray:
        """Logits for a batch; `wide=False` runs it on the narrow session (another batch runs beside it)."""
        if encoded.size == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        session = self._session if wide else self._narrow
        (logits,) = session.run(["logits"], encoded.inputs)
        return np.asarray(logits, dtype=np.float32)

    def postprocess(self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None) -> list[Prediction]:
        probs = sigmoid(logits) if self.multi_label else softmax(logits)
        k = len(self.labels) if not top_k else min(top_k, len(self.labels))
        out: list[Prediction] = []
        for row, truncated in zip(probs, encoded.truncated, strict=True):
            order = np.argsort(-row, kind="stable")
            best = int(order[0])
            chosen = [self.labels[i] for i in order if row[i] >= self.threshold] if self.multi_label else None
            out.append(
                Prediction(
                    label=self.labels[best],
                    score=float(row[best]),
                    scores={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                    top_k=[(self.labels[i], float(row[i])) for i in order[:k]],
                    truncated=truncated,
                    labels=chosen,
                )
            )
        return out

    def __call__(self, texts: Sequence[str], top_k: int | None = None) -> list[Prediction]:
        encoded = self.preprocess(texts)
        return self.postprocess(self.run(encoded), encoded, top_k)

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
from baton.serving.encoder import Encoded, TextEncoder, Tokens

__all__ = ["Encoded", "Engine", "Prediction", "Tokens", "available_providers", "default_threads", "sigmoid", "softmax"]

logger = logging.getLogger(__name__)


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

        if variant not in bundle.models:
            raise BundleError(
                f"bundle {bundle.root} has no '{variant}' variant (it has: {', '.join(sorted(bundle.models))})"
            )
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.bundle = bundle
        self.variant = variant
        manifest = bundle.manifest
        self.labels = list(manifest.labels)
        self.multi_label = manifest.multi_label
        self.threshold = manifest.threshold
        self.max_length = manifest.max_length
        self.pairs = manifest.pairs
        self.encoder = TextEncoder(bundle.tokenizer_path, manifest.tokenizer, manifest.input_names)

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
        self._check_graph()

    def _check_graph(self) -> None:
        """The graph must take the manifest's inputs and return one logit per manifest label."""
        names = sorted(i.name for i in self._session.get_inputs())
        if names != sorted(self.bundle.manifest.input_names):
            raise BundleError(
                f"bundle {self.bundle.root}: {self.variant} model takes inputs {names}, "
                f"the manifest says {sorted(self.bundle.manifest.input_names)}"
            )
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        if "logits" not in outputs:
            raise BundleError(f"bundle {self.bundle.root}: {self.variant} model has no 'logits' output")
        width = outputs["logits"][-1] if outputs["logits"] else None
        if not isinstance(width, int) or width != len(self.labels):
            raise BundleError(
                f"bundle {self.bundle.root}: {self.variant} model returns {width} logits per text, "
                f"the manifest lists {len(self.labels)} labels"
            )

    def check_inputs(self, texts: Sequence[str], pairs: Sequence[str] | None) -> None:
        """Refuse inputs that differ from what the manifest declares (InputError)."""
        self.bundle.manifest.check_inputs(len(texts), None if pairs is None else len(pairs))

    def tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Tokens]:
        """Tokenize without padding (the batcher pads per batch, after sorting by length)."""
        self.check_inputs(texts, pairs)
        return self.encoder.tokenize(texts, pairs)

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        """Pad tokenized texts to the longest among them."""
        return self.encoder.collate(items)

    def preprocess(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoded:
        """Tokenize and pad to the longest in the batch."""
        return self.collate(self.tokenize(texts, pairs))

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

    def __call__(
        self, texts: Sequence[str], top_k: int | None = None, pairs: Sequence[str] | None = None
    ) -> list[Prediction]:
        encoded = self.preprocess(texts, pairs)
        return self.postprocess(self.run(encoded), encoded, top_k)

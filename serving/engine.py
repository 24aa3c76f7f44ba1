"""The inference engine: `preprocess` (tokenizers) → `run` (onnxruntime) → `postprocess` (the task's answers).

Three separate steps so the batcher can tokenize the next batch while the current one runs, and so tests can fake
any one of them. What the texts become and what the logits mean is the bundle's task (`baton.serving.tasks`);
the engine itself only runs sessions. `load_engine` is the one place an engine is built from a bundle directory.
Imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baton._ort import new_session
from baton.errors import BundleError
from baton.serving.bundle import Bundle, load_bundle
from baton.serving.encoder import Encoded, TextEncoder, Tokens
from baton.serving.long_text import LongTextSpec
from baton.serving.tasks import RuntimeTask, runtime_task
from baton.serving.tasks.classification import Prediction, sigmoid, softmax

__all__ = [
    "Encoded",
    "Engine",
    "Prediction",
    "Tokens",
    "available_providers",
    "build_engine",
    "choose_variant",
    "default_threads",
    "default_workers",
    "sigmoid",
    "softmax",
]

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


def build_engine(
    bundle: Bundle | str | Path,
    device: str = "auto",
    variant: str | None = None,
    threads: int | None = None,
    workers: int = 1,
    spin: bool = True,
    tokenizer_pool: bool = True,
    stop_wide_spin: bool | None = None,
) -> Engine:
    """The one place an engine is built: load and verify the bundle (unless given), choose the variant for the
    device, open the sessions, and log what was chosen and why."""
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    chosen, provider, why = choose_variant(bundle, device, variant)
    engine = Engine(
        bundle,
        chosen,
        provider,
        threads,
        spin=spin,
        workers=workers,
        tokenizer_pool=tokenizer_pool,
        stop_wide_spin=stop_wide_spin,
    )
    logger.info(
        "loaded %s (%s): variant %s on %s (%s), %d intra-op thread(s), %d worker(s)%s",
        bundle.root,
        bundle.manifest.task,
        chosen,
        engine.provider,
        why,
        engine.threads,
        engine.workers,
        f" ({engine.narrow_threads} thread(s) each when two batches run at once)" if engine.workers > 1 else "",
    )
    return engine


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_threads(threads: int | None = None) -> int:
    """`threads` if given, else one intra-op thread per core."""
    return threads or max(1, os.cpu_count() or 1)


def default_workers(threads: int, workers: int | None = None) -> int:
    """`workers` if given, else 2 with 2+ intra-op threads (two batches side by side, each on its share), else 1.
    An engine on CUDA runs one whatever is asked."""
    return workers or (2 if threads >= 2 else 1)


def _verified_bytes(bundle: Bundle, variant: str) -> bytes:
    """The model file's bytes, checked against the manifest's SHA-256 as read: what is verified is what loads."""
    entry = bundle.models[variant]
    data = entry.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise BundleError(f"bundle {bundle.root}: {entry.path.name} does not match its SHA-256 (altered?)")
    return data


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
        tokenizer_pool: bool = True,
        stop_wide_spin: bool | None = None,
    ) -> None:
        """`stop_wide_spin`: whether the wide session's threads stop spinning as each run ends (None: when there is
        a narrow session, whose runs they would slow)."""
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
        self.encoder = TextEncoder(bundle.tokenizer_path, manifest.tokenizer, manifest.input_names, pool=tokenizer_pool)
        self.task: RuntimeTask = runtime_task(manifest, self.encoder)

        providers = ["CPUExecutionProvider"]
        if provider == "cuda":
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        model_bytes = _verified_bytes(bundle, variant)

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
            try:
                return new_session(model_bytes, options, providers)
            except Exception as exc:  # onnxruntime's own errors (not ONNX, empty, external data, bad graph)
                first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
                raise BundleError(
                    f"bundle {bundle.root}: onnxruntime cannot load its {variant} model ({first})"
                ) from exc

        self.threads = default_threads(threads)
        # Concurrent runs only pay on CPU, where each worker gets its own cores; one GPU session serves one worker.
        self.workers = workers if provider == "cpu" else 1
        stop = self.workers > 1 if stop_wide_spin is None else stop_wide_spin
        self._session = session(self.threads, spin, stop_spinning=stop)
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
        why = self.task.check_logits(list(outputs["logits"] or []))
        if why is not None:
            raise BundleError(f"bundle {self.bundle.root}: {self.variant} model {why}")

    def check_inputs(self, texts: Sequence[str], pairs: Sequence[str] | None) -> None:
        """Refuse inputs that differ from what the manifest declares (InputError)."""
        self.bundle.manifest.check_inputs(len(texts), None if pairs is None else len(pairs))

    def tokenize(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, long_text: LongTextSpec | None = None
    ) -> list[Tokens]:
        """Tokenize without padding (the batcher pads per batch, after sorting by length); `long_text` overrides the
        bundle's rule for texts past the window (serving/long_text.py)."""
        self.check_inputs(texts, pairs)
        return self.task.tokenize(texts, pairs, long_text)

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        """Pad tokenized texts to the longest among them."""
        return self.task.collate(items)

    def preprocess(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, long_text: LongTextSpec | None = None
    ) -> Encoded:
        """Tokenize and pad to the longest in the batch."""
        return self.collate(self.tokenize(texts, pairs, long_text))

    def run(self, encoded: Encoded, wide: bool = True) -> np.ndarray:
        """Logits for a batch; `wide=False` runs it on the narrow session (another batch runs beside it)."""
        if encoded.size == 0:
            return self.task.empty_logits()
        session = self._session if wide else self._narrow
        (logits,) = session.run(["logits"], encoded.inputs)
        return np.asarray(logits, dtype=np.float32)

    def postprocess(
        self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None, aggregation: str | None = None
    ) -> list[Any]:
        """The task's answers: a `Prediction` per text (classification) or its `Entities` (entity recognition)."""
        return self.task.postprocess(logits, encoded, top_k, aggregation)

    def __call__(self, texts: Sequence[str], top_k: int | None = None, pairs: Sequence[str] | None = None) -> list[Any]:
        encoded = self.preprocess(texts, pairs)
        return self.postprocess(self.run(encoded), encoded, top_k)

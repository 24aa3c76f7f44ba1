"""onnxruntime sessions as baton runs them: one place, so the export's parity gates run a model the way it is served."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CPU_DISABLED_OPTIMIZERS", "new_session"]

# onnxruntime's CPU SkipLayerNormalization kernel ran 2-5x slower here than Add + Add + LayerNormalization on
# the same tensors ([8, 24, 384] fp32, one thread: ~485-530 vs ~100-156 us; docs/decisions.md), and a
# BERT layer has two. CPU bundles are exported without that fusion (export/onnx.py), and its runtime twin is switched
# off so a CPU session does not fuse them back (it does on int8 graphs once the bias Adds are folded into
# DynamicQuantizeMatMul). GPU sessions and GPU exports keep the fusion (onnxruntime's default; not measured here).
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def new_session(
    model: str | Path | bytes, options: Any = None, providers: Sequence[str] = ("CPUExecutionProvider",)
) -> Any:
    """An InferenceSession; on the CPU provider alone, without the graph fusions listed above.

    A model given as bytes (a bundle's, verified against its manifest) loads with no external data: onnxruntime
    would otherwise read initializers from files beside it that no checksum covers (issue 29). Its folder for
    external data is a random path that does not exist (nothing is created), so any reference to such a file fails
    to load."""
    import onnxruntime as ort

    kwargs: dict[str, Any] = {}
    if list(providers) == ["CPUExecutionProvider"]:
        kwargs["disabled_optimizers"] = list(CPU_DISABLED_OPTIMIZERS)
    if not isinstance(model, bytes):
        return ort.InferenceSession(str(model), sess_options=options, providers=list(providers), **kwargs)
    options = options if options is not None else ort.SessionOptions()
    nowhere = Path(tempfile.gettempdir()) / f"baton-no-external-data-{uuid.uuid4().hex}"
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(nowhere))
    return ort.InferenceSession(model, sess_options=options, providers=list(providers), **kwargs)

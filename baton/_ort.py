"""onnxruntime sessions as baton runs them: one place, so the export's parity gates run a model the way it is served."""

from __future__ import annotations

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


def new_session(model: str | Path, options: Any = None, providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An InferenceSession; on the CPU provider alone, without the graph fusions listed above."""
    import onnxruntime as ort

    kwargs: dict[str, Any] = {}
    if list(providers) == ["CPUExecutionProvider"]:
        kwargs["disabled_optimizers"] = list(CPU_DISABLED_OPTIMIZERS)
    return ort.InferenceSession(str(model), sess_options=options, providers=list(providers), **kwargs)

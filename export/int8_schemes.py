"""The int8 schemes, one per `Int8Scales`: how a recipe's int8 file is made from the fp32 graph.

- fixed (the default): activation scales calibrated at export on training texts (fixed_int8.py). A text's answer
  is the same alone, in any batch and with any padding, so the gates require exactly that of it.
- dynamic: onnxruntime's dynamic quantization through Optimum (onnx.py), scales per batch at run time; opt-in.

`scheme(cfg, fused, plain, inputs)` returns the chosen one, ready to quantize recipe after recipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton.errors import ExportError
from baton.export import fixed_int8
from baton.export import onnx as onnx_steps
from baton.export.config import ExportConfig, Int8Scales
from baton.export.parity import ParityInputs

__all__ = ["Int8Scheme", "scheme"]


@dataclass(frozen=True)
class Int8Scheme:
    scales: Int8Scales
    model_file: Path  # the fp32 graph quantized (recipes name its MatMuls)
    graph: str  # "fused" or "plain"
    quantize: Callable[[list[str], str], Path]  # (nodes kept fp32, tag) -> int8 file
    batch_invariant: bool  # the gates then require a text's answer not to change with its batch
    record: dict[str, Any]  # what the manifest says of the scheme


def _fixed(cfg: ExportConfig, fused: Path, plain: Path, inputs: ParityInputs) -> Int8Scheme:
    import onnx

    if not inputs.calibration:
        raise ValueError("fixed int8 scales need calibration texts")
    names = fixed_int8.quantized_inputs(onnx.load(str(fused), load_external_data=False))
    ranges = fixed_int8.calibrate(fused, [e.inputs for e in inputs.calibration], names)

    def quantize(exclude: list[str], tag: str) -> Path:
        return fixed_int8.quantize_fixed(fused, fused.parent / tag / "model.onnx", ranges, exclude)

    texts = sum(e.size for e in inputs.calibration)
    record = {"calibration": {"source": inputs.calibration_source, "texts": texts}}
    return Int8Scheme(Int8Scales.FIXED, fused, "fused" if fused != plain else "plain", quantize, True, record)


def _dynamic(cfg: ExportConfig, fused: Path, plain: Path, inputs: ParityInputs) -> Int8Scheme:
    model_file, graph = onnx_steps.quantizable_graph(fused, plain)
    preset = cfg.resolved_preset

    def quantize(exclude: list[str], tag: str) -> Path:
        return onnx_steps.quantize_int8(model_file, preset, exclude, tag=tag)

    return Int8Scheme(Int8Scales.DYNAMIC, model_file, graph, quantize, False, {"preset": preset.value})


_SCHEMES: dict[Int8Scales, Callable[[ExportConfig, Path, Path, ParityInputs], Int8Scheme]] = {
    Int8Scales.FIXED: _fixed,
    Int8Scales.DYNAMIC: _dynamic,
}


def scheme(cfg: ExportConfig, fused: Path, plain: Path, inputs: ParityInputs) -> Int8Scheme:
    try:
        return _SCHEMES[cfg.int8_scales](cfg, fused, plain, inputs)
    except ValueError as exc:
        raise ExportError(f"cannot quantize with {cfg.int8_scales.value} int8 scales: {exc}") from exc

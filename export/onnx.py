"""The Optimum steps: export to ONNX, optimise the graph, quantize dynamically to int8."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from pathlib import Path

from baton._optional import require
from baton.errors import ExportError
from baton.export.config import Optimize, QuantPreset

__all__ = [
    "INT8_RECIPES",
    "export_fp32",
    "int8_exclusions",
    "optimize_graph",
    "quantizable_graph",
    "quantize_int8",
    "to_fp16",
]

# Dynamic int8 recipes, tried in order until one passes the parity gate; each keeps more in fp32 than the one
# before. Dynamic quantization scales activations per tensor, and the FFN MatMuls (GELU outputs above all) carry
# outliers (docs/decisions.md, "int8 recipes are tried in order until one passes its gate").
INT8_RECIPES = ("full", "keep-ffn-down-fp32", "keep-ffn-fp32")

logger = logging.getLogger(__name__)


def export_fp32(model_dir: Path, workdir: Path, task: str, opset: int | None) -> Path:
    """Export with dynamic batch and sequence axes; returns the folder holding model.onnx."""
    exporters = require("optimum.exporters.onnx")
    out = workdir / "onnx"
    try:
        exporters.main_export(
            str(model_dir),
            output=str(out),
            task=task,
            opset=opset,
            do_validation=False,
            local_files_only=True,
            library_name="transformers",
        )
    except (KeyError, ValueError, NotImplementedError) as exc:
        raise ExportError(f"cannot export {model_dir} to ONNX for task '{task}': {exc}") from exc
    if not (out / "model.onnx").is_file():
        raise ExportError(f"Optimum wrote no model.onnx for {model_dir}")
    return out


def optimize_graph(onnx_dir: Path, level: Optimize, for_gpu: bool = False) -> Path:
    """Graph fusions (O1/O2) with Optimum's ORTOptimizer; returns the optimised file.

    For the CPU the residual Add + LayerNormalization pairs stay unfused: onnxruntime's CPU SkipLayerNormalization
    kernel is the slower of the two (measured in docs/benchmarks.md).
    """
    if level is Optimize.NONE:
        return onnx_dir / "model.onnx"
    ort_mod = require("optimum.onnxruntime")
    cfg_mod = require("optimum.onnxruntime.configuration")
    cpu_only = {} if for_gpu else {"disable_skip_layer_norm_fusion": True, "disable_bias_skip_layer_norm_fusion": True}
    config = getattr(cfg_mod.AutoOptimizationConfig, level.value)(for_gpu=for_gpu, **cpu_only)
    out = onnx_dir / "optimized"
    optimizer = ort_mod.ORTOptimizer.from_pretrained(onnx_dir, file_names=["model.onnx"])
    optimizer.optimize(config, save_dir=out)
    return out / "model_optimized.onnx"


def to_fp16(onnx_dir: Path) -> Path:
    """O4: fusions for GPU plus fp16 weights, for the CUDA provider."""
    ort_mod = require("optimum.onnxruntime")
    cfg_mod = require("optimum.onnxruntime.configuration")
    out = onnx_dir / "fp16"
    optimizer = ort_mod.ORTOptimizer.from_pretrained(onnx_dir, file_names=["model.onnx"])
    optimizer.optimize(cfg_mod.AutoOptimizationConfig.O4(for_gpu=True), save_dir=out)
    return out / "model_optimized.onnx"


def quantizable_graph(optimized: Path, plain: Path) -> tuple[Path, str]:
    """The graph to quantize: the fused one with its shapes inferred, else the plain export. Returns (file, kind).

    ORT's quantizer types tensors with ONNX shape inference, which knows nothing of the contrib ops the O2 fusions
    emit (Attention, BiasGelu, SkipLayerNormalization on GPU). onnxruntime's symbolic shape inference does; with it
    the fused graph quantizes into QAttention + MatMulInteger: 1.30-1.34x faster at batch 1 and 1.10-1.14x at batch 8
    than the plain export quantized the same way, and on the SST-2 model its full int8 passed the parity gate where
    the plain one did not (docs/benchmarks.md).
    """
    if optimized == plain:
        return plain, "plain"
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    out = optimized.parent / "typed" / "model.onnx"
    try:
        typed = SymbolicShapeInference.infer_shapes(onnx.load(str(optimized)), auto_merge=True)
        out.parent.mkdir(exist_ok=True)
        onnx.save(typed, str(out))
    except Exception as exc:  # an op the inference does not know, a graph past protobuf's 2 GB: quantize the plain one
        logger.warning("cannot infer shapes of the fused graph (%s); quantizing the plain export", exc)
        return plain, "plain"
    return out, "fused"


def int8_exclusions(model_file: Path, recipe: str) -> list[str]:
    """Names of the MatMul nodes a recipe keeps in fp32 (BERT-style torch names, kept by the O2 fusions)."""
    import onnx

    if recipe not in INT8_RECIPES:
        raise ValueError(f"unknown int8 recipe {recipe!r} (known: {', '.join(INT8_RECIPES)})")
    if recipe == "full":
        return []
    names = [n.name for n in onnx.load(str(model_file), load_external_data=False).graph.node if n.op_type == "MatMul"]
    down, up = _ffn_matmuls(names)
    return down if recipe == "keep-ffn-down-fp32" else down + up


def _ffn_matmuls(names: list[str]) -> tuple[list[str], list[str]]:
    """(down-projection, up-projection) FFN MatMul names: BERT/RoBERTa/ELECTRA/DeBERTa style, then DistilBERT's."""
    down = [n for n in names if ("/output/dense" in n and "attention" not in n) or "/ffn/lin2/" in n]
    up = [n for n in names if "/intermediate/dense" in n or "/ffn/lin1/" in n]
    return down, up


def quantize_int8(model_file: Path, preset: QuantPreset, exclude: list[str] | None = None, tag: str = "int8") -> Path:
    """Dynamic (weights int8, activations quantized at run time) quantization with the CPU's preset."""
    ort_mod = require("optimum.onnxruntime")
    cfg_mod = require("optimum.onnxruntime.configuration")
    config = getattr(cfg_mod.AutoQuantizationConfig, preset.value)(is_static=False, nodes_to_exclude=exclude or None)
    staging = model_file.parent / f"quant-src-{tag}"
    staging.mkdir(exist_ok=True)
    shutil.copy2(model_file, staging / "model.onnx")
    for cfg_file in model_file.parent.glob("*.json"):
        shutil.copy2(cfg_file, staging / cfg_file.name)
    quantizer = ort_mod.ORTQuantizer.from_pretrained(staging, file_name="model.onnx")
    out = model_file.parent / tag
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # onnxruntime's quantizer logs one INFO line per tensor on root
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantizer.quantize(config, save_dir=out)
    finally:
        root.setLevel(level)
    return out / "model_quantized.onnx"

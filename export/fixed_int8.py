"""int8 with fixed activation scales: a text's answer does not depend on its batch-mates or their padding.

Dynamic int8 (onnxruntime's `DynamicQuantizeLinear`) takes one activation scale per tensor, that is per batch, so
the same text scored alone, in a server's batch and in a batch job got different answers (issue 32). Here every
quantized input has a scale and zero point fixed at export, from the range its values took on calibration texts
(the run's training split; real tokens only, padding ignored). Every row is then quantized on its own, by the same
rule, whatever else is in the batch: invariance holds by construction and the parity gates check it.

The graph is rewritten into onnxruntime's fused integer kernels, the ones dynamic int8 runs, so the speed is
dynamic int8's less its per-batch range scan (docs/decisions.md, "int8 with fixed activation scales"):
- `MatMul(x, W)`        → `QuantizeLinear(x)` → `MatMulIntegerToFloat(q, W_int8, ...)`, with the bias `Add`
  that follows folded in (as onnxruntime's own fusion does for dynamic int8);
- `Attention(x, W, b)`  → `QAttention(q, W_int8, b, ...)` (the O2 fusion of a BERT layer's self-attention);
- a large embedding table `Gather(E, ids)` → `Gather(E_uint8, ids)` → `DequantizeLinear` (per tensor, as dynamic
  int8 stores it: 4x smaller, and a lookup is the same for any batch).
Weights are symmetric int8 per output column. Activations are asymmetric uint8 per tensor, which onnxruntime's
u8 x s8 kernels take. An input shared by several nodes is quantized once. Nodes named in `exclude` (the recipes'
FFN MatMuls) and MatMuls whose weight is not a 2-D float initializer stay fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Range", "calibrate", "quantize_fixed", "quantized_inputs"]

logger = logging.getLogger(__name__)

_QUANTIZED = ("MatMul", "Attention")
_QATTENTION_ATTRS = ("num_heads", "unidirectional", "do_rotary", "mask_filter_value", "past_present_share_buffer")
_MIN_EMBEDDING = 1 << 16  # a Gather table of more elements than this is stored int8 (the vocabulary; not positions)


@dataclass
class Range:
    """The smallest and largest value one tensor took on the calibration texts' real tokens."""

    low: float = float("inf")
    high: float = float("-inf")

    def add(self, values: np.ndarray) -> None:
        if values.size:
            self.low = min(self.low, float(values.min()))
            self.high = max(self.high, float(values.max()))

    def params(self) -> tuple[np.float32, np.uint8]:
        """uint8 scale and zero point that cover the range and 0 exactly."""
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            raise ValueError("no calibration values were seen")
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        scale = max(high - low, 1e-8) / 255.0
        return np.float32(scale), np.uint8(np.clip(round(-low / scale), 0, 255))


def _weight(node: Any, inits: Mapping[str, Any], exclude: set[str]) -> np.ndarray | None:
    """The node's 2-D float weight when it is one this module quantizes, else None."""
    from onnx import numpy_helper

    if node.op_type not in _QUANTIZED or node.name in exclude or len(node.input) < 2 or node.input[1] not in inits:
        return None
    if node.op_type == "Attention" and (
        any(a.name not in _QATTENTION_ATTRS for a in node.attribute) or any(node.input[4:])
    ):
        return None  # past state, unequal q/k/v sizes, a scale...: what QAttention cannot take stays fp32
    w = numpy_helper.to_array(inits[node.input[1]])
    return w if w.ndim == 2 and w.dtype == np.float32 else None


def quantized_inputs(model: Any, exclude: Iterable[str] = ()) -> list[str]:
    """The activations `quantize_fixed` quantizes (what `calibrate` must see), in graph order, each once."""
    inits = {i.name: i for i in model.graph.initializer}
    skip = set(exclude)
    names = [n.input[0] for n in model.graph.node if _weight(n, inits, skip) is not None]
    return list(dict.fromkeys(names))


def calibrate(model_file: Path, batches: Iterable[Mapping[str, np.ndarray]], names: list[str]) -> dict[str, Range]:
    """Each named tensor's range over the batches' real tokens (`attention_mask` 1), from one fp32 session whose
    outputs are those tensors."""
    import onnx
    from onnx import TensorProto, helper

    from baton._ort import new_session

    model = onnx.load(str(model_file))
    outputs = {o.name for o in model.graph.output}
    for name in names:
        if name not in outputs:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = new_session(model.SerializeToString())
    wanted = {i.name for i in session.get_inputs()}
    ranges = {name: Range() for name in names}
    for batch in batches:
        real = np.asarray(batch["attention_mask"]).astype(bool)
        values = session.run(names, {k: v for k, v in batch.items() if k in wanted})
        for name, value in zip(names, values, strict=True):
            value = np.asarray(value)
            per_token = value.ndim >= 3 and value.shape[:2] == real.shape  # [batch, tokens, ...]: real tokens only
            ranges[name].add(value[real] if per_token else value)  # after pooling: one row per text, all real
    return ranges


@dataclass
class _Rewrite:
    """The nodes and initializers replacing the quantized ones."""

    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    quantized: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # activation -> (q, scale, zero point)

    def const(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def activation(self, name: str, ranges: Mapping[str, Range]) -> tuple[str, str, str]:
        from onnx import helper

        if name not in self.quantized:
            key = f"fixed_int8/{len(self.quantized)}"
            scale, zero = ranges[name].params()
            s, z = self.const(f"{key}/scale", scale), self.const(f"{key}/zero_point", zero)
            self.nodes.append(helper.make_node("QuantizeLinear", [name, s, z], [f"{key}/q"], name=f"{key}/quantize"))
            self.quantized[name] = (f"{key}/q", s, z)
        return self.quantized[name]


def _weight_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8 weights and their scales."""
    scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def _quantized_node(node: Any, w: np.ndarray, act: tuple[str, str, str], rw: _Rewrite, bias: Any) -> Any:
    """The integer-kernel node replacing `node`; `bias`, when given, is the Add after a MatMul folded into it."""
    from onnx import helper

    q, s, z = act
    wq, ws = _weight_int8(w)
    wname, sname = rw.const(f"{node.input[1]}/int8", wq), rw.const(f"{node.input[1]}/int8_scale", ws)
    if node.op_type == "MatMul":
        inputs, outputs = [q, wname, s, sname, z], list(node.output)
        if bias is not None:
            add, name = bias
            inputs, outputs = [*inputs, "", name], list(add.output)
        return helper.make_node("MatMulIntegerToFloat", inputs, outputs, name=node.name, domain="com.microsoft")
    ins = [*node.input, "", ""]
    attention = helper.make_node(
        "QAttention", [q, wname, ins[2], s, sname, ins[3], z], list(node.output), name=node.name, domain="com.microsoft"
    )
    attention.attribute.extend(a for a in node.attribute if a.name in _QATTENTION_ATTRS)
    return attention


def _bias_add(graph: Any, node: Any, inits: Mapping[str, Any], width: int) -> tuple[Any, str] | None:
    """(the Add, its bias) when a MatMul's only reader adds a constant vector of its width to it, else None."""
    from onnx import numpy_helper

    if node.op_type != "MatMul" or any(o.name == node.output[0] for o in graph.output):
        return None
    readers = [n for n in graph.node if node.output[0] in n.input]
    if len(readers) != 1 or readers[0].op_type != "Add":
        return None
    add = readers[0]
    other = [i for i in add.input if i != node.output[0]]
    if len(other) != 1 or other[0] not in inits:
        return None
    b = numpy_helper.to_array(inits[other[0]])
    return (add, other[0]) if b.shape == (width,) and b.dtype == np.float32 else None


def _embedding(node: Any, table: np.ndarray, rw: _Rewrite) -> list[Any]:
    """`Gather(E, ids)` on a uint8 copy of E, dequantized per tensor after the lookup."""
    from onnx import helper

    r = Range()
    r.add(table)
    scale, zero = r.params()
    q = np.clip(np.rint(table / scale) + int(zero), 0, 255).astype(np.uint8)
    base = node.input[0]
    qname = rw.const(f"{base}/uint8", q)
    s, z = rw.const(f"{base}/uint8_scale", scale), rw.const(f"{base}/uint8_zero_point", zero)
    looked = f"{node.output[0]}/uint8"
    return [
        helper.make_node("Gather", [qname, node.input[1]], [looked], name=node.name, **_attrs(node)),
        helper.make_node("DequantizeLinear", [looked, s, z], list(node.output), name=f"{node.name}/dequantize"),
    ]


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def quantize_fixed(src: Path, dst: Path, ranges: Mapping[str, Range], exclude: Iterable[str] = ()) -> Path:
    """Write the fixed-scale int8 form of the fp32 graph `src` to `dst` (ranges from `calibrate`); returns `dst`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    skip = set(exclude)
    rw = _Rewrite()
    replaced: set[str] = set()
    folded: set[int] = set()  # the bias Adds now inside MatMulIntegerToFloat
    nodes: list[Any] = []
    for node in graph.node:
        if id(node) in folded:
            continue
        w = _weight(node, inits, skip)
        if w is not None:
            act = rw.activation(node.input[0], ranges)
            nodes.extend(rw.nodes)
            rw.nodes.clear()
            bias = _bias_add(graph, node, inits, w.shape[1])
            if bias is not None:
                folded.add(id(bias[0]))
            nodes.append(_quantized_node(node, w, act, rw, bias))
            replaced.add(node.input[1])
            continue
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        if table is not None and np.prod(table.dims) > _MIN_EMBEDDING and table.data_type == onnx.TensorProto.FLOAT:
            nodes.extend(_embedding(node, numpy_helper.to_array(table), rw))
            replaced.add(node.input[0])
            continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    still_read = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name not in replaced or i.name in still_read]
    del graph.initializer[:]
    graph.initializer.extend(kept + rw.inits)
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    logger.info("fixed-scale int8: %d activations quantized, %d nodes kept fp32", len(rw.quantized), len(skip))
    return dst

"""A few-shot run's pooling and head (training/fewshot.py), appended to Optimum's feature-extraction graph.

Optimum exports the body with its `last_hidden_state`; this module adds, in standard ONNX ops, what
`PooledHead` computes in numpy and `torch_logits` in torch:

    mean   = ReduceSum(hidden * mask, axis 1) / max(ReduceSum(mask, axis 1), 1e-9)
    x      = mean / max(sqrt(ReduceSum(mean * mean, axis 1)), 1e-12)      (when the model normalises)
    logits = x @ weight.T + bias

and makes `logits` the graph's only output, so the bundle is a classifier like any other: the same optimisation,
int8 recipes, parity gates and runtime. Nodes that no longer lead to an output (a pooler) are removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import ExportError

__all__ = ["HIDDEN_OUTPUT", "attach_head", "torch_logits"]

HIDDEN_OUTPUT = "last_hidden_state"
_MASK_INPUT = "attention_mask"
_PREFIX = "/baton_head/"


def _prune(graph: Any) -> None:
    """Drop the nodes (and their initializers) that no graph output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def attach_head(onnx_file: Path, head: Any) -> None:
    """Rewrite `onnx_file` in place: pooling and head on its `last_hidden_state`, `logits` the only output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_file))
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ExportError(f"a few-shot head needs ONNX opset >= 13 (ReduceSum with axes as input); got {opset}")
    outputs = [o.name for o in graph.output]
    inputs = [i.name for i in graph.input]
    if HIDDEN_OUTPUT not in outputs or _MASK_INPUT not in inputs:
        raise ExportError(f"the body's graph has no {HIDDEN_OUTPUT} output or {_MASK_INPUT} input: {outputs}")

    def name(x: str) -> str:
        return _PREFIX + x

    consts = {
        "axis1": np.array([1], dtype=np.int64),
        "axis_last": np.array([-1], dtype=np.int64),
        "eps_count": np.array(1e-9, dtype=np.float32),
        "eps_norm": np.array(1e-12, dtype=np.float32),
        "weight_t": np.ascontiguousarray(head.weight.T.astype(np.float32)),
        "bias": head.bias.astype(np.float32),
    }
    graph.initializer.extend(numpy_helper.from_array(v, name(k)) for k, v in consts.items())
    nodes = [
        helper.make_node("Cast", [_MASK_INPUT], [name("mask_f")], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", [name("mask_f"), name("axis_last")], [name("mask_3d")]),
        helper.make_node("Mul", [HIDDEN_OUTPUT, name("mask_3d")], [name("masked")]),
        helper.make_node("ReduceSum", [name("masked"), name("axis1")], [name("summed")], keepdims=0),
        helper.make_node("ReduceSum", [name("mask_3d"), name("axis1")], [name("count")], keepdims=0),
        helper.make_node("Max", [name("count"), name("eps_count")], [name("count_c")]),
        helper.make_node("Div", [name("summed"), name("count_c")], [name("mean")]),
    ]
    pooled = name("mean")
    if head.normalize:
        nodes += [
            helper.make_node("Mul", [pooled, pooled], [name("square")]),
            helper.make_node("ReduceSum", [name("square"), name("axis1")], [name("sum_sq")], keepdims=1),
            helper.make_node("Sqrt", [name("sum_sq")], [name("norm")]),
            helper.make_node("Max", [name("norm"), name("eps_norm")], [name("norm_c")]),
            helper.make_node("Div", [pooled, name("norm_c")], [name("unit")]),
        ]
        pooled = name("unit")
    nodes += [
        helper.make_node("MatMul", [pooled, name("weight_t")], [name("scores")]),
        helper.make_node("Add", [name("scores"), name("bias")], ["logits"]),
    ]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", head.bias.shape[0]]))
    _prune(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_file))


def torch_logits(model_dir: Path, inputs: Any, head: Any) -> list[np.ndarray]:
    """Per-batch logits of the few-shot run in PyTorch (the fp32 gate's reference): body, pooling, head."""
    import torch
    from transformers import AutoModel

    from baton.training.fewshot import mean_pool

    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    weight, bias = torch.from_numpy(head.weight), torch.from_numpy(head.bias)
    out = []
    with torch.inference_mode():
        for batch in inputs.batches:
            feed = {k: torch.from_numpy(v) for k, v in batch.items()}
            pooled = mean_pool(model(**feed).last_hidden_state, feed[_MASK_INPUT], head.normalize)
            out.append((pooled @ weight.T + bias).float().numpy())
    return out

"""onnxruntime's CPU SkipLayerNormalization against Add + LayerNormalization, and where a bundle's time goes by op.

Usage: python scripts/layer_norm_kernels.py [BUNDLE]
1. One-node models on [batch, tokens, 384] fp32 tensors, one intra-op thread, both timed in turn (median of 5 rounds):
   the fused SkipLayerNormalization (input + skip + bias, then LayerNorm) against Add, Add, LayerNormalization.
2. With BUNDLE: onnxruntime's own profile of its int8 model at a batch of 8 x 24 tokens, one thread, as baton runs
   it (baton._ort.new_session): each op type's share of kernel time and its time per call.
The figures behind baton._ort.CPU_DISABLED_OPTIMIZERS and the note in docs/benchmarks.md. If a later onnxruntime
runs the fused kernel as fast as the pair, the workaround can go.
"""

from __future__ import annotations

import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from baton._ort import new_session

HIDDEN = 384


def _model(fused: bool) -> bytes:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)

    def vector(name: str) -> Any:
        return helper.make_tensor(name, TensorProto.FLOAT, [HIDDEN], rng.random(HIDDEN).astype(np.float32))

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "S", HIDDEN]) for n in ("x", "skip", "y")]
    if fused:
        nodes = [
            helper.make_node(
                "SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"], ["y"], domain="com.microsoft"
            )
        ]
    else:
        nodes = [
            helper.make_node("Add", ["x", "skip"], ["sum"]),
            helper.make_node("Add", ["sum", "bias"], ["biased"]),
            helper.make_node("LayerNormalization", ["biased", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12),
        ]
    graph = helper.make_graph(nodes, "ln", io[:2], io[2:], [vector("gamma"), vector("beta"), vector("bias")])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def _kernels() -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, fused in (("SkipLayerNormalization", True), ("Add + Add + LayerNormalization", False)):
            path = Path(tmp) / f"{fused}.onnx"
            path.write_bytes(_model(fused))
            sessions[name] = new_session(path, options)
        for batch, tokens in ((1, 24), (8, 24), (32, 40)):
            rng = np.random.default_rng(1)
            feeds = {k: rng.random((batch, tokens, HIDDEN), dtype=np.float32) for k in ("x", "skip")}
            outs = [s.run(None, feeds)[0] for s in sessions.values()]
            times: dict[str, list[float]] = {name: [] for name in sessions}
            for _ in range(5):
                for name, session in sessions.items():
                    start = time.perf_counter()
                    for _ in range(100):
                        session.run(None, feeds)
                    times[name].append((time.perf_counter() - start) / 100 * 1e6)
            med = {name: statistics.median(t) for name, t in times.items()}
            fused_us, pair_us = med.values()
            print(
                f"[{batch}, {tokens}, {HIDDEN}]: "
                + ", ".join(f"{name} {us:.0f} us" for name, us in med.items())
                + f"; fused / pair {fused_us / pair_us:.2f}; max |diff| {np.abs(outs[0] - outs[1]).max():.1e}"
            )


def _profile(bundle: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = new_session(bundle / "model.int8.onnx", options)
        ids = np.random.default_rng(0).integers(1000, 2000, (8, 24))
        names = {i.name for i in session.get_inputs()}
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feeds = {k: v for k, v in feeds.items() if k in names}
        for _ in range(100):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    total: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            total[event["args"]["op_name"]] += event["dur"]
            calls[event["args"]["op_name"]] += 1
    runs = sorted(e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    all_us = sum(total.values())
    print(f"\n{bundle / 'model.int8.onnx'}, batch 8 x 24 tokens, 1 thread: median run {runs[len(runs) // 2]} us")
    for op, us in sorted(total.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {op:26s} {us / all_us * 100:5.1f} %  {us / calls[op]:7.0f} us per call")


def main() -> None:
    _kernels()
    if len(sys.argv) > 1:
        _profile(Path(sys.argv[1]))


if __name__ == "__main__":
    main()

"""onnxruntime's CPU SkipLayerNormalization against Add + LayerNormalization, and where a bundle's time goes by op.

Usage: python scripts/layer_norm_kernels.py [BUNDLE]
1. One-node models on [batch, tokens, 384] fp32 tensors, one intra-op thread, both timed in turn (median of 5 rounds):
   the fused SkipLayerNormalization (input + skip + bias, then LayerNorm) against Add, Add, LayerNormalization.
2. With BUNDLE: its int8 model at a batch of 8 x 24 tokens, one thread, opened as baton opens it
   (baton._ort.new_session) and with onnxruntime's defaults, which fuse SkipLayerNormalization back at load (the
   graph baton exported before): each op type's share of kernel time and its time per call, then both timed in
   turn without profiling (median of 5 rounds).
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


def _interleaved(sessions: dict[str, Any], feeds: dict[str, np.ndarray], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each session, 5 rounds, the sessions timed in turn within each round."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(5):
        for name, session in sessions.items():
            start = time.perf_counter()
            for _ in range(runs):
                session.run(None, feeds)
            times[name].append((time.perf_counter() - start) / runs)
    return times


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
            med = {name: statistics.median(t) * 1e6 for name, t in _interleaved(sessions, feeds, 100).items()}
            fused_us, pair_us = med.values()
            print(
                f"[{batch}, {tokens}, {HIDDEN}]: "
                + ", ".join(f"{name} {us:.0f} us" for name, us in med.items())
                + f"; fused / pair {fused_us / pair_us:.2f}; max |diff| {np.abs(outs[0] - outs[1]).max():.1e}"
            )


def _fused_back(model: Path, options: Any) -> Any:
    """A session with onnxruntime's defaults: on an int8 bundle it fuses SkipLayerNormalization back at load."""
    import onnxruntime as ort

    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _profile(bundle: Path) -> None:
    """The bundle's int8 model as baton runs it, and with SkipLayerNormalization fused back (as exported before)."""
    import onnxruntime as ort

    model = bundle / "model.int8.onnx"
    ids = np.random.default_rng(0).integers(1000, 2000, (8, 24))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    openers = {"as served (Add + LayerNormalization)": new_session, "SkipLayerNormalization fused back": _fused_back}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for n, (name, opener) in enumerate(openers.items()):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / f"profile{n}")
            sessions[name] = opener(model, options)
        names = {i.name for i in next(iter(sessions.values())).get_inputs()}
        feeds = {k: v for k, v in feeds.items() if k in names}
        for _ in range(50):
            for session in sessions.values():
                session.run(None, feeds)
        profiles = {name: json.loads(Path(s.end_profiling()).read_text()) for name, s in sessions.items()}
        timed = _interleaved(sessions, feeds, 30)  # profiling is off now: plain run times
    print(f"\n{model}, batch 8 x 24 tokens, 1 thread")
    for name, events in profiles.items():
        total: dict[str, float] = collections.defaultdict(float)
        calls: collections.Counter[str] = collections.Counter()
        for event in events:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                total[event["args"]["op_name"]] += event["dur"]
                calls[event["args"]["op_name"]] += 1
        all_us = sum(total.values())
        print(f"{name}: median run {statistics.median(timed[name]) * 1e3:.2f} ms; kernel time by op:")
        for op, us in sorted(total.items(), key=lambda kv: -kv[1])[:6]:
            print(f"  {op:26s} {us / all_us * 100:5.1f} %  {us / calls[op]:7.0f} us per call")
    served, fused = timed.values()
    ratio = statistics.median(f / s for f, s in zip(fused, served, strict=True))
    print(f"fused back / as served, run time: {ratio:.2f}x")


def main() -> None:
    _kernels()
    if len(sys.argv) > 1:
        _profile(Path(sys.argv[1]))


if __name__ == "__main__":
    main()

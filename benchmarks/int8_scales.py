"""int8 schemes side by side on a finished run: does a text's answer depend on its batch, how close to fp32, how fast.

Usage: python benchmarks/int8_scales.py RUN_DIR [--samples 872] [--rounds 5]

Variants, each from the same O2-fused fp32 graph with the `full` recipe: fp32; `dynamic` (onnxruntime's dynamic
int8, per-batch activation scales; what `baton export` shipped before); `fixed` (the default now: scales
calibrated on the run's training texts, fixed_int8.py); `per-row` (a candidate: every MatMul's activations scaled
per token at run time with standard ops, attention kept fp32; not shipped).

Per variant: each parity text alone (unpadded) against the same text in length-sorted batches of 32 and in
random batches of 16 (largest probability change on any row or token, and decisions that flip); agreement with
fp32 and the run's quality metric on the validation split; then the speed of length-sorted batches of 32 and of
texts one by one, 2 intra-op threads, interleaved rounds, each round's ratio to dynamic int8, medians reported.
Figures: docs/decisions.md, "int8 with fixed activation scales".
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _batches import batched, rows_alone
from _harness import run

from baton._ort import new_session
from baton.export import int8_schemes, parity
from baton.export import onnx as steps
from baton.export.config import ExportConfig, Int8Scales
from baton.export.samples import parity_inputs
from baton.training.rundir import read_run


def _probs(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))  # type: ignore[no-any-return]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)  # type: ignore[no-any-return]


def _row_logits(session: Any, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Each row's logits (token tasks: its real tokens only), batch by batch, in row order."""
    out = []
    for batch in batches:
        logits = session.run(["logits"], batch)[0]
        for i in range(logits.shape[0]):
            n = int(batch["attention_mask"][i].sum())
            out.append(logits[i, :n] if logits.ndim == 3 else logits[i])
    return out


def _effect(alone: list[np.ndarray], other: list[np.ndarray], multi_label: bool, threshold: float) -> dict[str, float]:
    """Largest probability change and decisions that flip (multi-label: each label at the threshold)."""
    pairs = [(_probs(a, multi_label), _probs(b, multi_label)) for a, b in zip(alone, other, strict=True)]
    dp = max(float(np.abs(a - b).max()) for a, b in pairs)
    if multi_label:
        flips = sum(int(((a >= threshold) != (b >= threshold)).sum()) for a, b in pairs)
    else:
        flips = sum(int((a.argmax(-1) != b.argmax(-1)).sum()) for a, b in pairs)
    return {"max_abs_prob_diff": dp, "flips": flips}


def _per_row(fused: Path, out: Path) -> Path:
    """The per-row candidate: y = x @ W with x scaled per token (max |x| / 127) and W per column, standard ops."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fused))
    inits = {i.name: i for i in model.graph.initializer}
    consts = {
        "axes": np.array([-1], dtype=np.int64),
        "tiny": np.array(1e-12, dtype=np.float32),
        "q_max": np.array(127.0, dtype=np.float32),
        "shift": np.array(128.0, dtype=np.float32),
        "zero": np.array(128, dtype=np.uint8),
    }
    added = [numpy_helper.from_array(v, f"per_row/{k}") for k, v in consts.items()]
    nodes = []
    for k, node in enumerate(model.graph.node):
        w = numpy_helper.to_array(inits[node.input[1]]) if node.op_type == "MatMul" and node.input[1] in inits else None
        if w is None or w.ndim != 2:
            nodes.append(node)
            continue
        scale_w = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
        added += [
            numpy_helper.from_array(np.clip(np.rint(w / scale_w), -127, 127).astype(np.int8), f"per_row/{k}/w"),
            numpy_helper.from_array(scale_w, f"per_row/{k}/w_scale"),
        ]
        p, x = f"per_row/{k}/", node.input[0]
        nodes += [
            helper.make_node("Abs", [x], [p + "abs"]),
            helper.make_node("ReduceMax", [p + "abs", "per_row/axes"], [p + "peak"], keepdims=1),
            helper.make_node("Max", [p + "peak", "per_row/tiny"], [p + "peak1"]),
            helper.make_node("Div", [p + "peak1", "per_row/q_max"], [p + "scale"]),
            helper.make_node("Div", [x, p + "scale"], [p + "scaled"]),
            helper.make_node("Round", [p + "scaled"], [p + "round"]),
            helper.make_node("Add", [p + "round", "per_row/shift"], [p + "shifted"]),
            helper.make_node("Cast", [p + "shifted"], [p + "q"], to=onnx.TensorProto.UINT8),
            helper.make_node("MatMulInteger", [p + "q", p + "w", "per_row/zero"], [p + "acc"]),
            helper.make_node("Cast", [p + "acc"], [p + "acc_f"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Mul", [p + "acc_f", p + "scale"], [p + "rows"]),
            helper.make_node("Mul", [p + "rows", p + "w_scale"], list(node.output)),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(added)
    onnx.save(model, str(out))
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--samples", type=int, default=872, help="parity samples (validation texts)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds")


def _speed(models: dict[str, Path], rows: list[dict[str, np.ndarray]], rounds: int) -> dict[str, dict[str, float]]:
    import onnxruntime as ort

    def session(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
        return new_session(path, options)

    sessions = {name: session(path) for name, path in models.items()}
    loads = {"sorted32": batched(rows, 32), "alone": rows}
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for load, batches in loads.items():
                sess.run(None, batches[-1])
                start = time.perf_counter()
                for b in batches:
                    sess.run(None, b)
                rates.setdefault((name, load), []).append(len(rows) / (time.perf_counter() - start))
    out: dict[str, dict[str, float]] = {}
    for name in sessions:
        for load in loads:
            ratio = statistics.median(a / b for a, b in zip(rates[name, load], rates["dynamic", load], strict=True))
            out.setdefault(name, {})[f"{load}_texts_per_s"] = statistics.median(rates[name, load])
            out[name][f"{load}_ratio_to_dynamic"] = ratio
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = args.run_dir
    trained = read_run(run_dir)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExportConfig(run_dir=str(run_dir), output=str(Path(tmp) / "unused"), parity_samples=args.samples)
        onnx_dir = steps.export_fp32(run_dir / "model", Path(tmp), trained.task, None)
        fused = steps.optimize_graph(onnx_dir, cfg.optimize)
        names = [i.name for i in new_session(fused).get_inputs()]
        inputs, _, judge = parity_inputs(cfg, trained, Path(tmp), names)
        models = {"fp32": fused}
        for scales in (Int8Scales.DYNAMIC, Int8Scales.FIXED):
            chosen = int8_schemes.scheme(
                dataclasses.replace(cfg, int8_scales=scales), fused, onnx_dir / "model.onnx", inputs
            )
            models[scales.value] = chosen.quantize([], f"int8-{scales.value}")
        models["per-row"] = _per_row(fused, Path(tmp) / "per-row.onnx")
        rows = rows_alone(inputs)
        order = list(range(len(rows)))
        random.Random(0).shuffle(order)
        fp32_logits = parity.onnx_logits(fused, inputs)
        print(f"{trained.root}: {len(rows)} rows; calibration: {inputs.calibration_source}", flush=True)
        print("| variant | sorted 32: max Δp, flips | random 16: max Δp, flips | agreement | quality | MiB |")
        print("|---|---|---|---|---|---|")
        for name, model in models.items():
            session = new_session(model)
            alone = _row_logits(session, rows)
            sorted32 = _row_logits(session, batched(rows, 32))
            shuffled = _row_logits(session, batched([rows[i] for i in order], 16))
            in_random = [np.empty(0)] * len(rows)
            for pos, i in enumerate(order):
                in_random[i] = shuffled[pos]
            logits = parity.onnx_logits(model, inputs)
            quality = parity.summary(judge, {name: logits}).get(name, float("nan"))
            results[name] = {
                "sorted32": _effect(alone, sorted32, trained.multi_label, trained.threshold),
                "random16": _effect(alone, in_random, trained.multi_label, trained.threshold),
                "agreement_with_fp32": judge.agreement(fp32_logits, logits),
                judge.quality_name: quality,
                "mib": model.stat().st_size / 2**20,
            }
            r = results[name]
            print(
                f"| {name} | {r['sorted32']['max_abs_prob_diff']:.2e}, {r['sorted32']['flips']} | "
                f"{r['random16']['max_abs_prob_diff']:.2e}, {r['random16']['flips']} | "
                f"{r['agreement_with_fp32']:.4f} | {judge.quality_name} {quality:.4f} | {r['mib']:.1f} |",
                flush=True,
            )
        speed = _speed(models, rows, args.rounds)
        for name, s in speed.items():
            print(
                f"{name}: sorted batches of 32 {s['sorted32_texts_per_s']:.0f} texts/s "
                f"({s['sorted32_ratio_to_dynamic']:.3f}x dynamic), one by one {s['alone_texts_per_s']:.0f} texts/s "
                f"({s['alone_ratio_to_dynamic']:.3f}x)",
                flush=True,
            )
            results[name]["speed"] = s
    return {"run": str(run_dir), "rows": len(rows), "variants": results}


run(__name__, __doc__, configure, measure)

"""Static int8 (activation scales calibrated once) against the bundle's dynamic int8 and fp32: agreement, the batch
effect, speed. Static scales make a text's answer independent of its batch-mates; this measures what they cost.

    python benchmarks/static_int8.py BUNDLE DATA.jsonl CALIBRATION.jsonl [--format qdq|qoperator] [--samples 872]

Quantizes the bundle's fp32 graph with onnxruntime's `quantize_static` (per-channel int8 weights, MinMax
calibration on up to 256 calibration texts, through the runtime's own preprocessing), then prints, per variant:
agreement with fp32 (sorted batches of 8), label flips and the largest score change between alone
and batched, and texts/s at batch 8 on one thread (median of 3 interleaved rounds, ratio to fp32).
Figures: docs/benchmarks.md, "Batched or alone".
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _harness import run

from baton._ort import new_session
from baton.serving import load_bundle
from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Engine, softmax
from baton.tools.bench import load_texts


def _quantize(engine: Engine, source: Path, out: Path, calibration: list[str], fmt: str) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches = iter([engine.preprocess([text]).inputs for text in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    qdq = fmt == "qdq"
    quantize_static(
        str(source),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
        per_channel=qdq,
        activation_type=QuantType.QInt8 if qdq else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=["MatMul", "Attention", "Gemm"],
        extra_options={"ActivationSymmetric": True} if qdq else {},
    )


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return new_session(path, options)


def _probs(session: Any, engine: Engine, texts: list[str], chunks: list[list[int]]) -> np.ndarray:
    names = {i.name for i in session.get_inputs()}
    out = np.zeros((len(texts), len(engine.labels)))
    for idx in chunks:
        inputs = engine.preprocess([texts[i] for i in idx]).inputs
        out[idx] = session.run(["logits"], {k: v for k, v in inputs.items() if k in names})[0]
    return softmax(out)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("calibration", type=Path)
    parser.add_argument("--format", choices=["qdq", "qoperator"], default="qdq")
    parser.add_argument("--samples", type=int, default=872)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    bundle = load_bundle(args.bundle)
    engine = Engine(bundle, "fp32", "cpu", threads=1)
    texts = load_texts(str(args.data), samples=args.samples)
    static = Path(tempfile.mkdtemp()) / "model.static.onnx"
    _quantize(engine, bundle.models["fp32"].path, static, load_texts(str(args.calibration), samples=256), args.format)
    paths = {"fp32": bundle.models["fp32"].path, "static": static}
    if "int8" in bundle.models:
        paths["dynamic"] = bundle.models["int8"].path
    sessions = {name: _session(path) for name, path in paths.items()}
    sorted8 = length_sorted_chunks(len(texts), lambda i: len(texts[i]), 8)
    alone = [[i] for i in range(len(texts))]
    reference = _probs(sessions["fp32"], engine, texts, sorted8).argmax(-1)
    results: dict[str, dict[str, Any]] = {}
    for name, session in sessions.items():
        batched = _probs(session, engine, texts, sorted8)
        single = _probs(session, engine, texts, alone)
        results[name] = {
            "mib": paths[name].stat().st_size / 2**20,
            "agreement_with_fp32": float(np.mean(batched.argmax(-1) == reference)),
            "flips_alone_vs_batched": int(np.sum(batched.argmax(-1) != single.argmax(-1))),
            "max_change_alone_vs_batched": float(np.abs(batched - single).max()),
        }
        print(
            f"{name}: {paths[name].stat().st_size / 2**20:.1f} MiB, agreement with fp32 "
            f"{np.mean(batched.argmax(-1) == reference):.4f}, "
            f"alone vs batched: {int(np.sum(batched.argmax(-1) != single.argmax(-1)))} flips, "
            f"max change {np.abs(batched - single).max():.2e}"
        )
    encoded = [engine.preprocess([texts[i] for i in idx]).inputs for idx in sorted8]
    spent: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(3):
        for name, session in sessions.items():
            names = {i.name for i in session.get_inputs()}
            started = time.perf_counter()
            for inputs in encoded:
                session.run(["logits"], {k: v for k, v in inputs.items() if k in names})
            spent[name].append(time.perf_counter() - started)
    base = statistics.median(spent["fp32"])
    for name, times in spent.items():
        results[name]["texts_per_s"] = len(texts) / statistics.median(times)
        results[name]["vs_fp32"] = base / statistics.median(times)
        print(
            f"{name}: {len(texts) / statistics.median(times):.0f} texts/s, {base / statistics.median(times):.2f}x fp32"
        )

    return results


run(__name__, __doc__, configure, measure)

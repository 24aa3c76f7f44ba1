"""Score every int8 recipe of `baton export` on a finished run, without stopping at the first that passes.

Usage: python benchmarks/int8_recipes.py RUN_DIR [--samples 512] [--no-speed]
Prints, per graph (the plain export; the O2-fused one baton quantizes; for comparison the O2 graph with
SkipLayerNormalization fused, as exported before) and recipe, the argmax agreement with the fp32
(O2) export, the accuracy and the file size, then the speed of every model side by side (interleaved rounds, 2
intra-op threads, the parity texts one at a time and in length-sorted batches of 8; medians over rounds of the
speed ratio to fp32 taken within each round): the figures behind
`baton.export.onnx.INT8_RECIPES` and the int8 notes in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _batches import batched, rows_alone
from _harness import run

from baton._ort import new_session
from baton.export import onnx as steps
from baton.export import parity
from baton.export.config import ExportConfig
from baton.export.samples import parity_inputs
from baton.training.rundir import read_run


def _speed(models: dict[str, Path], inputs: parity.ParityInputs, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Each round times every model once; ratios to the first model are taken within a round, then the median."""
    import statistics

    import onnxruntime as ort

    def session(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
        return new_session(path, options)  # as served: without the CPU-slow SkipLayerNormalization fusion

    sessions = {name: session(path) for name, path in models.items()}
    rows = rows_alone(inputs)
    loads = {1: rows, 8: batched(rows, 8)}
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for size, batches in loads.items():
                sess.run(None, batches[-1])
                start = time.perf_counter()
                for batch in batches:
                    sess.run(None, batch)
                rates.setdefault((name, size), []).append(len(rows) / (time.perf_counter() - start))
    base = next(iter(sessions))
    out: dict[str, dict[str, float]] = {}
    for name in sessions:
        figures = []
        for size in loads:
            ratio = statistics.median(a / b for a, b in zip(rates[name, size], rates[base, size], strict=True))
            rate = statistics.median(rates[name, size])
            out.setdefault(name, {}).update({f"batch{size}_texts_per_s": rate, f"batch{size}_ratio": ratio})
            figures.append(f"batch {size} {rate:.0f} texts/s ({ratio:.2f}x)")
        print(f"{name}: " + ", ".join(figures), flush=True)
    return out


def _fused_with_skip_layer_norm(onnx_dir: Path) -> Path:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    out = onnx_dir / "optimized-sln"
    ORTOptimizer.from_pretrained(onnx_dir, file_names=["model.onnx"]).optimize(AutoOptimizationConfig.O2(), out)
    return out / "model_optimized.onnx"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--samples", type=int, default=512, help="parity samples")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing rounds")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = args.run_dir
    cfg = ExportConfig(run_dir=str(run_dir), output=str(run_dir / "unused"), parity_samples=args.samples)
    trained = read_run(run_dir)
    recipes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = steps.export_fp32(run_dir / "model", Path(tmp), trained.task, None)
        plain = onnx_dir / "model.onnx"
        fused = steps.optimize_graph(onnx_dir, cfg.optimize)
        names = [i.name for i in new_session(fused).get_inputs()]
        inputs, _, judge = parity_inputs(cfg, trained, Path(tmp), names)
        fp32 = parity.onnx_logits(fused, inputs)
        print(f"fp32: {judge.quality_name} {parity.summary(judge, {'fp32': fp32}).get('fp32', float('nan')):.4f}")
        right32 = judge.correct(fp32)
        typed, kind = steps.quantizable_graph(fused, plain)
        graphs = {"plain": plain, kind: typed}  # one entry when the fused graph could not be typed
        models = {"fp32 (O2)": fused}
        if kind == "fused":  # the graph exported before: SkipLayerNormalization fused, as Optimum's O2 does by default
            sln = _fused_with_skip_layer_norm(onnx_dir)
            models["fp32 (O2, SkipLayerNorm)"] = sln
            graphs["fused, SkipLayerNorm"] = steps.quantizable_graph(sln, plain)[0]
        for graph, source in graphs.items():
            for recipe in steps.INT8_RECIPES if graph in ("plain", "fused") else ("full",):
                exclude = steps.int8_exclusions(source, recipe)
                model = steps.quantize_int8(source, cfg.resolved_preset, exclude, tag=f"int8-{graph}-{recipe}")
                logits = parity.onnx_logits(model, inputs)
                accuracy = parity.summary(judge, {"int8": logits}).get("int8", float("nan"))
                sure = ", ".join(
                    "confident(≥{:.1f}) {:.4f} of {:.0%}".format(m, *parity.confident_agreement(judge, fp32, logits, m))
                    for m in (0.1, 0.2, 0.4)
                )
                right = judge.correct(logits)
                recipes[f"{graph} {recipe}"] = {
                    "fp32_matmuls": len(exclude),
                    "agreement": judge.agreement(fp32, logits),
                    judge.quality_name: accuracy,
                    "mib": model.stat().st_size / 2**20,
                }
                ci = ""
                if right is not None and right32 is not None:
                    drop, low, high = parity.paired_drop(right32, right)
                    ci = f", drop {drop * 100:+.2f} points (95% CI {low * 100:+.2f}..{high * 100:+.2f})"
                print(
                    f"{graph} graph, {recipe}: {len(exclude)} MatMuls in fp32, "
                    f"agreement {judge.agreement(fp32, logits):.4f}; {sure}; {judge.quality_name} {accuracy:.4f}"
                    f"{ci}, {model.stat().st_size / 2**20:.1f} MiB",
                    flush=True,
                )
                models[f"{graph} {recipe}"] = model
        speed = {} if args.no_speed else _speed(models, inputs)
    return {"recipes": recipes, "speed": speed}


run(__name__, __doc__, configure, measure)

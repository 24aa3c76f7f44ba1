"""Regenerate docs/benchmarks.md: train (if needed) and export the default model on SST-2, then measure.

Usage: python benchmarks/bench_docs.py [--run RUN_DIR] [--duration S] [--doc-only]
Needs ../shared/data/sst2_sentence. Reuses RUN_DIR (default runs/sst2) and RUN_DIR/bundle when they exist.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import run

from baton.tools import bench

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "sst2_sentence"
DOCS = REPO / "docs"


def baton(*args: str) -> None:
    print("$ baton", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "baton", "-q", *args], check=True, cwd=REPO)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default="runs/sst2")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--doc-only", action="store_true", help="rewrite the page from the last JSON results")
    parser.add_argument("--serve-only", action="store_true", help="rerun only `bench serve`, keep inprocess.json")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Measure (unless --doc-only), rewrite docs/benchmarks.md, and return the headline figures it shows."""
    run = Path(args.run)
    val = str(DATA / "validation.jsonl")
    if args.doc_only:
        return write_doc(run, DOCS / "bench")
    if not (run / "metrics.json").is_file():
        baton("train", "--train-file", str(DATA / "train.jsonl"), "--validation-file", val, "--output", str(run))
    if not (run / "bundle" / "bundle.json").is_file():
        baton("export", str(run), "--output", str(run / "bundle"))
    out = DOCS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    if not args.serve_only:
        baton(
            "bench",
            "inprocess",
            str(run),
            "--input",
            val,
            "--batch-sizes",
            "1,8,32",
            "--duration",
            str(args.duration * 3),
            "--samples",
            "872",
            "--output",
            str(out / "inprocess.json"),
        )
    baton(
        "bench",
        "serve",
        str(run / "bundle"),
        "--input",
        val,
        "--concurrency",
        "1,8,32,64",
        "--duration",
        str(args.duration),
        "--samples",
        "872",
        "--output",
        str(out / "serve.json"),
    )
    return write_doc(run, out)


def _table(rows: list[list[str]]) -> list[str]:
    head, *body = rows
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]


def headline(inproc: dict[str, Any], serve: dict[str, Any]) -> list[str]:
    """The headline figures, from the two JSON results alone: the one table prose may quote."""
    rates = {(r["backend"], r["batch_size"]): r["texts_per_s"] for r in inproc["results"] if r.get("bucket") == "all"}
    if not rates:  # older results: the mean of the buckets
        grouped: dict[tuple[str, int], list[float]] = {}
        for r in inproc["results"]:
            grouped.setdefault((r["backend"], r["batch_size"]), []).append(r["texts_per_s"])
        rates = {k: len(v) / sum(1 / x for x in v) for k, v in grouped.items()}
    batches = sorted({bs for _, bs in rates})
    top = next(k for k in serve if k.startswith("ratio_at_"))
    rows = [["figure", "value", "command"]]
    for backend in ("onnx-int8", "onnx-fp32", "torch"):
        if any((backend, bs) in rates for bs in batches):
            values = " / ".join(f"{rates.get((backend, bs), float('nan')):.0f}" for bs in batches)
            rows.append(
                [
                    f"in-process {backend}, batch {' / '.join(map(str, batches))}, texts/s",
                    values,
                    "`baton bench inprocess`",
                ]
            )
    rows.append(["strict in-process ceiling, texts/s", f"{serve['ceiling']['texts_per_s']:.0f}", "`baton bench serve`"])
    rows.append(
        [
            f"gRPC server / ceiling at {top.removeprefix('ratio_at_')} clients",
            f"{serve[top]:.2f}",
            "`baton bench serve`",
        ]
    )
    rows.append(
        [
            "gRPC p50 at 1 client over in-process batch 1, ms",
            f"{serve['p50_1_client_minus_batch1_p50_ms']:+.2f}",
            "`baton bench serve`",
        ]
    )
    return ["## Headline figures", "", *_table(rows), ""]


def write_doc(run: Path, out: Path) -> dict[str, Any]:
    inproc = json.loads((out / "inprocess.json").read_text())
    serve = json.loads((out / "serve.json").read_text())
    manifest = json.loads((run / "bundle" / "bundle.json").read_text())
    env = serve["environment"]
    parity = manifest["parity"]
    lines = [
        "# Benchmarks",
        "",
        "`make bench-docs` regenerates the Export, In-process and gRPC sections (needs "
        "`../shared/data/sst2_sentence`); the measurements of earlier rounds, each with the command that reproduces "
        "it, are in [benchmarks_notes.md](benchmarks_notes.md).",
        f"Machine: {env['cpu']}, {env['cores']} cores; onnxruntime {env['versions'].get('onnxruntime')}, "
        f"torch {env['versions'].get('torch')}. Measured {env['created_at']}. These machines drift ±25 % over "
        "minutes: compare figures of one run (ratios), not across runs.",
        "",
        "Model: the default (MiniLM-L6, fine-tuned with default flags on the SST-2 sentence train split); texts: "
        "the 872 SST-2 validation sentences.",
        "",
        *headline(inproc, serve),
        "## Export",
        "",
    ]
    acc = parity.get("accuracy", {})
    rows = [["variant", "file", "MiB", f"accuracy on the {parity['samples']} parity samples"]]
    rows.append(
        [
            "torch",
            "model/model.safetensors",
            f"{(run / 'model/model.safetensors').stat().st_size / 2**20:.1f}",
            f"{acc.get('torch', float('nan')):.4f}",
        ]
    )
    for name, entry in manifest["files"].items():
        if "variant" in entry:
            rows.append(
                [
                    entry["variant"],
                    name,
                    f"{entry['bytes'] / 2**20:.1f}",
                    f"{acc.get(entry['variant'], float('nan')):.4f}",
                ]
            )
    lines += _table(rows)
    q = parity.get("int8_vs_fp32", {})
    lines += [
        "",
        f"Parity on {parity['samples']} samples: fp32 vs torch max |Δlogit| "
        f"{parity['fp32_vs_torch']['max_abs_logit_diff']:.2e}; int8 vs fp32 agreement "
        f"{q.get('argmax_agreement', float('nan')):.4f} ({q.get('preset', '-')}, "
        f"{q.get('graph', 'plain')} graph, recipe {q.get('recipe', '-')}; attempts: "
        + ", ".join(f"{a['recipe']} {a['argmax_agreement']:.4f}" for a in q.get("attempts", []))
        + ").",
        "",
    ]
    lines += [
        "## In-process (Predictor code path; tokenization included)",
        "",
        f"`baton bench inprocess {run} --input …/validation.jsonl --batch-sizes 1,8,32`",
        "",
    ]
    rows = [["backend", "batch", "texts/s", "p50 ms/batch", "p99 ms/batch", "tokenize texts/s"]]
    for r in inproc["results"]:
        if r["bucket"] == "all":
            rows.append(
                [
                    r["backend"],
                    str(r["batch_size"]),
                    f"{r['texts_per_s']:.0f}",
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r.get('tokenize_texts_per_s', float('nan')):.0f}",
                ]
            )
    lines += _table(rows)
    lines += ["", "By length bucket (tertiles of the texts by characters), texts/s:", ""]
    rows = [["backend", "batch", "short", "medium", "long"]]
    keyed = {(r["backend"], r["batch_size"], r["bucket"]): r["texts_per_s"] for r in inproc["results"]}
    for backend, bs in sorted({(r["backend"], r["batch_size"]) for r in inproc["results"]}):
        rows.append(
            [backend, str(bs)]
            + [f"{keyed.get((backend, bs, b), float('nan')):.0f}" for b in ("short", "medium", "long")]
        )
    lines += _table(rows)
    lines += [
        "",
        "![in-process](bench/inprocess_inprocess.png)",
        "",
        "## gRPC server vs the in-process ceiling",
        "",
        f"`baton bench serve {run}/bundle --input …/validation.jsonl --concurrency 1,8,32,64` — single-text "
        "requests, closed loop; the load generator runs on the same 2 cores (its CPU time is shown).",
        "",
    ]
    rows = [
        [
            "clients",
            "texts/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "mean batch",
            "mean queue ms",
            "client CPU s",
            "server CPU s (measured window)",
        ]
    ]
    for r in serve["grpc"]["results"]:
        rows.append(
            [
                str(r["concurrency"]),
                f"{r['texts_per_s']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(sum(r["errors"].values())),
                f"{r.get('mean_batch_size') or 0:.1f}",
                f"{r.get('mean_queue_ms') or 0:.2f}",
                f"{r['client_cpu_s']:.1f}",
                f"{r.get('server_cpu_s', float('nan')):.1f}",
            ]
        )
    lines += _table(rows)
    c = serve["ceiling"]
    echo = serve["grpc"].get("load_generator_ceiling", {})
    top = next(k for k in serve if k.startswith("ratio_at_"))
    lines += [
        "",
        f"- In-process ceiling (same texts, sorted by length, best setting: batches of {bench.ceiling_batch_sizes(c)}, "
        f"{c['variant']}; the mean of {c['before']['texts_per_s']:.0f} measured before and "
        f"{c['after']['texts_per_s']:.0f} after the load): **{c['texts_per_s']:.0f} texts/s**; "
        f"batch-1 p50 {c['batch1_p50_ms']:.2f} ms.",
        f"- Server / ceiling at {top.removeprefix('ratio_at_')} clients: **{serve[top]:.2f}** "
        f"(best level {serve['ratio_best']:.2f}).",
        f"- p50 at 1 client minus in-process batch-1 p50: {serve['p50_1_client_minus_batch1_p50_ms']:.2f} ms.",
        f"- Load generator ceiling (echo server, {echo.get('concurrency')} clients): "
        f"{echo.get('texts_per_s', float('nan')):.0f} texts/s. The gRPC round trip alone (echo server, 1 client): "
        f"p50 {echo.get('one_client_p50_ms', float('nan')):.2f} ms.",
        *(f"- {line}." for line in bench.cpu_per_text(serve)),
        "",
        "![latency](bench/serve_latency.png) ![throughput](bench/serve_throughput.png)",
        "",
    ]
    lines += ["The notes and tuning measurements of every round: [benchmarks_notes.md](benchmarks_notes.md)."]
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {DOCS / 'benchmarks.md'}")
    return {"headline": headline(inproc, serve), "inprocess": inproc["results"], "serve": serve["grpc"]["results"]}


run(__name__, __doc__, configure, measure)

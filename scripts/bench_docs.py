"""Regenerate docs/benchmarks.md: train (if needed) and export the default model on SST-2, then measure.

Usage: python scripts/bench_docs.py [--run RUN_DIR] [--duration S]
Needs ../shared/data/sst2_sentence. Reuses RUN_DIR (default runs/sst2) and RUN_DIR/bundle when they exist.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from baton.tools import bench

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "sst2_sentence"
DOCS = REPO / "docs"


def baton(*args: str) -> None:
    print("$ baton", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "baton", "-q", *args], check=True, cwd=REPO)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="runs/sst2")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--doc-only", action="store_true", help="rewrite the page from the last JSON results")
    parser.add_argument("--serve-only", action="store_true", help="rerun only `bench serve`, keep inprocess.json")
    args = parser.parse_args()
    run = Path(args.run)
    val = str(DATA / "validation.jsonl")
    if args.doc_only:
        write_doc(run, DOCS / "bench")
        return
    if not (run / "metrics.json").is_file():
        baton("train", "--train-file", str(DATA / "train.jsonl"), "--validation-file", val, "--output-dir", str(run))
    if not (run / "bundle" / "bundle.json").is_file():
        baton("export", str(run), "--output", str(run / "bundle"))
    out = DOCS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    if not args.serve_only:
        baton(
            "bench",
            "inprocess",
            str(run),
            "--data",
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
        "--data",
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
    write_doc(run, out)


def _table(rows: list[list[str]]) -> list[str]:
    head, *body = rows
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]


def write_doc(run: Path, out: Path) -> None:
    inproc = json.loads((out / "inprocess.json").read_text())
    serve = json.loads((out / "serve.json").read_text())
    manifest = json.loads((run / "bundle" / "bundle.json").read_text())
    env = serve["environment"]
    parity = manifest["parity"]
    lines = [
        "# Benchmarks",
        "",
        "`make bench-docs` regenerates the Export, In-process and gRPC sections (needs "
        "`../shared/data/sst2_sentence`); the notes after them are docs/benchmarks_notes.md, copied as they are, "
        "each figure with the command that reproduces it.",
        f"Machine: {env['cpu']}, {env['cores']} cores; onnxruntime {env['versions'].get('onnxruntime')}, "
        f"torch {env['versions'].get('torch')}. Measured {env['created_at']}. These machines drift ±25 % over "
        "minutes: compare figures of one run (ratios), not across runs.",
        "",
        "Model: the default (MiniLM-L6, fine-tuned with default flags on the SST-2 sentence train split); texts: "
        "the 872 SST-2 validation sentences.",
        "",
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
        f"`baton bench inprocess {run} --data …/validation.jsonl --batch-sizes 1,8,32`",
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
        f"`baton bench serve {run}/bundle --data …/validation.jsonl --concurrency 1,8,32,64` — single-text "
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
    extra = DOCS / "benchmarks_notes.md"
    if extra.is_file():
        lines += [extra.read_text()]
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()

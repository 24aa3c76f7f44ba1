"""Compare `baton serve` flag sets side by side, interleaved, against the in-process ceiling.

Usage: python benchmarks/tune_serve.py BUNDLE DATA.jsonl [--rounds N] [--concurrency 1,8,64]
    -- ["--workers 1" "--max-batch-size 8" ...]

Each round measures the in-process ceiling (sorted batches, best size), then starts one server per flag set in turn
and measures it at each level of single-text clients (1 and 64 unless told), so each ratio compares figures taken
seconds apart: these machines drift by +-25 % over minutes. Prints the median over rounds of each figure and of its
ratio to the same round's ceiling.
Produced the tuning tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
from pathlib import Path
from typing import Any

from _harness import run

import baton.tools.bench as bench


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data")
    parser.add_argument("--rounds", type=int, default=4)
    # 3-second levels understated the 64-client figure (395 vs 548 texts/s with 10 s, same bundle and flags).
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--concurrency", default="1,64", help="client counts, comma-separated; the first is the latency level"
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    args.flag_sets = args.passthrough or [""]
    levels = [int(c) for c in args.concurrency.split(",")]
    texts = bench.load_texts(args.data, samples=872)
    rows: dict[str, list[dict[str, float]]] = {flags: [] for flags in args.flag_sets}
    options = bench.BenchOptions(duration_s=args.seconds, warmup_s=1.0)
    for round_no in range(args.rounds):
        ceiling = bench.inprocess_ceiling(args.bundle, texts, None, 1.5)
        for flags in args.flag_sets:
            # One server at a time: a second live server measurably slowed the one under test.
            with bench.started_server(args.bundle, shlex.split(flags)) as server:
                load = bench.Load(
                    target=server.target,
                    texts=texts,
                    concurrency=tuple(levels),
                    metrics_url=server.metrics_url,
                    server_pid=server.pid,
                )
                results = bench.bench_grpc(load, options, echo=False)["results"]
            row = {
                "ceiling": ceiling["texts_per_s"],
                "one_p50": results[0]["p50_ms"],
                "one_over_b1": results[0]["p50_ms"] - ceiling["batch1_p50_ms"],
            }
            for level, result in zip(levels, results, strict=True):
                row[f"{level}"] = result["texts_per_s"]
                row[f"{level}/c"] = result["texts_per_s"] / ceiling["texts_per_s"]
                row[f"{level}b"] = result.get("mean_batch_size") or 0.0
            rows[flags].append(row)
        print(f"round {round_no + 1}/{args.rounds}: ceiling {ceiling['texts_per_s']:.0f} texts/s", flush=True)
    print(
        f"\nmedians over {args.rounds} interleaved rounds ({args.seconds:.0f} s per level; ratio = throughput / the "
        "same round's strict in-process ceiling; b = mean batch)\n"
    )
    cells = " | ".join(f"{level} clients texts/s (ratio, b)" for level in levels)
    print(f"| server flags | ceiling texts/s | {levels[0]} client(s) p50 ms | minus batch-1 p50 ms | {cells} |")
    print("|---|---|---|---|" + "---|" * len(levels))
    medians: dict[str, dict[str, float]] = {}
    for flags, measured in rows.items():
        med = {k: statistics.median(r[k] for r in measured) for k in measured[0]}
        medians[flags or "(defaults)"] = med
        per_level = " | ".join(
            f"{med[str(level)]:.0f} (**{med[f'{level}/c']:.2f}**, {med[f'{level}b']:.1f})" for level in levels
        )
        print(
            f"| `{flags or '(defaults)'}` | {med['ceiling']:.0f} | {med['one_p50']:.2f} | {med['one_over_b1']:+.2f} "
            f"| {per_level} |"
        )

    return {"rounds": rows, "medians": medians}


run(__name__, __doc__, configure, measure)

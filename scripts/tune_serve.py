"""Compare `baton serve` flag sets side by side, interleaved, against the in-process ceiling.

Usage: python scripts/tune_serve.py BUNDLE DATA.jsonl [--rounds N] -- ["--workers 1" "--max-batch-size 8" ...]

Each round measures the in-process ceiling (sorted batches, best size), then starts one server per flag set in turn
and measures it at 1 and at 64 single-text clients, so each ratio compares figures taken seconds apart: these
machines drift by +-25 % over minutes. Prints the median over rounds of each figure and of its ratio to the same
round's ceiling.
Produced the tuning tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

import baton.tools.bench as bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data")
    parser.add_argument("--rounds", type=int, default=4)
    # 3-second levels understated the 64-client figure (395 vs 548 texts/s with 10 s, same bundle and flags).
    parser.add_argument("--seconds", type=float, default=10.0)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.flag_sets = argv[split + 1 :] or [""]
    texts = bench.load_texts(args.data, samples=872)
    rows: dict[str, list[dict[str, float]]] = {flags: [] for flags in args.flag_sets}
    options = bench.BenchOptions(duration_s=args.seconds, warmup_s=1.0)
    for round_no in range(args.rounds):
        ceiling = bench.inprocess_ceiling(args.bundle, texts, None, 1.5, batch_sizes=(1, 8, 16, 32))
        for flags in args.flag_sets:
            # One server at a time: a second live server measurably slowed the one under test.
            with bench.started_server(args.bundle, shlex.split(flags)) as server:
                load = bench.Load(target=server.target, texts=texts, concurrency=(1, 64))
                one, many = bench.bench_grpc(load, options, echo=False)["results"]
            rows[flags].append(
                {
                    "ceiling": ceiling["texts_per_s"],
                    "one": one["texts_per_s"],
                    "one_p50": one["p50_ms"],
                    "one_over_b1": one["p50_ms"] - ceiling["batch1_p50_ms"],
                    "many": many["texts_per_s"],
                    "ratio": many["texts_per_s"] / ceiling["texts_per_s"],
                }
            )
        print(f"round {round_no + 1}/{args.rounds}: ceiling {ceiling['texts_per_s']:.0f} texts/s", flush=True)
    print(
        f"\nmedians over {args.rounds} interleaved rounds ({args.seconds:.0f} s per level; ratio = 64-client "
        "throughput / the same round's in-process ceiling)\n"
    )
    print(
        "| server flags | ceiling texts/s | 1 client texts/s | 1 client p50 ms | minus batch-1 p50 ms "
        "| 64 clients texts/s | 64 clients / ceiling |"
    )
    print("|---|---|---|---|---|---|---|")
    for flags, measured in rows.items():
        med = {k: statistics.median(r[k] for r in measured) for k in measured[0]}
        print(
            f"| `{flags or '(defaults)'}` | {med['ceiling']:.0f} | {med['one']:.0f} | {med['one_p50']:.2f} | "
            f"{med['one_over_b1']:+.2f} | {med['many']:.0f} | **{med['ratio']:.2f}** |"
        )


if __name__ == "__main__":
    main()

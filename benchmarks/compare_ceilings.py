"""In-process throughput of one or more bundles: the strict ceiling of `baton bench` (encoder + onnxruntime, texts
sorted by length, best batch size x session setting, median of 3), bundles alternating within each round.

Usage: python benchmarks/compare_ceilings.py DATA.jsonl BUNDLE [BUNDLE ...] [--rounds N] [--sweep]
Prints each bundle's texts/s per round and its ratio to the first bundle within the round; with --sweep, also
every setting the ceiling tried (batch size, one session with spinning on or off, two sessions side by side).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from _harness import run

from baton.tools.bench import inprocess_ceiling, load_texts


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data")
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="print every setting the ceiling tried")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    texts = load_texts(args.data, samples=512)
    ratios: dict[Path, list[float]] = {b: [] for b in args.bundles}
    first = args.bundles[0]
    rounds = []
    for r in range(args.rounds):
        ceilings = {b: inprocess_ceiling(b, texts, None, 3.0) for b in args.bundles}
        rounds.append({str(b): c for b, c in ceilings.items()})
        rates = {b: c["texts_per_s"] for b, c in ceilings.items()}
        for b in args.bundles:
            ratios[b].append(rates[b] / rates[first])
        print(f"round {r + 1}: " + ", ".join(f"{b}: {rates[b]:.0f} texts/s" for b in args.bundles), flush=True)
        for b, c in ceilings.items() if args.sweep else ():
            print(f"  {b}: " + ", ".join(f"{k} {v['texts_per_s']:.0f}" for k, v in c["sweep"].items()), flush=True)
    medians = {str(b): statistics.median(ratios[b]) for b in args.bundles}
    for b, ratio in medians.items():
        print(f"{b}: median ratio to {first} {ratio:.2f}x")
    return {"rounds": rounds, "median_ratio_to_first": medians}


run(__name__, __doc__, configure, measure)

"""In-process throughput of two or more bundles side by side: the strict ceiling of `baton bench` (encoder +
session, texts sorted by length, best batch size x spinning, median of 3), bundles alternating within each round.

Usage: python scripts/compare_ceilings.py DATA.jsonl BUNDLE [BUNDLE ...] [--rounds N]
Prints each bundle's texts/s per round and its ratio to the first bundle within the round.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from baton.tools.bench import inprocess_ceiling, load_texts


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 2
    if "--rounds" in sys.argv:
        args.remove(str(rounds))
    data, bundles = args[0], [Path(b) for b in args[1:]]
    texts = load_texts(data, samples=512)
    ratios: dict[Path, list[float]] = {b: [] for b in bundles}
    for r in range(rounds):
        rates = {b: inprocess_ceiling(b, texts, None, 3.0)["texts_per_s"] for b in bundles}
        for b in bundles:
            ratios[b].append(rates[b] / rates[bundles[0]])
        print(f"round {r + 1}: " + ", ".join(f"{b}: {rates[b]:.0f} texts/s" for b in bundles), flush=True)
    for b in bundles:
        print(f"{b}: median ratio to {bundles[0]} {statistics.median(ratios[b]):.2f}x")


if __name__ == "__main__":
    main()

"""How full `select_window`'s batches are (the texts' own tokens / padded tokens) for a queue depth and a batch size.

Usage: python scripts/batch_fill.py BUNDLE DATA.jsonl [--waiting 8,16,24,48] [--sizes 4,8] [--min-fill 0]

Draws `waiting` texts at random from DATA (tokenized by the bundle's engine, the lengths the batcher sorts by),
sorts them by length, takes the window around a random oldest item as the batcher does, and averages the fill
over 2,000 draws. Produced the padding figures behind `baton serve --min-batch-fill` in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from baton.serving.batching import select_window
from baton.serving.engine import build_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--waiting", default="8,16,24,48")
    parser.add_argument("--sizes", default="4,8")
    parser.add_argument("--min-fill", type=float, default=0.0)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    lengths = [len(tokens) for tokens in build_engine(args.bundle, "cpu").tokenize(texts)]
    print(f"{len(lengths)} texts: mean {statistics.mean(lengths):.1f} tokens, max {max(lengths)}")
    rng = random.Random(0)
    for waiting in (int(w) for w in args.waiting.split(",")):
        for size in (int(s) for s in args.sizes.split(",")):
            fills, counts = [], []
            for _ in range(2000):
                queue = sorted(rng.sample(lengths, waiting))
                lo, hi = select_window(queue, rng.randrange(waiting), 1 << 30, size, args.min_fill)
                window = queue[lo:hi]
                fills.append(sum(window) / (max(window) * len(window)))
                counts.append(len(window))
            print(
                f"{waiting} waiting, batches of up to {size}: fill {statistics.mean(fills):.2f}, "
                f"mean batch {statistics.mean(counts):.1f}"
            )


if __name__ == "__main__":
    main()

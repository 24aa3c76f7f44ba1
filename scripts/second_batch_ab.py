"""A/B of `baton serve --min-second-batch` (0: a second batch starts beside a running one at once; N: only once N
texts wait). Alternates the settings in rounds, each a full `bench serve` (server / strict ceiling, same run).

Usage: python scripts/second_batch_ab.py BUNDLE DATA.jsonl [ROUNDS] [SETTINGS, e.g. 0,4]
"""

from __future__ import annotations

import sys
from pathlib import Path

from baton.tools.bench import BenchOptions, bench_serve, load_texts


def main() -> None:
    bundle, data = Path(sys.argv[1]), sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    settings = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "0,4").split(",")]
    texts = load_texts(data, samples=512)
    options = BenchOptions(duration_s=4.0, warmup_s=1.0, samples=512)
    for r in range(rounds):
        for value in settings:
            args = ["--min-second-batch", str(value)]
            report = bench_serve(bundle, texts, [1, 8, 64], 1, "baton", options, serve_args=args, echo=False)
            ceiling = report["ceiling"]["texts_per_s"]
            cells = [
                f"{row['concurrency']} clients {row['texts_per_s']:.0f}/s ({row['texts_per_s'] / ceiling:.2f}, "
                f"batch {row.get('mean_batch_size') or 0:.1f}, p50 {row['p50_ms']:.2f} ms)"
                for row in report["grpc"]["results"]
            ]
            head = f"round {r + 1}, --min-second-batch {value}: ceiling {ceiling:.0f}/s; "
            print(head + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()

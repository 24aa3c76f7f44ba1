"""Where one client's milliseconds go: server-reported timings vs the client's round trip, and onnxruntime at idle.

Usage: python scripts/latency_breakdown.py BUNDLE DATA.jsonl [REQUESTS]

1. Starts `baton serve BUNDLE` (defaults), sends REQUESTS single-text requests one after another with the sync
   client and prints medians of the round trip and of the timings the server returns (queue, tokenize, inference =
   collate + run + post-process, total). Round trip minus total is transport plus handler work.
2. In-process, `Engine.tokenize` of one text in a tight loop, and `Engine.run` alone at batch 1, back to back and
   with a pause between runs (as a server sees one client: the next request comes a few ms after the last answer),
   with spinning on and off.
"""

from __future__ import annotations

import statistics
import sys
import time

import baton.tools.bench as bench
from baton.serving.bundle import load_bundle
from baton.serving.client import Client
from baton.serving.engine import Engine
from baton.serving.predictor import choose_variant


def _served(bundle_dir: str, texts: list[str], requests: int) -> None:
    with bench.started_server(bundle_dir, []) as server:
        client = Client(server.target)
        rows = []
        for i in range(requests + 100):
            started = time.perf_counter()
            timings = client.classify_response([texts[i % len(texts)]]).timings
            rows.append(
                (
                    (time.perf_counter() - started) * 1e6,
                    timings.total_us,
                    timings.queue_us,
                    timings.tokenize_us,
                    timings.inference_us,
                )
            )
        client.close()
    rows = rows[100:]  # warm-up
    names = ("round trip", "server total", "queue", "tokenize", "inference")
    print(
        "one client, medians in ms: "
        + ", ".join(f"{n} {statistics.median(r[k] for r in rows) / 1e3:.2f}" for k, n in enumerate(names))
    )


def _idle_gaps(bundle_dir: str, texts: list[str]) -> None:
    bundle = load_bundle(bundle_dir)
    variant, _, _ = choose_variant(bundle, "cpu", None)
    for spin in (True, False):
        engine = Engine(bundle, variant, "cpu", 2, spin=spin)
        if spin:
            spent = []
            for text in texts * 2:
                started = time.perf_counter()
                engine.tokenize([text])
                spent.append(time.perf_counter() - started)
            print(f"Engine.tokenize one text, tight loop: p50 {statistics.median(spent) * 1e6:.0f} us")
        for gap in (0.0, 0.0005, 0.002, 0.005):
            spent = []
            for text in texts[:300] * 2:
                encoded = engine.collate(engine.tokenize([text]))
                started = time.perf_counter()
                engine.run(encoded)
                spent.append(time.perf_counter() - started)
                if gap:
                    time.sleep(gap)
            print(
                f"Engine.run batch 1, 2 threads, spin {spin!s:5}, pause {gap * 1e3:.1f} ms: "
                f"p50 {statistics.median(spent) * 1e3:.2f} ms"
            )


def main() -> None:
    bundle_dir, data = sys.argv[1], sys.argv[2]
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    texts = bench.load_texts(data, samples=872)
    _served(bundle_dir, texts, requests)
    _idle_gaps(bundle_dir, texts)


if __name__ == "__main__":
    main()

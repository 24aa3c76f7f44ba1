"""Replay the server's batching pattern in-process (engine only, no gRPC): what padding costs a small pool.

Usage: python scripts/replay_pool.py BUNDLE DATA.jsonl [POOL] [BATCH]
Each step samples POOL waiting texts, sorts them by length and runs BATCH neighbours, as the batcher does under
POOL concurrent single-text clients. Compare with `baton bench inprocess`, which sorts the whole data set.
"""

from __future__ import annotations

import random
import sys
import time

from baton.serving.bundle import load_bundle
from baton.serving.engine import Engine
from baton.tools.bench import load_texts


def main() -> None:
    bundle_dir, data = sys.argv[1], sys.argv[2]
    pool = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    texts = load_texts(data, samples=872)
    bundle = load_bundle(bundle_dir)
    rng = random.Random(0)
    for spin in (True, False):
        for threads in (1, 2):
            engine = Engine(bundle, "int8" if "int8" in bundle.models else "fp32", "cpu", threads, spin=spin)
            for size in (1, batch):
                engine([texts[0]])
                start, done, cpu = time.perf_counter(), 0, time.process_time()
                while time.perf_counter() - start < 2.0:
                    waiting = sorted(rng.sample(texts, pool), key=len)
                    i = rng.randrange(0, pool - size + 1)
                    tokens = engine.tokenize(waiting[i : i + size])
                    encoded = engine.collate(tokens)
                    engine.postprocess(engine.run(encoded), encoded)
                    done += size
                wall = time.perf_counter() - start
                print(
                    f"spin={spin} threads={threads} batch={size}: {done / wall:.0f} texts/s, "
                    f"cpu/wall {(time.process_time() - cpu) / wall:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

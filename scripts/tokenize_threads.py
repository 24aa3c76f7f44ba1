"""The tokenizers' thread pool vs a plain loop, on an idle machine and on one whose cores run inference.

Usage: python scripts/tokenize_threads.py BUNDLE DATA.jsonl

For requests of 1 to 32 texts, the mean time of `encode_batch` (the tokenizers' rayon pool) and of a loop of
`encode` in the calling thread, first with nothing else running, then with one busy thread per core (SHA-256 of
1 MiB blocks, which releases the GIL as onnxruntime's run does). Behind `serving/encoder.py`'s `encode_all`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
import time

from tokenizers import Tokenizer

import baton.tools.bench as bench
from baton.serving.bundle import load_bundle


def _busy(stop: threading.Event) -> None:
    block = bytes(1 << 20)
    while not stop.is_set():
        hashlib.sha256(block).digest()  # one core, GIL released (as in onnxruntime's run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("data")
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
    tokenizer.enable_truncation(bundle.manifest.max_length)  # as the runtime's encoder does
    tokenizer.no_padding()
    texts = bench.load_texts(args.data, samples=872)
    cores = os.cpu_count() or 1
    print("| busy threads | texts per call | encode_batch us | loop of encode us |")
    print("|---|---|---|---|")
    for busy in (0, cores):
        stop = threading.Event()
        threads = [threading.Thread(target=_busy, args=(stop,), daemon=True) for _ in range(busy)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        for n in (1, 2, 4, 8, 16, 32):
            calls = [texts[i : i + n] for i in range(0, len(texts) - n, n)]
            spent = []
            for encode in (tokenizer.encode_batch, lambda call: [tokenizer.encode(t) for t in call]):
                started = time.perf_counter()
                for call in calls:
                    encode(call)
                spent.append((time.perf_counter() - started) / len(calls) * 1e6)
            print(f"| {busy} | {n} | {spent[0]:.0f} | {spent[1]:.0f} |")
        stop.set()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()

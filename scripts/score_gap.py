"""Where embedded `baton score` loses against the in-process ceiling: four ways of scoring the same rows, alternating
within each round, so the machine's drift lands in every variant alike.

  loop, sorted whole   the ceiling's own loop (runtime encoder + onnxruntime session, no Predictor), all rows sorted
                       by length as a whole, in batches of --batch-size;
  loop, chunked        the same loop, each --chunk-rows chunk sorted by itself (how `baton score` reads);
  Predictor            `Predictor.predict` per chunk: the call `baton score` makes, without reading or writing;
  baton score          the command as a process on a parquet file of the same rows (its own summary's rows/s, which
                       leaves out start-up and loading the bundle).

Usage: python scripts/score_gap.py BUNDLE DATA.jsonl [--rows 20000] [--rounds 3] [--batch-size 16]
Prints first what the Predictor adds around the session, per row (encoding, the answers' postprocessing, and the
whole `predict` on one chunk); then rows/s per variant and round, and each variant's median ratio to "loop, sorted
whole" within its round.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from baton.serving.predictor import Predictor

    texts = [json.loads(line)["text"] for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [texts[i % len(texts)] for i in range(args.rows)]
    work = Path(tempfile.mkdtemp(prefix="baton-score-gap-"))
    source = work / "rows.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(len(rows))], "text": rows}), source)
    predictor = Predictor.load(args.bundle, "cpu", None, None, args.batch_size)
    engine = predictor.engine  # one session for the loops and the Predictor alike
    size, chunk = args.batch_size, args.chunk_rows

    def loop(ordered: list[str]) -> None:
        for i in range(0, len(ordered), size):
            batch = ordered[i : i + size]
            engine.run(engine.preprocess(batch, None))

    def whole() -> None:
        loop(sorted(rows, key=len))

    def chunked() -> None:
        for i in range(0, len(rows), chunk):
            loop(sorted(rows[i : i + chunk], key=len))

    def predict() -> None:
        for i in range(0, len(rows), chunk):
            predictor.predict(rows[i : i + chunk])

    def score() -> float:
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "baton", "-q", "score", str(args.bundle), "--input", str(source)]
        cmd += ["--output", str(out), "--id-column", "id", "--no-progress", "--batch-size", str(size)]
        cmd += ["--chunk-rows", str(chunk)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["rows_per_s"])

    def timed(call: Callable[[], None]) -> float:
        started = time.perf_counter()
        call()
        return len(rows) / (time.perf_counter() - started)

    variants: dict[str, Callable[[], float]] = {
        "loop, sorted whole": lambda: timed(whole),
        "loop, chunked": lambda: timed(chunked),
        "Predictor": lambda: timed(predict),
        "baton score": score,
    }
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    print(f"{args.bundle} ({predictor.engine.variant}), {len(rows)} rows, batch {size}, chunks of {chunk}", flush=True)
    _costs(predictor, rows[:chunk], size)
    for r in range(args.rounds):
        rates = {name: run() for name, run in variants.items()}
        first = rates["loop, sorted whole"]
        for name, rate in rates.items():
            ratios[name].append(rate / first)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v:.0f}" for n, v in rates.items()) + " rows/s", flush=True)
    for name, values in ratios.items() if args.rounds else ():
        print(f"{name:<20} median ratio {statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})")
    shutil.rmtree(work, ignore_errors=True)


def _costs(predictor: Any, rows: list[str], size: int) -> None:
    """Microseconds per row of the Predictor's own work around the session, against a whole `predict`."""
    engine = predictor.engine
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    started = time.perf_counter()
    encoded = [engine.preprocess(batch, None) for batch in batches]
    encode_us = (time.perf_counter() - started) / len(rows) * 1e6
    logits = [engine.run(e) for e in encoded]
    started = time.perf_counter()
    for enc, out in zip(encoded, logits, strict=True):
        engine.postprocess(out, enc, None, None)
    post_us = (time.perf_counter() - started) / len(rows) * 1e6
    started = time.perf_counter()
    predictor.predict(rows)
    whole_us = (time.perf_counter() - started) / len(rows) * 1e6
    print(
        f"per row: encoding {encode_us:.1f} us, postprocessing {post_us:.1f} us, a whole predict {whole_us:.0f} us "
        f"({(encode_us + post_us) / whole_us:.1%} of it)",
        flush=True,
    )


if __name__ == "__main__":
    main()

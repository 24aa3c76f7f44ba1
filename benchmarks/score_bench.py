"""`baton score` figures for docs/benchmarks.md: throughput of each engine against the strict in-process ceiling,
peak memory against the input's size, and where the embedded path's time goes.

Usage:
  python benchmarks/score_bench.py speed BUNDLE DATA.jsonl [--rows 50000] [--rounds 2] [--engines embedded,ray1,ray2]
      Per round, side by side: the strict in-process ceiling (`baton bench`'s: encoder + session, texts sorted by
      length as a whole, best batch size and spinning, median of 3), `baton score` embedded, the ceiling again,
      then on Ray with 1 actor and with 2 actors, on a parquet file of ROWS texts cycled from DATA. Prints rows/s;
      the embedded ratio is to the mean of the two ceilings around it, Ray's to the second. Ray's figure is the
      whole job as a user waits for it: starting the local cluster and the actors included. --engines picks which
      of the three run (all by default).
  python benchmarks/score_bench.py memory BUNDLE DATA.jsonl [--rows 100000,1000000]
      Runs embedded `baton score` on a file of each size and samples the process's RSS every 0.5 s; prints the
      peak and the RSS at 25/50/75 % of the run. Memory that does not grow with the file is the claim checked.
  python benchmarks/score_bench.py gap BUNDLE DATA.jsonl [--rows 20000] [--rounds 2] [--batch-size 16]
      Where embedded `baton score` loses against the ceiling. First the Predictor's own work around the session,
      per row (encoding, postprocessing, a whole `predict` on one chunk). Then four ways of scoring the same rows,
      alternating within each round so the machine's drift lands in every one alike: the ceiling's own loop
      (runtime encoder + session, no Predictor) over all rows sorted as a whole; the same loop over --chunk-rows
      chunks each sorted by itself, as `baton score` reads; `Predictor.predict` per chunk; and `baton score` as a
      process (its summary's rows/s, which leaves out start-up and loading the bundle). Prints rows/s per round and
      each one's median ratio to the first within its round.
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

from _harness import run


def _texts(data: Path) -> list[str]:
    return [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]


def _synthetic(texts: list[str], rows: int, folder: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"rows{rows}.parquet"
    if not path.exists():
        table = pa.table({"id": [str(i) for i in range(rows)], "text": [texts[i % len(texts)] for i in range(rows)]})
        pq.write_table(table, path, row_group_size=100_000)
    return path


def _score(bundle: Path, source: Path, output: Path, *extra: str) -> dict[str, Any]:
    shutil.rmtree(output, ignore_errors=True)
    cmd = [sys.executable, "-m", "baton", "-q", "score", str(bundle), "--input", str(source), "--output", str(output)]
    proc = subprocess.run([*cmd, "--id-column", "id", "--no-progress", *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"baton score failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def speed(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from baton.tools.bench import inprocess_ceiling

    every = {
        "embedded": ("embedded", ()),
        "ray1": ("ray, 1 actor", ("--engine", "ray", "--actors", "1")),
        "ray2": ("ray, 2 actors", ("--engine", "ray", "--actors", "2")),
    }
    chosen = args.engines.split(",")
    if "embedded" not in chosen or not set(chosen) <= set(every):
        raise SystemExit(f"--engines: a comma list of {', '.join(every)} that includes embedded (got {args.engines})")
    engines = dict(every[key] for key in every if key in chosen)
    texts = _texts(args.data)
    source = _synthetic(texts, args.rows, work)
    rounds = []
    for r in range(args.rounds):
        # The ceiling is measured right before and right after the embedded run, and the embedded ratio uses their
        # mean, so the machine's drift over minutes does not land in it; Ray is set against the second ceiling.
        ceilings = []
        results: dict[str, dict[str, Any]] = {}
        for name, extra in engines.items():
            if len(ceilings) < 2:
                ceilings.append(inprocess_ceiling(args.bundle, sorted(set(texts)), None, 6.0))
            results[name] = _score(args.bundle, source, work / "out", *extra)
            if name == "embedded":
                ceilings.append(inprocess_ceiling(args.bundle, sorted(set(texts)), None, 6.0))
        before, after = (c["texts_per_s"] for c in ceilings)
        rounds.append({"ceiling_before": before, "ceiling_after": after, "engines": results})
        print(
            f"round {r + 1}: ceiling {before:.0f} texts/s before the embedded run, {after:.0f} after "
            f"({ceilings[0]['variant']}, batches of {ceilings[0]['best_setting']}, spin {ceilings[0]['best_spin']})",
            flush=True,
        )
        for name, summary in results.items():
            rate = summary["rows_per_s"]
            ceiling = (before + after) / 2 if name == "embedded" else after
            print(
                f"  {name:<14} {rate:7.0f} rows/s  {rate / ceiling:.2f} of the ceiling  "
                f"({summary['rows']} rows in {summary['seconds']:.1f} s)",
                flush=True,
            )
    return {"rounds": rounds}


def memory(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import psutil

    texts = _texts(args.data)
    out_rows = []
    for rows in (int(x) for x in args.rows.split(",")):
        source = _synthetic(texts, rows, work)
        out = work / f"mem{rows}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "baton", "-q", "score", str(args.bundle), "--input", str(source)]
        proc = subprocess.Popen(
            [*cmd, "--output", str(out), "--id-column", "id", "--no-progress"], stdout=subprocess.DEVNULL
        )
        watched = psutil.Process(proc.pid)
        samples: list[float] = []
        started = time.perf_counter()
        while proc.poll() is None:
            try:
                samples.append(watched.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"baton score failed on {rows} rows")
        at = {q: samples[int(len(samples) * q)] for q in (0.25, 0.5, 0.75)} if samples else {}
        out_rows.append({"rows": rows, "peak_rss_mib": max(samples, default=0.0), "seconds": seconds})
        print(
            f"{rows:>9} rows ({source.stat().st_size / 2**20:.0f} MiB parquet): peak RSS {max(samples):.0f} MiB; "
            + ", ".join(f"{int(q * 100)}%: {v:.0f} MiB" for q, v in at.items())
            + f"; {seconds:.0f} s, {rows / seconds:.0f} rows/s",
            flush=True,
        )
    return {"runs": out_rows}


def gap(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from baton.serving.predictor import Predictor

    texts = _texts(args.data)
    rows = [texts[i % len(texts)] for i in range(args.rows)]  # the rows of the parquet file `baton score` reads
    source = _synthetic(texts, args.rows, work)
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

    def timed(call: Callable[[], None]) -> float:
        started = time.perf_counter()
        call()
        return len(rows) / (time.perf_counter() - started)

    scored = ("--batch-size", str(size), "--chunk-rows", str(chunk))
    variants: dict[str, Callable[[], float]] = {
        "loop, sorted whole": lambda: timed(whole),
        "loop, chunked": lambda: timed(chunked),
        "Predictor": lambda: timed(predict),
        "baton score": lambda: float(_score(args.bundle, source, work / "out", *scored)["rows_per_s"]),
    }
    print(f"{args.bundle} ({engine.variant}), {len(rows)} rows, batch {size}, chunks of {chunk}", flush=True)
    _costs(predictor, rows[:chunk], size)
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        rates = {name: measure_one() for name, measure_one in variants.items()}
        for name, rate in rates.items():
            ratios[name].append(rate / rates["loop, sorted whole"])
        print(f"round {r + 1}: " + ", ".join(f"{n} {v:.0f}" for n, v in rates.items()) + " rows/s", flush=True)
    for name, values in ratios.items() if args.rounds else ():
        print(f"{name:<20} median ratio {statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})")
    return {"ratios_to_sorted_loop": ratios}


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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=("speed", "memory", "gap"))
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rows", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--engines", default="embedded,ray1,ray2")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-rows", type=int, default=4096)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "memory":
        args.rows = args.rows or "100000,1000000"
    else:
        args.rows = int(args.rows or (50_000 if args.mode == "speed" else 20_000))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="baton-score-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    return {"mode": args.mode, **{"speed": speed, "memory": memory, "gap": gap}[args.mode](args, work)}


run(__name__, __doc__, configure, measure)

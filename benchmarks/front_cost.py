"""The CPU each front costs per call, against an echo floor of the same stack (issue 32, part 3).

    python benchmarks/front_cost.py [BUNDLE] [--input FILE] [--levels 1,8] [--duration 6]
        [--loops asyncio,uvloop] [--fronts baton,kserve,http,http-kserve] [-- SERVE FLAGS...]

For each event loop, side by side: the echo server (`python -m baton.tools.bench.echo`: gRPC and HTTP on that loop,
parsing each request and answering one result per text) and `baton serve BUNDLE --event-loop LOOP --threads 1` (one
intra-op thread: no spin-waiting pool, so CPU time is work). At each level and front, each server in turn, so that
what is compared is measured in the same minute: closed-loop single-text clients for --duration after 2 s of
warm-up; the server's CPU per call is read from /proc over the measured window. **Model work** is the CPU of the
same texts one at a time through the Predictor in this process (one thread; tokenize, run, answer), so

    baton's own cost per call = server CPU per call − echo CPU per call − model work per call

is what baton adds above the front's floor: request checks, the batcher's hand-off, metrics, the answer. The load
generator (grpc.aio, aiohttp) shares the cores; its CPU per call is printed too. Defaults to the committed tiny
bundle, where the model's work is small and the fronts' cost shows.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import run

FRONTS = ("baton", "kserve", "http", "http-kserve")
NAMES = {"baton": "gRPC domain", "kserve": "gRPC KServe", "http": "HTTP /v1", "http-kserve": "HTTP OIP"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", default="tests/data/tiny-bundle")
    parser.add_argument("--input", default="examples/reviews/test.jsonl")
    parser.add_argument("--levels", default="1,8")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--fronts", default=",".join(FRONTS))


@contextlib.contextmanager
def _echo(loop: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The echo server on `loop`: (pid, {front: target})."""
    from baton.tools.bench.loadgen import started_echo

    with started_echo(loop, http=True) as echo:
        yield echo.pid, {f: echo.http_target if f.startswith("http") else echo.target for f in FRONTS}


@contextlib.contextmanager
def _baton(bundle: str, loop: str, flags: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    from baton.tools.bench.loadgen import started_server

    with started_server(Path(bundle), ["--event-loop", loop, "--threads", "1", *flags]) as server:
        http = server.http_url.removeprefix("http://")
        yield server.pid, {f: http if f.startswith("http") else server.target for f in FRONTS}


def _measure_row(pid: int, target: str, front: str, model: str, texts: list[str], level: int, duration: float) -> Any:
    from baton.tools.bench.loadgen import Load, bench_grpc
    from baton.tools.bench.options import BenchOptions

    load = Load(target=target, texts=texts, concurrency=[level], protocol=front, model_name=model, server_pid=pid)
    (row,) = bench_grpc(load, BenchOptions(duration_s=duration, warmup_s=2.0), echo=False)["results"]
    calls = max(row["requests_per_s"] * row["elapsed_s"], 1)
    return {
        "texts_per_s": row["texts_per_s"],
        "p50_ms": row["p50_ms"],
        "errors": sum(row["errors"].values()),
        "server_ms": 1000 * row["server_cpu_s"] / calls,
        "client_ms": 1000 * row["client_cpu_s"] / calls,
    }


def _model_work(bundle: str, texts: list[str], calls: int = 600) -> float:
    """CPU ms per single-text call through the Predictor, one intra-op thread (median of 3 rounds)."""
    from baton.serving.predictor import Predictor

    predictor = Predictor.load(bundle, device="cpu", threads=1, workers=1, batch_size=1)
    for text in texts[:50]:
        predictor.predict([text])
    rounds = []
    for _ in range(3):
        started = time.process_time()
        for i in range(calls):
            predictor.predict([texts[i % len(texts)]])
        rounds.append(1000 * (time.process_time() - started) / calls)
    return statistics.median(rounds)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from baton.serving.bundle import load_bundle
    from baton.tools.bench.options import load_texts

    model = load_bundle(args.bundle).name
    texts = load_texts(args.input, "text", 512, 0)
    levels = [int(x) for x in args.levels.split(",")]
    fronts = [f for f in args.fronts.split(",") if f]
    work = _model_work(args.bundle, texts)
    print(f"model work, in-process, one thread: {work:.3f} ms CPU per single-text call", flush=True)
    rows: list[dict[str, Any]] = []
    loops = args.loops.split(",")
    measured: dict[tuple[str, str, str, int], Any] = {}
    with contextlib.ExitStack() as stack:
        servers = {}
        for loop in loops:  # all side by side, so that each comparison is made in the same minute
            servers[(loop, "echo")] = stack.enter_context(_echo(loop))
            servers[(loop, "baton")] = stack.enter_context(_baton(args.bundle, loop, args.passthrough))
        for level in levels:
            for front in fronts:
                for (loop, server), (pid, targets) in servers.items():
                    row = _measure_row(pid, targets[front], front, model, texts, level, args.duration)
                    measured[(loop, server, front, level)] = row
                    print(f"{loop:7s} {server:5s} {NAMES[front]:12s} {level:3d} clients: {row}", flush=True)
    for loop in loops:
        for level in levels:
            for front in fronts:
                echo, baton = measured[(loop, "echo", front, level)], measured[(loop, "baton", front, level)]
                rows.append(
                    {
                        "loop": loop,
                        "front": front,
                        "clients": level,
                        "echo": echo,
                        "baton": baton,
                        "model_work_ms": work,
                        "own_ms": baton["server_ms"] - echo["server_ms"] - work,
                    }
                )
    _table(rows)
    return {"bundle": args.bundle, "input": args.input, "duration_s": args.duration, "rows": rows}


def _table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| front | loop | clients | echo CPU ms/call | baton CPU ms/call | model work | baton's own | "
        "texts/s echo / baton | load generator ms/call (baton) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e, b = r["echo"], r["baton"]
        print(
            f"| {NAMES[r['front']]} | {r['loop']} | {r['clients']} | {e['server_ms']:.3f} | {b['server_ms']:.3f} | "
            f"{r['model_work_ms']:.3f} | {r['own_ms']:+.3f} | {e['texts_per_s']:.0f} / {b['texts_per_s']:.0f} | "
            f"{b['client_ms']:.3f} |"
        )


run(__name__, __doc__, configure, measure)

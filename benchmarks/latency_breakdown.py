"""Where one client's milliseconds go: server-reported timings vs the client's round trip, and onnxruntime at idle.

Usage: python benchmarks/latency_breakdown.py BUNDLE DATA.jsonl [REQUESTS]
       python benchmarks/latency_breakdown.py BUNDLE DATA.jsonl --clients N [--seconds 6] [-- SERVE FLAGS...]

With --clients, only the served part: N concurrent single-text clients (closed loop, one aio channel) for
--seconds after 1 s of warm-up, against `baton serve BUNDLE SERVE FLAGS`; prints the throughput, the medians as in
1., the time outside the server's clock, the batches and mean batch size from the server's metrics, and (Linux)
the CPU each server thread spent per text: the event loop (the main thread) and the busiest others (the two
inference workers, then onnxruntime's and grpc's own threads).

1. Starts `baton serve BUNDLE` (defaults), sends REQUESTS single-text requests one after another with the sync
   client and prints medians of the round trip and of the timings the server returns (queue, tokenize, inference =
   collate + run + post-process, total). Round trip minus total is transport plus handler work.
2. In-process, `Engine.tokenize` of one text in a tight loop, and `Engine.run` alone at batch 1, back to back and
   with a pause between runs (as a server sees one client: the next request comes a few ms after the last answer),
   with spinning on and off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _harness import run

import baton.tools.bench as bench
from baton.serving.bundle import load_bundle
from baton.serving.client import Client
from baton.serving.engine import Engine
from baton.serving.predictor import choose_variant
from baton.tools.bench.accounting import cpu_by_thread, scrape, server_view


def _served(bundle_dir: str, texts: list[str], requests: int) -> dict[str, float]:
    with bench.started_server(bundle_dir, []) as server:
        client = Client(server.target, retries=0)
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
    medians = {n: statistics.median(r[k] for r in rows) / 1e3 for k, n in enumerate(names)}
    print("one client, medians in ms: " + ", ".join(f"{n} {ms:.2f}" for n, ms in medians.items()))
    return medians


async def _closed_loop(target: str, texts: list[str], clients: int, seconds: float) -> list[tuple[float, ...]]:
    import grpc

    from baton.serving.v1 import classifier_pb2 as pb
    from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

    channel = grpc.aio.insecure_channel(target)
    stub = pb_grpc.TextClassifierStub(channel)
    rows: list[tuple[float, ...]] = []
    stop = time.perf_counter() + seconds

    async def client(k: int) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            t = (await stub.Classify(pb.ClassifyRequest(texts=[texts[k % len(texts)]]), timeout=30)).timings
            rtt = (time.perf_counter() - started) * 1e6
            rows.append((rtt, t.total_us, t.queue_us, t.tokenize_us, t.inference_us, rtt - t.total_us))
            k += clients

    await asyncio.gather(*(client(i) for i in range(clients)))
    await channel.close()
    return rows


def _concurrent(bundle_dir: str, texts: list[str], clients: int, seconds: float, flags: list[str]) -> dict[str, Any]:
    with bench.started_server(bundle_dir, flags) as server:
        asyncio.run(_closed_loop(server.target, texts, clients, 1.0))  # warm-up
        before, threads_before = scrape(server.metrics_url), cpu_by_thread(server.pid)
        rows = asyncio.run(_closed_loop(server.target, texts, clients, seconds))
        after, threads_after = scrape(server.metrics_url), cpu_by_thread(server.pid)
    batches = after.get("baton_batch_size_count", 0.0) - before.get("baton_batch_size_count", 0.0)
    names = ("round trip", "server total", "queue", "tokenize", "inference", "outside the server")
    medians = {n: statistics.median(r[k] for r in rows) / 1e3 for k, n in enumerate(names)}
    mean_batch = server_view(before, after)["mean_batch_size"] or 0
    print(
        f"{clients} clients {flags or '(defaults)'}: {len(rows) / seconds:.0f} texts/s; medians in ms: "
        + ", ".join(f"{n} {ms:.2f}" for n, ms in medians.items())
        + f"; {batches:.0f} batches, mean batch {mean_batch:.2f}"
    )
    out: dict[str, Any] = {"texts_per_s": len(rows) / seconds, "medians_ms": medians, "mean_batch": mean_batch}
    spent = {tid: cpu - threads_before.get(tid, 0.0) for tid, cpu in threads_after.items()}
    main = spent.pop(server.pid, None)
    if main is not None and rows:
        others = sorted(spent.values(), reverse=True)
        per_text = ", ".join(f"{cpu / len(rows) * 1e3:.3f}" for cpu in others[:4])
        print(
            f"  server CPU per text, ms: event loop {main / len(rows) * 1e3:.3f}; busiest other threads {per_text}; "
            f"the rest together {sum(others[4:]) / len(rows) * 1e3:.3f}"
        )
        out["event_loop_cpu_ms_per_text"] = main / len(rows) * 1e3
    return out


def _idle_gaps(bundle_dir: str, texts: list[str]) -> dict[str, float]:
    bundle = load_bundle(bundle_dir)
    variant, _, _ = choose_variant(bundle, "cpu", None)
    out: dict[str, float] = {}
    for spin in (True, False):
        engine = Engine(bundle, variant, "cpu", 2, spin=spin)
        if spin:
            spent = []
            for text in texts * 2:
                started = time.perf_counter()
                engine.tokenize([text])
                spent.append(time.perf_counter() - started)
            out["tokenize_one_p50_us"] = statistics.median(spent) * 1e6
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
            out[f"run_b1_p50_ms spin={spin} pause_ms={gap * 1e3:.1f}"] = statistics.median(spent) * 1e3
            print(
                f"Engine.run batch 1, 2 threads, spin {spin!s:5}, pause {gap * 1e3:.1f} ms: "
                f"p50 {statistics.median(spent) * 1e3:.2f} ms"
            )
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle")
    parser.add_argument("data")
    parser.add_argument("requests", type=int, nargs="?", default=500)
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=6.0)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    texts = bench.load_texts(args.data, samples=872)
    if args.clients:
        return {"concurrent": _concurrent(args.bundle, texts, args.clients, args.seconds, args.passthrough)}
    return {"one_client": _served(args.bundle, texts, args.requests), "idle": _idle_gaps(args.bundle, texts)}


run(__name__, __doc__, configure, measure)

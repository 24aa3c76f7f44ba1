"""Deadline storm: bystanders with 30 s deadlines beside clients that send 1 ms deadlines, against baton or a plain
grpc.aio server (a 2 ms sleep per call), each in its own process on a loopback port.

    python benchmarks/deadline_storm.py BUNDLE|plain [--abusers 16] [--bystanders 16] [--seconds 10]
        [--separate-connections] [--abusers-nice 19] [--grpc-option KEY=INT (plain)] [-- extra `baton serve`
        flags, e.g. --max-pending-calls 1000 or --max-concurrent-streams 32]

Prints the status codes of both groups, the bystanders' p50/p99 and, for baton, what reached its Classify handler
and the server's peak RSS. What it showed (docs/benchmarks.md, "Deadline storm"): the bystanders' CANCELLED came
from grpc core's pending-call queue, not from baton's handler (the doomed calls never reach it): the asyncio server
takes one call per event-loop round trip, doomed calls arrive faster, and grpc's default overload protection
(random refusals between 1,000 and 3,000 pending calls) cancelled calls at random. `baton serve
--max-pending-calls` (20,000 by default) sets that limit; a plain grpc.aio server shows the same.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import run

from baton.tools.bench import started_server

_PLAIN = """
import asyncio, json, sys, grpc
from baton.serving.v1 import classifier_pb2 as pb, classifier_pb2_grpc as pb_grpc
class S(pb_grpc.TextClassifierServicer):
    async def Classify(self, request, context):
        await asyncio.sleep(0.002)
        return pb.ClassifyResponse(results=[pb.Classification(label="x", score=1.0) for _ in request.texts])
async def main():
    server = grpc.aio.server(options=[tuple(o) for o in json.loads(sys.argv[1])])
    pb_grpc.add_TextClassifierServicer_to_server(S(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"plain serving on 127.0.0.1:{port}, x", flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[tuple[str, str | None, int]]:
    """The server under test, in its own process; yields its target, metrics URL (baton only) and pid."""
    if args.target != "plain":
        with started_server(Path(args.target), args.serve_flags) as server:
            yield server.target, server.metrics_url, server.pid
        return
    options = [[key, int(value)] for key, value in (o.split("=", 1) for o in args.grpc_option)]
    proc = subprocess.Popen([sys.executable, "-c", _PLAIN, json.dumps(options)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().split(" on ")[1].split(",")[0].strip(), None, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a bundle directory, or 'plain'")
    parser.add_argument("--abusers", type=int, default=16)
    parser.add_argument("--bystanders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--separate-connections", action="store_true", help="one TCP connection per client thread")
    parser.add_argument(
        "--abusers-nice",
        type=int,
        default=None,
        help="run the abusers in their own process at this niceness (19: they take only CPU nobody else wants, a "
        "stand-in for abusers on another machine)",
    )
    parser.add_argument(
        "--grpc-option",
        action="append",
        default=[],
        help="plain server only: a grpc server option KEY=INT, e.g. grpc.server.max_pending_requests=100000",
    )
    parser.add_argument("--only-abusers-at", default=None, help=argparse.SUPPRESS)  # the child of --abusers-nice


def measure(args: argparse.Namespace) -> dict[str, Any]:
    args.serve_flags = args.passthrough  # after `--`: flags for `baton serve`
    if args.only_abusers_at:
        codes, _ = _clients(args, args.only_abusers_at, args.abusers, 0.001)
        return {"abusers": codes}
    with _server(args) as (target, metrics_url, pid):
        results = _storm(args, target)
        if metrics_url is not None:
            results["reached_handler"] = _handled(metrics_url)
        status = Path(f"/proc/{pid}/status")
        if status.exists():  # Linux: the server's peak resident memory
            peak = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM"))
            results["server_peak_rss_mib"] = int(peak) / 1024
            print(f"  server peak RSS: {int(peak) / 1024:.0f} MiB")
    return results


def _handled(metrics_url: str) -> dict[str, int]:
    """What reached baton's handler: its RPC counts by code (a doomed call refused there counts DEADLINE_EXCEEDED)."""
    import urllib.request

    counts: collections.Counter[str] = collections.Counter()
    for line in urllib.request.urlopen(metrics_url, timeout=10).read().decode().splitlines():
        if line.startswith("baton_requests_total{") and 'method="Classify"' in line:
            counts[line.split('code="')[1].split('"')[0]] += int(float(line.split()[-1]))
    print(f"  reached baton's Classify handler: {dict(counts)}")
    return dict(counts)


def _clients(args: argparse.Namespace, target: str, count: int, timeout: float) -> tuple[dict[str, int], list[float]]:
    """`count` client threads calling Classify in a closed loop for `args.seconds`; their codes and OK latencies."""
    import grpc

    from baton.serving.v1 import classifier_pb2 as pb
    from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

    stop = time.monotonic() + args.seconds
    codes: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    options = [("grpc.use_local_subchannel_pool", 1)] if args.separate_connections else []
    request = pb.ClassifyRequest(texts=["a fairly ordinary review text of some length"])

    def client() -> None:
        channel = grpc.insecure_channel(target, options=options)
        stub = pb_grpc.TextClassifierStub(channel)
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                stub.Classify(request, timeout=timeout)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            with lock:
                codes[code] += 1
                if code == "OK":
                    latencies.append(time.perf_counter() - started)
        channel.close()

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(codes), latencies


def _storm(args: argparse.Namespace, target: str) -> dict[str, Any]:
    results: dict[str, tuple[dict[str, int], list[float]]] = {}
    child = None
    record = Path(tempfile.mkdtemp(prefix="baton-storm-")) / "abusers.json"
    if args.abusers_nice is not None and args.abusers:
        argv = [sys.executable, __file__, args.target, "--only-abusers-at", target, "--abusers", str(args.abusers)]
        argv += ["--json", str(record)]
        argv += ["--seconds", str(args.seconds)] + (["--separate-connections"] if args.separate_connections else [])
        nice = args.abusers_nice
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(nice))
    else:

        def abusers() -> None:
            results["abusers"] = _clients(args, target, args.abusers, 0.001)

        worker = threading.Thread(target=abusers)
        worker.start()
    results["bystanders"] = _clients(args, target, args.bystanders, 30.0)
    if child is not None:
        child.communicate(timeout=args.seconds + 60)
        results["abusers"] = (json.loads(record.read_text())["results"]["abusers"], [])
    else:
        worker.join()
    codes = {group: results[group][0] for group in ("bystanders", "abusers")}
    latencies = sorted(results["bystanders"][1])
    total = sum(codes["bystanders"].values())
    where = f"in a process at nice {args.abusers_nice}" if child is not None else "in this process"
    print(f"server: {args.target} {' '.join(args.serve_flags + args.grpc_option)}; abusers {args.abusers} ({where})")
    for group, counter in codes.items():
        print(f"  {group}: {counter}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  bystanders: {len(latencies) / args.seconds:.0f} OK/s, CANCELLED "
            f"{codes['bystanders'].get('CANCELLED', 0) / max(total, 1):.1%}, p50 "
            f"{statistics.median(latencies) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
        )

    out: dict[str, Any] = {"codes": codes}
    if latencies:
        out["bystanders_ok_per_s"] = len(latencies) / args.seconds
        out["bystanders_p50_ms"] = statistics.median(latencies) * 1e3
        out["bystanders_p99_ms"] = p99 * 1e3
    return out


run(__name__, __doc__, configure, measure)

"""HTTP against gRPC on one `baton serve` process, and HTTP stacks against each other (issue 30).

    python benchmarks/http_vs_grpc.py BUNDLE [--input FILE] [--levels 1,8,32,64] [--duration 8]
        [--stacks httptools,h11,granian]

For each HTTP stack a server process starts with both fronts (the stack replaces only the HTTP server under the same
ASGI app: serving/http/). At each concurrency level, one after another on that server: gRPC (the domain API), HTTP
`/v1/classify`, HTTP OIP REST infer. Each row: texts/s, p50/p99, and the server's CPU per call (from /proc over the
measured window). The load generator (grpc.aio, aiohttp) shares the machine's cores with the server, and its CPU per
call is printed too. Ratios are HTTP / gRPC of the same server in the same minute.

Stacks: httptools (uvicorn's httptools protocol, with baton's head bounds: what `baton serve` runs), h11 (uvicorn's
pure-Python protocol), granian (its embedded server on the same event loop; experimental in granian 2.x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import run

PROTOCOLS = ("baton", "http", "http-kserve")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="?", default="bundles/demo")
    parser.add_argument("--input", default="examples/reviews/test.jsonl")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--stacks", default="httptools,h11,granian")
    parser.add_argument("--serve-stack", help=argparse.SUPPRESS)  # internal: run one server process
    parser.add_argument("--ports-file", help=argparse.SUPPRESS)


async def _serve(bundle: str, stack: str, ports_file: str) -> None:
    """One server with gRPC and the HTTP app on `stack`, until SIGTERM."""
    from baton.serving.config import ServeConfig
    from baton.serving.http import front
    from baton.serving.http.front import HttpFront
    from baton.serving.rpc import BatonServer

    if stack == "h11":
        front._bounded_protocol = lambda timeout: "h11"  # type: ignore[assignment]
    config = ServeConfig(bundle=bundle, port=0, metrics_port=None, http=stack != "granian", http_port=0)
    server = BatonServer(config)
    await server.start()
    http_port = server.http_port
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    granian = None
    if stack == "granian":
        from granian.constants import Interfaces
        from granian.server.embed import Server as Granian

        with __import__("socket").socket() as probe:
            probe.bind(("127.0.0.1", 0))
            http_port = probe.getsockname()[1]
        app = HttpFront(config, server, server.metrics).app
        granian = Granian(app, address="127.0.0.1", port=http_port, interface=Interfaces.ASGINL, log_enabled=False)
        task = asyncio.ensure_future(granian.serve())
        await asyncio.sleep(1.0)
    Path(ports_file).write_text(json.dumps({"grpc": server.port, "http": http_port}))
    await stopped.wait()
    if granian is not None:
        granian.stop()  # type: ignore[attr-defined]
        await task
    await server.stop(2)


def _start(bundle: str, stack: str, tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ports_file = tmp / f"{stack}.json"
    cmd = [sys.executable, __file__, bundle, "--serve-stack", stack, "--ports-file", str(ports_file)]
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    while not ports_file.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the {stack} server did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return proc, json.loads(ports_file.read_text())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.serve_stack:
        asyncio.run(_serve(args.bundle, args.serve_stack, args.ports_file))
        raise SystemExit(0)  # a server process writes no record
    from baton.serving.bundle import load_bundle
    from baton.tools.bench.loadgen import Load, bench_grpc
    from baton.tools.bench.options import BenchOptions, load_texts

    bundle = load_bundle(args.bundle)
    texts = load_texts(args.input, "text", 512, 0)
    options = BenchOptions(duration_s=args.duration, warmup_s=args.warmup)
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for stack in args.stacks.split(","):
            proc, ports = _start(args.bundle, stack, Path(tmp))
            try:
                for level in levels:
                    for protocol in PROTOCOLS:
                        port = ports["grpc"] if protocol == "baton" else ports["http"]
                        load = Load(
                            target=f"127.0.0.1:{port}",
                            texts=texts,
                            concurrency=[level],
                            protocol=protocol,
                            model_name=bundle.name,
                            server_pid=proc.pid,
                        )
                        (row,) = bench_grpc(load, options, echo=False)["results"]
                        calls = row["requests_per_s"] * row["elapsed_s"]
                        rows.append(
                            {
                                "stack": stack,
                                "protocol": protocol,
                                "concurrency": level,
                                "texts_per_s": row["texts_per_s"],
                                "p50_ms": row["p50_ms"],
                                "p99_ms": row["p99_ms"],
                                "errors": row["errors"],
                                "server_cpu_ms_per_call": 1000 * row.get("server_cpu_s", float("nan")) / max(calls, 1),
                                "client_cpu_ms_per_call": 1000 * row["client_cpu_s"] / max(calls, 1),
                            }
                        )
                        r = rows[-1]
                        print(
                            f"{stack:9s} {protocol:11s} {level:3d} clients: {r['texts_per_s']:7.0f} texts/s "
                            f"p50 {r['p50_ms']:6.2f} p99 {r['p99_ms']:7.2f} ms, server CPU "
                            f"{r['server_cpu_ms_per_call']:.3f} ms/call, client {r['client_cpu_ms_per_call']:.3f}"
                            + (f" errors {r['errors']}" if r["errors"] else ""),
                            flush=True,
                        )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    _table(rows, levels)
    return {"bundle": str(args.bundle), "input": args.input, "duration_s": args.duration, "rows": rows}


def _table(rows: list[dict[str, Any]], levels: list[int]) -> None:
    print("\n| stack | route | clients | texts/s | / gRPC | p50 ms | p50 − gRPC ms | p99 ms | server CPU ms/call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["protocol"] == "baton":
            continue
        base = next(
            g
            for g in rows
            if g["stack"] == r["stack"] and g["concurrency"] == r["concurrency"] and g["protocol"] == "baton"
        )
        print(
            f"| {r['stack']} | {r['protocol']} | {r['concurrency']} | {r['texts_per_s']:.0f} | "
            f"{r['texts_per_s'] / base['texts_per_s']:.2f} | {r['p50_ms']:.2f} | {r['p50_ms'] - base['p50_ms']:+.2f} | "
            f"{r['p99_ms']:.2f} | {r['server_cpu_ms_per_call']:.3f} (gRPC {base['server_cpu_ms_per_call']:.3f}) |"
        )


run(__name__, __doc__, configure, measure)

"""How long `baton serve` takes from exec to SERVING, and its memory at idle (issue 32, part 3).

    python benchmarks/startup.py BUNDLE [--runs 3] [-- extra `baton serve` flags]

Each run starts `baton serve BUNDLE` on free ports and times, from just before exec, the first grpc.health.v1
SERVING answer and the first 200 from `/v2/health/ready` (both come once every model is loaded, verified and warmed
up), polling every 20 ms. Then, after 2 s idle, the process's resident memory (VmRSS) and its peak
(VmHWM). The import of the package alone (`python -c "import baton.serving.rpc"`) is timed too: it is part of the
first figure. Medians over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle")
    parser.add_argument("--runs", type=int, default=3)


def _once(bundle: str, extra: list[str]) -> dict[str, float]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from baton.tools.bench.accounting import memory_mib
    from baton.tools.bench.loadgen import free_port

    port, http_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "baton", "-q", "serve", bundle, "--port", str(port), "--http-port", str(http_port),
           "--metrics-port", "0", *extra]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        times: dict[str, float] = {}
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)
        while "grpc_serving_s" not in times or "http_ready_s" not in times:
            if proc.poll() is not None:
                raise SystemExit(f"baton serve exited with {proc.returncode}")
            now = time.perf_counter() - started
            if "grpc_serving_s" not in times:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        times["grpc_serving_s"] = now
                except grpc.RpcError:
                    pass
            if "http_ready_s" not in times:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=0.2) as r:
                        if r.status == 200:
                            times["http_ready_s"] = now
                except OSError:
                    pass
            time.sleep(0.02)
        time.sleep(2.0)
        mem = memory_mib(proc.pid)
        channel.close()
        return {**times, "idle_rss_mib": mem["VmRSS"], "peak_rss_mib": mem["VmHWM"]}
    finally:
        proc.terminate()
        proc.wait(30)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import baton.serving.rpc"], check=True)
    import_s = time.perf_counter() - t0
    runs = [_once(args.bundle, args.passthrough) for _ in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"import baton.serving.rpc (a fresh interpreter): {import_s:.2f} s")
    for key, value in median.items():
        print(f"{key}: {value:.2f}")
    return {"bundle": args.bundle, "import_s": import_s, "median": median, "runs": runs}


run(__name__, __doc__, configure, measure)

"""Deadline storm: bystanders with 30 s deadlines beside clients that send 1 ms deadlines, against baton or a plain
grpc.aio server (a 2 ms sleep per call), each in its own process on a loopback port.

    python scripts/deadline_storm.py BUNDLE|plain [--abusers 16] [--bystanders 16] [--seconds 10]
        [--separate-connections] [--grpc-option KEY=INT (plain)] [extra `baton serve` flags, e.g.
        --max-concurrent-streams 32]

Prints the status codes of both groups and the bystanders' p50/p99. What it showed (docs/benchmarks.md): the
bystanders' CANCELLED come from grpc core's pending-call queue, not from baton's handler (they never reach it): the
asyncio server takes one call per event-loop round trip, doomed calls arrive faster, and the queue's overload
protection (random early rejection between 1,000 and 3,000 pending calls) cancels calls at random. A plain
grpc.aio server shows the same.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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
def _server(args: argparse.Namespace) -> Iterator[str]:
    """The server under test, in its own process; yields its target."""
    if args.target != "plain":
        with started_server(Path(args.target), args.serve_flags) as server:
            yield server.target
        return
    options = [[key, int(value)] for key, value in (o.split("=", 1) for o in args.grpc_option)]
    proc = subprocess.Popen([sys.executable, "-c", _PLAIN, json.dumps(options)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().split(" on ")[1].split(",")[0].strip()
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="a bundle directory, or 'plain'")
    parser.add_argument("--abusers", type=int, default=16)
    parser.add_argument("--bystanders", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--separate-connections", action="store_true", help="one TCP connection per client thread")
    parser.add_argument(
        "--grpc-option",
        action="append",
        default=[],
        help="plain server only: a grpc server option KEY=INT, e.g. grpc.server.max_pending_requests=100000",
    )
    args, serve_flags = parser.parse_known_args()  # anything else goes to `baton serve`
    args.serve_flags = [f for f in serve_flags if f != "--"]
    with _server(args) as target:
        _storm(args, target)


def _storm(args: argparse.Namespace, target: str) -> None:
    import grpc

    from baton.serving.v1 import classifier_pb2 as pb
    from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

    stop = time.monotonic() + args.seconds
    codes: dict[str, collections.Counter[str]] = {"bystanders": collections.Counter(), "abusers": collections.Counter()}
    latencies: list[float] = []
    lock = threading.Lock()
    options = [("grpc.use_local_subchannel_pool", 1)] if args.separate_connections else []
    request = pb.ClassifyRequest(texts=["a fairly ordinary review text of some length"])

    def client(group: str, timeout: float) -> None:
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
                codes[group][code] += 1
                if group == "bystanders" and code == "OK":
                    latencies.append(time.perf_counter() - started)
        channel.close()

    threads = [threading.Thread(target=client, args=("bystanders", 30.0)) for _ in range(args.bystanders)]
    threads += [threading.Thread(target=client, args=("abusers", 0.001)) for _ in range(args.abusers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    total = sum(codes["bystanders"].values())
    print(f"server: {args.target} {' '.join(args.serve_flags + args.grpc_option)}; abusers {args.abusers}")
    for group, counter in codes.items():
        print(f"  {group}: {dict(counter)}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  bystanders: {len(latencies) / args.seconds:.0f} OK/s, CANCELLED "
            f"{codes['bystanders']['CANCELLED'] / max(total, 1):.1%}, p50 {statistics.median(latencies) * 1e3:.1f} ms, "
            f"p99 {p99 * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()

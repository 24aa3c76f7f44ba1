"""`make soak`: a real `baton serve` under 64 well-behaved clients, first clean, then mixed with abuse, then drained.

    python benchmarks/soak.py BUNDLE [--seconds 600] [--clean-seconds 60] [--clients 64] [--output soak.json]

Abuse, each kind at a bounded rate beside the bystanders: oversize messages (over --max-message-bytes), element
floods (half a million empty texts), malformed protobuf, calls cancelled mid-flight, 1 ms deadlines, and
unauthenticated floods. At the end, streams are open when SIGTERM arrives: each must end cleanly (OK, every
accepted message answered) and the server must exit 0.

Reports throughput, bystander errors by code (any non-OK is unexpected), bystander p50/p99 clean and under abuse,
abuse outcomes by code, and the server's RSS at the start and the end. Targets (issue 13, figures in
docs/benchmarks.md): 0 unexpected errors, bystander p99 under abuse <= 2x clean, RSS growth < 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from _harness import run

from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
from baton.tools.bench import started_server

TOKEN = "soak-token"
METHOD = "/baton.serving.v1.TextClassifier/Classify"
TEXTS = [
    "great value, works as described",
    "broke after a week and support never answered",
    "the plot was slow but the ending saved it, and the acting was better than I expected",
    "meh",
]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 if ordered else float("nan")


class Soak:
    def __init__(self, target: str, clients: int) -> None:
        self.target = target
        self.clients = clients
        self.metadata = (("authorization", f"Bearer {TOKEN}"),)
        self.latencies: dict[str, list[float]] = {"clean": [], "abuse": []}
        self.bystanders: dict[str, collections.Counter[str]] = {
            "clean": collections.Counter(),
            "abuse": collections.Counter(),
        }
        self.abuse: collections.Counter[str] = collections.Counter()

    async def bystander(self, channel: grpc.aio.Channel, phase: str, until: float, index: int) -> None:
        stub = pb_grpc.TextClassifierStub(channel)
        n = index
        while time.monotonic() < until:
            text = TEXTS[n % len(TEXTS)]
            n += 1
            started = time.perf_counter()
            try:
                await stub.Classify(pb.ClassifyRequest(texts=[text]), timeout=30, metadata=self.metadata)
                self.latencies[phase].append(time.perf_counter() - started)
                self.bystanders[phase]["OK"] += 1
            except grpc.RpcError as exc:
                self.bystanders[phase][exc.code().name] += 1

    async def _raw(self, channel: grpc.aio.Channel, kind: str, payload: bytes, **kwargs: Any) -> None:
        call = channel.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            await call(payload, **kwargs)
            self.abuse[f"{kind}:OK"] += 1
        except grpc.RpcError as exc:
            self.abuse[f"{kind}:{exc.code().name}"] += 1
        except asyncio.CancelledError:
            self.abuse[f"{kind}:cancelled by the client"] += 1
            raise

    async def abuser(self, channel: grpc.aio.Channel, until: float, rate: float) -> None:
        """One abusive call of each kind per round, `rate` rounds a second."""
        good = pb.ClassifyRequest(texts=TEXTS).SerializeToString()
        auth = {"metadata": self.metadata, "timeout": 30}
        kinds = [
            ("oversize", pb.ClassifyRequest(texts=["x" * (2 << 20)]).SerializeToString(), auth),
            ("flood", b"\x0a\x00" * 400_000, auth),
            ("malformed", b"\x0a\xff\xff\xff\xff\x0f", auth),
            ("tiny-deadline", good, {"metadata": self.metadata, "timeout": 0.001}),
            ("unauthenticated", b"\x0a\x00" * 400_000, {"timeout": 30}),
        ]
        while time.monotonic() < until:
            started = time.monotonic()
            for kind, payload, kwargs in kinds:
                await self._raw(channel, kind, payload, **kwargs)
            task = asyncio.ensure_future(self._raw(channel, "cancelled", good, **auth))
            await asyncio.sleep(0.002)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))

    async def phase(self, name: str, seconds: float, abusers: int, rate: float) -> None:
        until = time.monotonic() + seconds
        channel = grpc.aio.insecure_channel(self.target, options=[("grpc.max_send_message_length", 8 << 20)])
        abuse_channel = grpc.aio.insecure_channel(
            self.target, options=[("grpc.max_send_message_length", 8 << 20), ("grpc.use_local_subchannel_pool", 1)]
        )
        tasks = [self.bystander(channel, name, until, i) for i in range(self.clients)]
        tasks += [self.abuser(abuse_channel, until, rate) for _ in range(abusers)]
        await asyncio.gather(*tasks)
        await channel.close()
        await abuse_channel.close()

    def streams_then_sigterm(self, pid: int, streams: int = 8) -> dict[str, Any]:
        """Open streams, send SIGTERM while they are busy: each must end OK with every accepted message answered.

        The streams use the blocking client: grpc's asyncio client can report INTERNAL ("Internal error from Core")
        for a stream the server ended OK while the client was still writing (grpc/grpc#36066); it did for 1-4 of 8
        streams in about 1 SIGTERM in 4 here, and the blocking client reported OK in 80 of 80."""
        outcomes: collections.Counter[str] = collections.Counter()
        answered = [0]
        lock = threading.Lock()
        channel = grpc.insecure_channel(self.target)
        stub = pb_grpc.TextClassifierStub(channel)

        def requests() -> Any:
            for _ in range(10_000):
                yield pb.ClassifyRequest(texts=TEXTS)
                time.sleep(0.01)

        def one() -> None:
            try:
                for _ in stub.ClassifyStream(requests(), timeout=60, metadata=self.metadata):
                    with lock:
                        answered[0] += 1
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            with lock:
                outcomes[code] += 1

        threads = [threading.Thread(target=one) for _ in range(streams)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        os.kill(pid, signal.SIGTERM)
        for thread in threads:
            thread.join()
        channel.close()
        return {"streams": dict(outcomes), "messages_answered": answered[0]}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=float, default=600.0, help="abuse phase")
    parser.add_argument("--clean-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--abusers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=5.0, help="abuse rounds per second per abuser")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="baton-soak-") as folder:
        token = Path(folder) / "token"
        token.write_text(TOKEN)
        with started_server(Path(args.bundle), ["--auth-token-file", str(token), "--grace-s", "20"]) as server:
            report = _soak(args, Soak(server.target, args.clients), server.process)
    print(json.dumps(report, indent=2))
    met = (
        not any(report["unexpected_bystander_errors"].values())
        and report["p99_ratio"] is not None
        and report["p99_ratio"] <= 2.0
        and (report["rss_growth"] or 0) < 0.05
        and report["exit_code"] == 0
        and set(report["drain"]["streams"]) <= {"OK"}
    )
    print(f"targets {'met' if met else 'NOT met'}")
    return {**report, "targets_met": met}


def _soak(args: argparse.Namespace, soak: Soak, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Clean phase, abuse phase (RSS sampled each second), then streams drained by SIGTERM: the report."""
    rss_start = _rss_kib(proc.pid)
    asyncio.run(soak.phase("clean", args.clean_seconds, 0, args.rate))
    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not sampling.wait(1.0):
            samples.append((time.monotonic() - started, _rss_kib(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    asyncio.run(soak.phase("abuse", args.seconds, args.abusers, args.rate))
    sampling.set()
    sampler.join()
    rss_end = _rss_kib(proc.pid)
    # Growth is measured from the footprint a tenth into the abuse phase (allocator pools for the abusive messages
    # are warm by then) to its end: a leak grows on; a warm-up does not.
    warm = next((kib for t, kib in samples if t >= args.seconds / 10), rss_end)
    drain = soak.streams_then_sigterm(proc.pid)
    exit_code = proc.wait(60)

    clean, abuse = soak.latencies["clean"], soak.latencies["abuse"]
    unexpected = {phase: {k: v for k, v in c.items() if k != "OK"} for phase, c in soak.bystanders.items()}
    return {
        "bundle": args.bundle,
        "seconds": {"clean": args.clean_seconds, "abuse": args.seconds},
        "clients": args.clients,
        "abuse_rate_per_s": args.abusers * args.rate,
        "texts_per_s": {"clean": len(clean) / args.clean_seconds, "abuse": len(abuse) / args.seconds},
        "bystander_ms": {
            "clean": {"p50": statistics.median(clean) * 1e3 if clean else None, "p99": _p(clean, 0.99)},
            "abuse": {"p50": statistics.median(abuse) * 1e3 if abuse else None, "p99": _p(abuse, 0.99)},
        },
        "p99_ratio": _p(abuse, 0.99) / _p(clean, 0.99) if clean and abuse else None,
        "unexpected_bystander_errors": unexpected,
        "abuse_outcomes": dict(sorted(soak.abuse.items())),
        "rss_kib": {
            "start": rss_start,
            "abuse_warm": warm,
            "end": rss_end,
            "max": max((k for _, k in samples), default=0),
        },
        "rss_growth": (rss_end - warm) / warm if warm else None,
        "drain": drain,
        "exit_code": exit_code,
    }


run(__name__, __doc__, configure, measure)

"""Load generation: closed and open loops over gRPC (baton or KServe protocol), the echo ceiling, a started server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.task import Task
from baton.tools.bench.accounting import cpu_of, cpu_self, percentiles, scrape, server_view
from baton.tools.bench.inprocess import inprocess_ceiling, progress_bar
from baton.tools.bench.options import BenchOptions, check_device, pairs_of
from baton.tools.bench.report import mean_ceiling

__all__ = [
    "PROTOCOLS",
    "Load",
    "StartedEcho",
    "StartedServer",
    "bench_grpc",
    "bench_serve",
    "closed_loop",
    "started_echo",
    "started_server",
]

logger = logging.getLogger(__name__)


# baton and kserve: gRPC (the domain API, KServe v2); http and http-kserve: the HTTP front's task routes and OIP REST
PROTOCOLS = ("baton", "kserve", "http", "http-kserve")


class _Caller:
    """One RPC of the chosen protocol over a shared aio channel."""

    def __init__(self, target: str, protocol: str, model_name: str | None, token: str | None) -> None:
        import grpc

        from baton.serving.kserve import grpc_service_pb2 as kpb
        from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
        from baton.serving.v1 import classifier_pb2 as pb
        from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

        self.grpc, self.pb, self.kpb = grpc, pb, kpb
        self.target = target
        self.channel = grpc.aio.insecure_channel(target)
        self.protocol = protocol
        self.model_name = model_name or ""
        self.domain_model = self.model_name  # the domain API's `model`: one model of a repository server
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.stub: Any = (
            pb_grpc.TextClassifierStub(self.channel)
            if protocol == "baton"
            else kpb_grpc.GRPCInferenceServiceStub(self.channel)
        )
        self.task: Task | None = None  # the baton protocol asks the server once: Classify or Recognize
        self._domain = {Task.CLASSIFICATION: self._classify, Task.ENTITIES: self._recognize}
        self._recognizer: Any = None
        self.failures: tuple[type[BaseException], ...] = (grpc.RpcError,)

    def code(self, exc: BaseException) -> str:
        return str(exc.code().name)  # type: ignore[attr-defined]

    async def wait_ready(self, timeout: float) -> None:
        await _wait_ready(self.target, timeout)

    async def close(self) -> None:
        await self.channel.close()

    async def _classify(self, texts: list[str], pairs: list[str] | None, timeout: float) -> None:
        request = self.pb.ClassifyRequest(texts=texts, text_pairs=pairs or [], model=self.domain_model)
        await self.stub.Classify(request, timeout=timeout, metadata=self.metadata)

    async def _recognize(self, texts: list[str], pairs: list[str] | None, timeout: float) -> None:
        from baton.serving.v1 import recognizer_pb2 as rpb
        from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc

        if self._recognizer is None:
            self._recognizer = rpb_grpc.EntityRecognizerStub(self.channel)
        request = rpb.RecognizeRequest(texts=texts, model=self.domain_model)
        await self._recognizer.Recognize(request, timeout=timeout, metadata=self.metadata)

    async def _server_task(self, timeout: float) -> Task:
        try:
            request = self.pb.GetModelInfoRequest(model=self.domain_model)
            info = await self.stub.GetModelInfo(request, timeout=timeout, metadata=self.metadata)
            return Task.parse(info.task, "GetModelInfo")
        except self.grpc.aio.AioRpcError as exc:
            if exc.code() != self.grpc.StatusCode.UNIMPLEMENTED:
                raise
            return Task.CLASSIFICATION  # the echo server (load-generator ceiling) answers Classify only

    async def __call__(self, texts: list[str], timeout: float) -> None:
        pairs = pairs_of(texts)
        if self.protocol == "baton":
            if self.task is None:
                self.task = await self._server_task(timeout)
            await self._domain[self.task](texts, pairs, timeout)
        else:
            from baton.serving.kserve_codec import encode_bytes_raw

            columns = {"text": list(texts), **({"text_pair": pairs} if pairs else {})}
            tensor = self.kpb.ModelInferRequest.InferInputTensor
            request = self.kpb.ModelInferRequest(
                model_name=self.model_name,
                inputs=[tensor(name=name, datatype="BYTES", shape=[len(texts)]) for name in columns],
                raw_input_contents=[encode_bytes_raw([t.encode() for t in col]) for col in columns.values()],
            )
            await self.stub.ModelInfer(request, timeout=timeout, metadata=self.metadata)


async def _wait_ready(target: str, timeout: float) -> None:
    import grpc

    channel = grpc.aio.insecure_channel(target)
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout)
    except asyncio.TimeoutError as exc:
        raise BatonError(f"--target {target}: no gRPC server answered within {timeout:.0f}s") from exc
    finally:
        await channel.close()


async def closed_loop(
    caller: _Caller,
    texts: list[str],
    per_request: int,
    concurrency: int,
    duration: float,
    warmup: float,
    timeout: float,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """`concurrency` clients, each sending its next request when the last is answered, for `warmup` and then the
    measured `duration`; the CPU of this process (and of `server_pid`) is taken over the measured window alone."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    sent = 0
    state = {"recording": False, "stop": False}
    cursor = [0]

    def next_texts() -> list[str]:
        i = cursor[0]
        cursor[0] += per_request
        return [texts[(i + k) % len(texts)] for k in range(per_request)]

    in_window = 0

    async def worker() -> None:
        nonlocal sent, in_window
        while not state["stop"]:
            batch = next_texts()
            counted = state["recording"]  # started inside the measured window: its outcome is counted
            sent += counted
            t0 = time.perf_counter()
            try:
                await caller(batch, timeout)
                if counted:
                    latencies.append(time.perf_counter() - t0)
                    in_window += bool(state["recording"])
            except caller.failures as exc:
                if counted:
                    errors[caller.code(exc)] += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    state["recording"] = True
    server0 = cpu_of(server_pid) if server_pid else None
    cpu0, start = cpu_self(), time.perf_counter()
    await asyncio.sleep(duration)
    elapsed, cpu = time.perf_counter() - start, cpu_self() - cpu0
    server_cpu = cpu_of(server_pid) - server0 if server_pid and server0 is not None else None
    state["recording"] = False
    state["stop"] = True
    await asyncio.gather(*tasks)  # every request started is awaited: none is dropped from the counts
    return {
        "concurrency": concurrency,
        "texts_per_request": per_request,
        "requests_sent": sent,
        "answered": len(latencies),
        "errors": dict(errors),
        "requests_per_s": in_window / elapsed,
        "texts_per_s": in_window * per_request / elapsed,
        "client_cpu_s": cpu,
        **({"server_cpu_s": server_cpu} if server_cpu is not None else {}),
        "elapsed_s": elapsed,
        **percentiles(latencies),
    }


async def _open_loop(
    caller: _Caller, texts: list[str], per_request: int, rate: float, duration: float, timeout: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    pending: list[asyncio.Future[None]] = []

    async def one(batch: list[str]) -> None:
        t0 = time.perf_counter()
        try:
            await caller(batch, timeout)
            latencies.append(time.perf_counter() - t0)
        except caller.failures as exc:
            errors[caller.code(exc)] += 1

    cpu0, start, i = cpu_self(), time.perf_counter(), 0
    while (now := time.perf_counter() - start) < duration:
        due = i / rate
        if due > now:
            await asyncio.sleep(due - now)
        pending.append(
            asyncio.ensure_future(one([texts[(i * per_request + k) % len(texts)] for k in range(per_request)]))
        )
        i += 1
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    return {
        "rate": rate,
        "texts_per_request": per_request,
        "requests_sent": i,
        "answered": len(latencies),
        "errors": dict(errors),
        "requests_per_s": len(latencies) / elapsed,
        "texts_per_s": len(latencies) * per_request / elapsed,
        "client_cpu_s": cpu_self() - cpu0,
        "elapsed_s": elapsed,
        **percentiles(latencies),
    }


@dataclass(frozen=True, kw_only=True)
class Load:
    """What load to put on which server: closed-loop levels, open-loop rates, request shape and protocol."""

    target: str
    texts: list[str]
    concurrency: Sequence[int] = (1, 8, 32, 64)
    rates: Sequence[float] = ()
    per_request: int = 1
    protocol: str = "baton"
    model_name: str | None = None
    token: str | None = None
    metrics_url: str | None = None
    server_pid: int | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise BatonError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {self.protocol!r})")
        if self.protocol in ("kserve", "http-kserve") and not self.model_name:
            raise BatonError("--protocol kserve needs --model-name")
        if self.per_request < 1:
            raise BatonError("--texts-per-request must be >= 1")


def _caller(load: Load) -> Any:
    if load.protocol.startswith("http"):
        from baton.tools.bench.http_caller import HttpCaller

        return HttpCaller(load.target, load.protocol, load.model_name, load.token)
    return _Caller(load.target, load.protocol, load.model_name, load.token)


async def _sweep(load: Load, options: BenchOptions) -> list[dict[str, Any]]:
    caller = _caller(load)
    await caller.wait_ready(5 if options.quick else 15)
    duration = 0.5 if options.quick else options.duration_s
    warmup = 0.2 if options.quick else options.warmup_s
    rows = []
    progress = progress_bar(len(load.concurrency) + len(load.rates), f"{load.protocol} {load.target}")
    try:
        for level in load.concurrency:
            before = scrape(load.metrics_url)
            row = await closed_loop(
                caller, load.texts, load.per_request, level, duration, warmup, 30.0, load.server_pid
            )
            row.update(server_view(before, scrape(load.metrics_url)))
            rows.append({"mode": "closed", **row})
            progress.update(1)
        for rate in load.rates:
            before = scrape(load.metrics_url)
            row = await _open_loop(caller, load.texts, load.per_request, rate, duration, 30.0)
            row.update(server_view(before, scrape(load.metrics_url)))
            rows.append({"mode": "open", **row})
            progress.update(1)
    finally:
        progress.close()
        await caller.close()
    return rows


@dataclass(frozen=True)
class StartedEcho:
    pid: int
    target: str  # gRPC host:port
    http_target: str = ""  # host:port of the HTTP echo, when started with it


@contextlib.contextmanager
def started_echo(event_loop: str = "asyncio", http: bool = False) -> Iterator[StartedEcho]:
    """The echo server (echo.py) in a subprocess on `event_loop`, with the HTTP echo too if `http`, until the block
    ends."""
    with tempfile.TemporaryDirectory() as tmp:
        grpc_file, http_file = Path(tmp) / "grpc", Path(tmp) / "http"
        cmd = [sys.executable, "-m", "baton.tools.bench.echo", str(grpc_file), "--event-loop", event_loop]
        proc = subprocess.Popen([*cmd, "--http-port-file", str(http_file)] if http else cmd)
        try:
            deadline = time.time() + 30
            while not grpc_file.exists() or not grpc_file.read_text():
                if time.time() > deadline or proc.poll() is not None:
                    raise BatonError("the echo server did not start")
                time.sleep(0.05)
            http_target = f"127.0.0.1:{http_file.read_text()}" if http else ""
            yield StartedEcho(proc.pid, f"127.0.0.1:{grpc_file.read_text()}", http_target)
        finally:
            proc.terminate()
            proc.wait(10)


def _echo_ceiling(load: Load, options: BenchOptions) -> dict[str, Any]:
    """The same load against an echo server: the load generator's own ceiling (at the highest concurrency) and
    the gRPC round trip with no work behind it (one client), which bounds how close a server can get to
    in-process latency."""
    with started_echo() as server:
        echo = replace(
            load,
            target=server.target,
            concurrency=sorted({1, max(load.concurrency or [1])}),
            rates=(),
            model_name="echo",
            token=None,
            metrics_url=None,
            server_pid=server.pid,
        )
        rows = asyncio.run(_sweep(echo, options))
    one = rows[0]
    return {
        **rows[-1],
        "one_client_p50_ms": one["p50_ms"],
        "one_client_server_cpu_s": one.get("server_cpu_s"),
        "one_client_calls": one["requests_per_s"] * one["elapsed_s"],
    }


def bench_grpc(load: Load, options: BenchOptions, echo: bool = True) -> dict[str, Any]:
    rows = asyncio.run(_sweep(load, options))
    result: dict[str, Any] = {"mode": "grpc", "target": load.target, "protocol": load.protocol, "results": rows}
    if echo:
        result["load_generator_ceiling"] = _echo_ceiling(load, options)
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class StartedServer:
    cmd: list[str]
    target: str
    metrics_url: str
    process: subprocess.Popen[str]
    http_url: str = ""  # the HTTP front's base URL
    banner: str = ""  # the start-up line the server printed

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def started_server(bundle_dir: Path, serve_args: Sequence[str] = ()) -> Iterator[StartedServer]:
    """`baton serve BUNDLE` on free ports in a subprocess, until the block ends (then SIGTERM, if still running).

    Yields once the server has printed its banner, which it does after warm-up, when health is SERVING. Its stderr
    goes to a temporary file, not a pipe: a long run that logs must never block on a full pipe."""
    port, metrics_port, http_port = free_port(), free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "baton",
        "-q",
        "serve",
        str(bundle_dir),
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--http-port",
        str(http_port),
        *serve_args,
    ]
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "baton serving" not in line:
                proc.wait(30)
                stderr.seek(0)
                raise BatonError(f"the server did not start: {stderr.read().strip()[-2000:]}")
            yield StartedServer(
                cmd,
                f"127.0.0.1:{port}",
                f"http://127.0.0.1:{metrics_port}/metrics",
                proc,
                f"http://127.0.0.1:{http_port}",
                line.strip(),
            )
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _target_model(root: Path, model: str | None) -> tuple[Path, str | None]:
    """The bundle a load on `root` exercises, and its model name (None for a lone bundle)."""
    from baton.serving.repository import scan
    from baton.serving.repository.layout import is_bundle

    if is_bundle(root):
        if model:
            raise BatonError("--model-name names a model of a repository; this is a lone bundle")
        return root, None
    if not root.is_dir():
        raise BatonError(f"bundle or model repository not found: {root}")
    models = scan(root).models
    if model not in models:
        raise BatonError(f"--model-name: name one of the repository's models ({', '.join(sorted(models)) or 'none'})")
    versions = models[model]
    return versions[max(versions)], model


def bench_serve(
    bundle_dir: Path,
    texts: list[str],
    concurrency: Sequence[int],
    per_request: int,
    protocol: str,
    options: BenchOptions,
    serve_args: Sequence[str] = (),
    echo: bool = True,
    device: str = "cpu",
    variant: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Start `baton serve`, sweep the load, and measure the in-process ceiling before and after the sweep.

    `bundle_dir` may be a model repository: `model` names the model the load goes to, and the ceiling runs its
    highest version (what the server routes to by default); the repository's other models serve beside it.

    The machine's speed drifts over minutes, so the ratio divides by the mean of the two ceilings, and both are kept.
    The server and the ceiling run the same variant on the same device (`--device`, `--variant`).
    """
    from baton.serving.bundle import load_bundle
    from baton.serving.engine import choose_variant

    server_dir, bundle_dir, name = bundle_dir, *_target_model(bundle_dir, model)
    bundle = load_bundle(bundle_dir)
    variant, _, _ = choose_variant(bundle, check_device(device), variant)  # before any load
    serve_args = [*serve_args, "--device", device, "--variant", variant]
    seconds = 0.5 if options.quick else max(2.0, options.duration_s / 3)
    before = inprocess_ceiling(bundle_dir, texts, variant, seconds, device=device)
    with started_server(server_dir, serve_args) as server:
        http = protocol.startswith("http")
        load = Load(
            target=server.http_url if http else server.target,
            texts=texts,
            concurrency=concurrency,
            per_request=per_request,
            protocol=protocol,
            model_name=name or bundle.name,
            metrics_url=server.metrics_url,
            server_pid=server.pid,
        )
        grpc_result = bench_grpc(load, options, echo=echo and not http)  # the echo server speaks gRPC
        cmd = server.cmd
    after = inprocess_ceiling(bundle_dir, texts, variant, seconds, device=device)
    mean = mean_ceiling(before, after)
    best = max((r["texts_per_s"] for r in grpc_result["results"]), default=0.0)
    top = max(concurrency)
    at_top = next((r["texts_per_s"] for r in grpc_result["results"] if r["concurrency"] == top), 0.0)
    one = next((r for r in grpc_result["results"] if r["concurrency"] == 1), None)
    return {
        "mode": "serve",
        "device": device,
        "bundle": str(bundle_dir),
        "bundle_sha256": bundle.checksum,
        "server_cmd": cmd,
        "cores": os.cpu_count(),
        "grpc": grpc_result,
        "ceiling": mean,
        "ratio_best": best / mean["texts_per_s"] if mean["texts_per_s"] else None,
        f"ratio_at_{top}": at_top / mean["texts_per_s"] if mean["texts_per_s"] else None,
        "p50_1_client_minus_batch1_p50_ms": (one["p50_ms"] - mean["batch1_p50_ms"])
        if one and mean.get("batch1_p50_ms")
        else None,
    }

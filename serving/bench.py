"""`baton bench`: in-process backends, the gRPC server under closed/open-loop load, and their ratio.

Every figure of one invocation is measured in that invocation (these machines drift, so compare side by side).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from baton._io import write_json_atomic
from baton.errors import BatonError, DataError

__all__ = ["BenchOptions", "Load", "bench_grpc", "bench_inprocess", "bench_serve", "load_texts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    duration_s: float = 10.0
    warmup_s: float = 2.0
    seed: int = 0
    samples: int = 512
    quick: bool = False

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.warmup_s < 0 or self.samples < 1:
            raise ValueError("duration must be > 0, warm-up >= 0, samples >= 1")


# ---- data and small helpers -----------------------------------------------------------------------------------
class PairText(str):
    """A bench text that carries its second text, for sentence-pair models. It sorts, buckets and samples by its
    first text like any other, and every backend sends `.pair` beside it (`pairs_of`)."""

    pair: str

    def __new__(cls, text: str, pair: str) -> PairText:
        item = super().__new__(cls, text)
        item.pair = pair
        return item


def pairs_of(batch: Sequence[str]) -> list[str] | None:
    """The second texts of a batch of `PairText`, or None for single texts."""
    return [t.pair for t in batch] if batch and isinstance(batch[0], PairText) else None  # type: ignore[attr-defined]


def load_texts(
    path: str, text_column: str = "text", samples: int = 512, seed: int = 0, pair_column: str | None = None
) -> list[str]:
    """A deterministic sample of texts (`PairText` with `pair_column`) from a CSV/JSON/JSONL/parquet/text file."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"--data: file not found: {file}")
    texts: list[str]
    if file.suffix.lower() in (".txt", ""):
        if pair_column:
            raise DataError(f"--text-pair-column: {file} is plain text; use .jsonl, .csv or .parquet for pairs")
        texts = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif file.suffix.lower() == ".jsonl":
        texts = []
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            for column, flag in ((text_column, "--text-column"), (pair_column, "--text-pair-column")):
                if column and column not in row:
                    raise DataError(
                        f"--data {file}: line {number} has no '{column}' column (columns: {', '.join(row)}); set {flag}"
                    )
            text = str(row[text_column])
            texts.append(PairText(text, str(row[pair_column])) if pair_column else text)
    else:
        try:
            from baton.training.data import load_labelled_file
        except ImportError as exc:
            raise DataError("--data: use .jsonl or .txt, or install baton[train] for csv/parquet") from exc
        ds = load_labelled_file(path, "--data")
        for column in (text_column, pair_column):
            if column and column not in ds.column_names:
                raise DataError(f"--data {file}: no column '{column}'; columns found: {', '.join(ds.column_names)}")
        texts = [str(t) for t in ds[text_column]]
        if pair_column:
            texts = [PairText(t, str(p)) for t, p in zip(texts, ds[pair_column], strict=True)]
    if not texts:
        raise DataError(f"--data {file}: no texts")
    rng = random.Random(seed)
    return [texts[i] for i in sorted(rng.sample(range(len(texts)), min(samples, len(texts))))]


def _percentiles(latencies_s: Sequence[float]) -> dict[str, float]:
    if not latencies_s:
        return {k: float("nan") for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")}
    arr = np.asarray(latencies_s) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p95_ms": float(np.percentile(arr, 95)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "mean_ms": float(arr.mean()),
    }


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("baton", "onnxruntime", "torch", "grpcio", "tokenizers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        **(extra or {}),
    }


def _progress(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


# ---- in-process ----------------------------------------------------------------------------------------------
def _buckets(texts: list[str]) -> dict[str, list[str]]:
    ordered = sorted(texts, key=len)
    third = max(1, len(ordered) // 3)
    return {"short": ordered[:third], "medium": ordered[third : 2 * third], "long": ordered[2 * third :], "all": texts}


def _synthetic(lengths: Sequence[int], count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    words = ["the", "film", "was", "good", "bad", "great", "awful", "plot", "acting", "slow", "quick", "story"]
    return {
        f"{n}tok": [" ".join(rng.choice(words) for _ in range(max(1, n - 2))) for _ in range(count)] for n in lengths
    }


def _time_batches(call: Callable[[list[str]], Any], texts: list[str], batch: int, duration: float) -> dict[str, Any]:
    """Run sorted batches of `texts` repeatedly for `duration`; per-batch latency and texts/s."""
    ordered = sorted(texts, key=len)
    batches = [ordered[i : i + batch] for i in range(0, len(ordered), batch)]
    call(batches[0])
    latencies: list[float] = []
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration or not latencies:
        for b in batches:
            t0 = time.perf_counter()
            call(b)
            latencies.append(time.perf_counter() - t0)
            done += len(b)
            if time.perf_counter() - start >= duration:
                break
    elapsed = time.perf_counter() - start
    return {"texts_per_s": done / elapsed, "batches": len(latencies), **_percentiles(latencies)}


def _torch_backend(run_dir: Path, threads: int | None) -> Callable[[list[str]], Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    max_length = json.loads((run_dir / "train_args.json").read_text())["max_length"]

    def call(texts: list[str]) -> Any:
        with torch.inference_mode():
            enc = tok(texts, pairs_of(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            return model(**enc).logits.softmax(-1).numpy()

    return call


def _resolve_bundle(path: Path) -> tuple[Path | None, Path]:
    """(run_dir or None, bundle_dir) from a run directory with a bundle inside or beside it, or a bundle."""
    if (path / "bundle.json").is_file():
        return None, path
    for candidate in (path / "bundle", path.parent.parent / "bundles" / path.name):
        if (candidate / "bundle.json").is_file():
            return path, candidate
    raise BatonError(
        f"{path} is neither a bundle nor a run directory with an exported bundle "
        "(run `baton export RUN --output RUN/bundle`)"
    )


def bench_inprocess(
    target: Path,
    texts: list[str],
    backends: Sequence[str] | None,
    batch_sizes: Sequence[int],
    options: BenchOptions,
    synthetic: Sequence[int] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    from baton.serving.bundle import load_bundle
    from baton.serving.engine import Engine

    run_dir, bundle_dir = _resolve_bundle(target)
    bundle = load_bundle(bundle_dir)
    available = [f"onnx-{v}" for v in sorted(bundle.models) if v != "fp16"] + (["torch"] if run_dir else [])
    chosen = list(backends or available)
    for name in chosen:
        if name not in available:
            raise BatonError(f"backend '{name}' is not available here (available: {', '.join(available)})")
    groups = _synthetic(synthetic, 64, options.seed) if synthetic else _buckets(texts)
    duration = 0.3 if options.quick else options.duration_s / max(1, len(groups))
    rows: list[dict[str, Any]] = []
    progress = _progress(len(chosen) * len(batch_sizes) * len(groups), "in-process")
    for backend in chosen:
        if backend == "torch":
            assert run_dir is not None
            call = _torch_backend(run_dir, threads)
            tokenize = None
        else:
            engine = Engine(bundle, backend.removeprefix("onnx-"), "cpu", threads)

            def call(batch: list[str], engine: Engine = engine) -> Any:
                return engine(batch, pairs=pairs_of(batch))

            def tokenize(batch: list[str], engine: Engine = engine) -> Any:
                return engine.preprocess(batch, pairs_of(batch))

        for bs in batch_sizes:
            for group, group_texts in groups.items():
                row = {
                    "backend": backend,
                    "batch_size": bs,
                    "bucket": group,
                    **_time_batches(call, group_texts, bs, duration),
                }
                if tokenize is not None:
                    tok = _time_batches(tokenize, group_texts, bs, min(duration, 0.5))
                    row["tokenize_texts_per_s"] = tok["texts_per_s"]
                rows.append(row)
                progress.update(1)
    progress.close()
    return {"mode": "inprocess", "bundle": str(bundle_dir), "bundle_sha256": bundle.checksum, "results": rows}


def inprocess_ceiling(
    bundle_dir: Path,
    texts: list[str],
    variant: str | None,
    duration: float,
    batch_sizes: Sequence[int] = (1, 8, 16, 32, 64),
) -> dict[str, Any]:
    """The best in-process throughput: the same texts, pre-sorted by length, at the best batch size."""
    from baton.serving.bundle import load_bundle
    from baton.serving.engine import Engine
    from baton.serving.predictor import choose_variant

    bundle = load_bundle(bundle_dir)
    chosen, _, _ = choose_variant(bundle, "cpu", variant)
    engine = Engine(bundle, chosen, "cpu")

    def call(batch: list[str]) -> Any:
        return engine(batch, pairs=pairs_of(batch))

    sweep = {bs: _time_batches(call, texts, bs, duration) for bs in batch_sizes}
    best = max(sweep, key=lambda bs: sweep[bs]["texts_per_s"])
    return {
        "variant": chosen,
        "best_batch_size": best,
        "texts_per_s": sweep[best]["texts_per_s"],
        "batch1_p50_ms": sweep[1]["p50_ms"] if 1 in sweep else None,
        "sweep": {str(k): v for k, v in sweep.items()},
    }


# ---- gRPC load ------------------------------------------------------------------------------------------------
def _scrape(url: str | None) -> dict[str, float]:
    if not url:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("baton_batch_size_", "baton_queue_seconds_", "baton_batch_tokens_")) and " " in line:
            name, value = line.rsplit(" ", 1)
            if name.endswith(("_sum", "_count")):
                out[name] = float(value)
    return out


def _server_view(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("baton_batch_size_count")
    items = delta("baton_queue_seconds_count")
    return {
        "mean_batch_size": delta("baton_batch_size_sum") / batches if batches else None,
        "mean_queue_ms": 1000 * delta("baton_queue_seconds_sum") / items if items else None,
    }


class _Caller:
    """One RPC of the chosen protocol over a shared aio channel."""

    def __init__(self, target: str, protocol: str, model_name: str | None, token: str | None) -> None:
        import grpc

        from baton.serving.kserve import grpc_service_pb2 as kpb
        from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
        from baton.serving.v1 import classifier_pb2 as pb
        from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

        self.grpc, self.pb, self.kpb = grpc, pb, kpb
        self.channel = grpc.aio.insecure_channel(target)
        self.protocol = protocol
        self.model_name = model_name or ""
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.stub: Any = (
            pb_grpc.TextClassifierStub(self.channel)
            if protocol == "baton"
            else kpb_grpc.GRPCInferenceServiceStub(self.channel)
        )
        self.task: str | None = None  # the baton protocol asks the server once: Classify or Recognize

    async def __call__(self, texts: list[str], timeout: float) -> None:
        pairs = pairs_of(texts)
        if self.protocol == "baton" and self.task is None:
            try:
                info = await self.stub.GetModelInfo(
                    self.pb.GetModelInfoRequest(), timeout=timeout, metadata=self.metadata
                )
                self.task = info.task
            except self.grpc.aio.AioRpcError as exc:
                if exc.code() != self.grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self.task = "text-classification"  # the echo server (load-generator ceiling) answers Classify only
            if self.task == "token-classification":
                from baton.serving.v1 import recognizer_pb2 as rpb
                from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc

                self.rpb, self.recognizer = rpb, rpb_grpc.EntityRecognizerStub(self.channel)
        if self.protocol == "baton" and self.task == "token-classification":
            await self.recognizer.Recognize(
                self.rpb.RecognizeRequest(texts=texts), timeout=timeout, metadata=self.metadata
            )
        elif self.protocol == "baton":
            request = self.pb.ClassifyRequest(texts=texts, text_pairs=pairs or [])
            await self.stub.Classify(request, timeout=timeout, metadata=self.metadata)
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


async def _closed_loop(
    caller: _Caller,
    texts: list[str],
    per_request: int,
    concurrency: int,
    duration: float,
    warmup: float,
    timeout: float,
) -> dict[str, Any]:
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
            except caller.grpc.RpcError as exc:
                if counted:
                    errors[exc.code().name] += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    state["recording"] = True
    cpu0, start = _cpu_self(), time.perf_counter()
    await asyncio.sleep(duration)
    elapsed, cpu = time.perf_counter() - start, _cpu_self() - cpu0
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
        "elapsed_s": elapsed,
        **_percentiles(latencies),
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
        except caller.grpc.RpcError as exc:
            errors[exc.code().name] += 1

    cpu0, start, i = _cpu_self(), time.perf_counter(), 0
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
        "client_cpu_s": _cpu_self() - cpu0,
        "elapsed_s": elapsed,
        **_percentiles(latencies),
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
        if self.protocol not in ("baton", "kserve"):
            raise BatonError(f"--protocol must be baton or kserve (got {self.protocol!r})")
        if self.protocol == "kserve" and not self.model_name:
            raise BatonError("--protocol kserve needs --model-name")
        if self.per_request < 1:
            raise BatonError("--texts-per-request must be >= 1")


async def _sweep(load: Load, options: BenchOptions) -> list[dict[str, Any]]:
    await _wait_ready(load.target, 5 if options.quick else 15)
    caller = _Caller(load.target, load.protocol, load.model_name, load.token)
    duration = 0.5 if options.quick else options.duration_s
    warmup = 0.2 if options.quick else options.warmup_s
    rows = []
    progress = _progress(len(load.concurrency) + len(load.rates), f"grpc {load.target}")
    try:
        for level in load.concurrency:
            before = _scrape(load.metrics_url)
            server_cpu = _cpu_of(load.server_pid) if load.server_pid else None
            row = await _closed_loop(caller, load.texts, load.per_request, level, duration, warmup, 30.0)
            row.update(_server_view(before, _scrape(load.metrics_url)))
            if load.server_pid:
                row["server_cpu_s"] = _cpu_of(load.server_pid) - (server_cpu or 0.0)
            rows.append({"mode": "closed", **row})
            progress.update(1)
        for rate in load.rates:
            before = _scrape(load.metrics_url)
            row = await _open_loop(caller, load.texts, load.per_request, rate, duration, 30.0)
            row.update(_server_view(before, _scrape(load.metrics_url)))
            rows.append({"mode": "open", **row})
            progress.update(1)
    finally:
        progress.close()
        await caller.channel.close()
    return rows


def _echo_ceiling(load: Load, options: BenchOptions) -> dict[str, Any]:
    """The same load against an echo server: the load generator's own ceiling (at the highest concurrency) and
    the gRPC round trip with no work behind it (one client), which bounds how close a server can get to
    in-process latency."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, "-m", "baton.serving.bench_echo", str(port_file)])
        try:
            deadline = time.time() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.time() > deadline or proc.poll() is not None:
                    raise BatonError("the echo server did not start")
                time.sleep(0.05)
            echo = replace(
                load,
                target=f"127.0.0.1:{port_file.read_text()}",
                concurrency=sorted({1, max(load.concurrency or [1])}),
                rates=(),
                model_name="echo",
                token=None,
                metrics_url=None,
                server_pid=proc.pid,
            )
            rows = asyncio.run(_sweep(echo, options))
            return {**rows[-1], "one_client_p50_ms": rows[0]["p50_ms"]}
        finally:
            proc.terminate()
            proc.wait(10)


def bench_grpc(load: Load, options: BenchOptions, echo: bool = True) -> dict[str, Any]:
    rows = asyncio.run(_sweep(load, options))
    result: dict[str, Any] = {"mode": "grpc", "target": load.target, "protocol": load.protocol, "results": rows}
    if echo:
        result["load_generator_ceiling"] = _echo_ceiling(load, options)
    return result


def _free_port() -> int:
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

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def started_server(bundle_dir: Path, serve_args: Sequence[str] = ()) -> Iterator[StartedServer]:
    """`baton serve BUNDLE` on free ports in a subprocess, until the block ends (then SIGTERM, if still running).

    Yields once the server has printed its banner, which it does after warm-up, when health is SERVING. Its stderr
    goes to a temporary file, not a pipe: a long run that logs must never block on a full pipe."""
    port, metrics_port = _free_port(), _free_port()
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
            yield StartedServer(cmd, f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", proc)
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def bench_serve(
    bundle_dir: Path,
    texts: list[str],
    concurrency: Sequence[int],
    per_request: int,
    protocol: str,
    options: BenchOptions,
    serve_args: Sequence[str] = (),
    echo: bool = True,
) -> dict[str, Any]:
    """Start `baton serve`, sweep the load, and measure the in-process ceiling before and after the sweep.

    The machine's speed drifts over minutes, so the ratio divides by the mean of the two ceilings, and both are kept.
    """
    from baton.serving.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    seconds = 0.5 if options.quick else max(2.0, options.duration_s / 3)
    before = inprocess_ceiling(bundle_dir, texts, None, seconds)
    with started_server(bundle_dir, serve_args) as server:
        load = Load(
            target=server.target,
            texts=texts,
            concurrency=concurrency,
            per_request=per_request,
            protocol=protocol,
            model_name=bundle.name,
            metrics_url=server.metrics_url,
            server_pid=server.pid,
        )
        grpc_result = bench_grpc(load, options, echo=echo)
        cmd = server.cmd
    after = inprocess_ceiling(bundle_dir, texts, None, seconds)
    mean = _mean_ceiling(before, after)
    best = max((r["texts_per_s"] for r in grpc_result["results"]), default=0.0)
    top = max(concurrency)
    at_top = next((r["texts_per_s"] for r in grpc_result["results"] if r["concurrency"] == top), 0.0)
    one = next((r for r in grpc_result["results"] if r["concurrency"] == 1), None)
    return {
        "mode": "serve",
        "bundle": str(bundle_dir),
        "bundle_sha256": bundle.checksum,
        "server_cmd": cmd,
        "grpc": grpc_result,
        "ceiling": mean,
        "ratio_best": best / mean["texts_per_s"] if mean["texts_per_s"] else None,
        f"ratio_at_{top}": at_top / mean["texts_per_s"] if mean["texts_per_s"] else None,
        "p50_1_client_minus_batch1_p50_ms": (one["p50_ms"] - mean["batch1_p50_ms"])
        if one and mean.get("batch1_p50_ms")
        else None,
    }


def ceiling_batch_sizes(ceiling: dict[str, Any]) -> str:
    """The best batch size of the ceiling, as "16" or, when the two measurements disagree, "16 / 32"."""
    return " / ".join(str(size) for size in dict.fromkeys(ceiling[k]["best_batch_size"] for k in ("before", "after")))


def _mean_ceiling(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One ceiling from the measurements before and after the load (both kept): the mean of the two."""

    def mean(key: str) -> float | None:
        values = [m[key] for m in (before, after) if m.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "variant": before["variant"],
        "best_batch_size": before["best_batch_size"],
        "texts_per_s": mean("texts_per_s"),
        "batch1_p50_ms": mean("batch1_p50_ms"),
        "before": before,
        "after": after,
    }


# ---- output ---------------------------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    mode = report["mode"]
    if mode == "inprocess":
        lines += [
            "| backend | batch | bucket | texts/s | p50 ms | p99 ms | tokenize texts/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["results"]:
            lines.append(
                f"| {r['backend']} | {r['batch_size']} | {r['bucket']} | {r['texts_per_s']:.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('tokenize_texts_per_s', float('nan')):.0f} |"
            )
        return "\n".join(lines)
    grpc_part = report["grpc"] if mode == "serve" else report
    lines += [
        "| load | texts/s | p50 ms | p99 ms | errors | mean batch | mean queue ms | client CPU s | server CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in grpc_part["results"]:
        load = f"{r['concurrency']} clients" if r["mode"] == "closed" else f"{r['rate']:.0f} req/s"
        mb = f"{r['mean_batch_size']:.1f}" if r.get("mean_batch_size") else "-"
        mq = f"{r['mean_queue_ms']:.2f}" if r.get("mean_queue_ms") is not None else "-"
        lines.append(
            f"| {load} | {r['texts_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{sum(r['errors'].values())} | {mb} | {mq} | {r['client_cpu_s']:.1f} | "
            f"{r.get('server_cpu_s', float('nan')):.1f} |"
        )
    echo = grpc_part.get("load_generator_ceiling")
    if echo:
        lines.append(
            f"\nload generator ceiling (echo server, {echo['concurrency']} clients): "
            f"{echo['texts_per_s']:.0f} texts/s, p50 {echo['p50_ms']:.2f} ms; "
            f"gRPC round trip with no work (echo, 1 client): p50 {echo['one_client_p50_ms']:.2f} ms"
        )
    if mode == "serve":
        c = report["ceiling"]
        lines.append(
            f"in-process ceiling ({c['variant']}, sorted batches of {ceiling_batch_sizes(c)}; mean of "
            f"{c['before']['texts_per_s']:.0f} before and {c['after']['texts_per_s']:.0f} after the load): "
            f"{c['texts_per_s']:.0f} texts/s; batch-1 p50 {c['batch1_p50_ms']:.2f} ms"
        )
        top = next(k for k in report if k.startswith("ratio_at_"))
        lines.append(
            f"server / ceiling: {report[top]:.2f} at {top.removeprefix('ratio_at_')} clients, "
            f"best {report['ratio_best']:.2f}"
        )
    return "\n".join(lines)


def _save_plot(plt: Any, fig: Any, ax: Any, labels: tuple[str, str, str], path: Path) -> Path:
    """Log-2 x axis, axis labels and title, legend; write the PNG and close the figure."""
    xlabel, ylabel, title = labels
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(report: dict[str, Any], out_prefix: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    def named(suffix: str) -> Path:
        return out_prefix.with_name(f"{out_prefix.name}_{suffix}.png")

    if report["mode"] == "inprocess":
        fig, ax = plt.subplots(figsize=(6, 4))
        for backend in sorted({r["backend"] for r in report["results"]}):
            rows = [r for r in report["results"] if r["backend"] == backend and r["bucket"] in ("all", "64tok")]
            rows = rows or [r for r in report["results"] if r["backend"] == backend]
            ax.plot([r["batch_size"] for r in rows], [r["p50_ms"] / r["batch_size"] for r in rows], "o-", label=backend)
        labels = ("batch size", "p50 ms per text", "in-process latency per text vs batch size")
        return [_save_plot(plt, fig, ax, labels, named("inprocess"))]
    grpc_part = report["grpc"] if report["mode"] == "serve" else report
    rows = [r for r in grpc_part["results"] if r["mode"] == "closed"]
    if not rows:
        return []
    levels = [r["concurrency"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        ax.plot(levels, [r[key] for r in rows], "o-", label=key.removesuffix("_ms"))
    latency = _save_plot(
        plt, fig, ax, ("concurrent clients", "latency (ms)", "gRPC latency vs concurrency"), named("latency")
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(levels, [r["texts_per_s"] for r in rows], "o-", label="server")
    if report["mode"] == "serve":
        ax.axhline(report["ceiling"]["texts_per_s"], color="gray", linestyle="--", label="in-process ceiling")
    throughput = _save_plot(
        plt, fig, ax, ("concurrent clients", "texts/s", "gRPC throughput vs concurrency"), named("throughput")
    )
    return [latency, throughput]


def save(report: dict[str, Any], output: Path | None, extra_env: dict[str, Any] | None = None) -> Path:
    if output is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output = Path("bench-results") / f"{report['mode']}-{stamp}.json"
    report = {"environment": environment(extra_env), **report}
    write_json_atomic(output, report)
    report["plots"] = [str(p) for p in plot(report, output.with_suffix(""))]
    write_json_atomic(output, report)
    return output


def check_counts(report: dict[str, Any]) -> None:
    """Every request sent is answered or counted as an error."""
    grpc_part = report.get("grpc", report)
    for r in grpc_part.get("results", []):
        if "requests_sent" in r and r["requests_sent"] != r["answered"] + sum(r["errors"].values()):
            lost = r["requests_sent"] - r["answered"] - sum(r["errors"].values())
            raise BatonError(
                f"load generator bug: at {r.get('concurrency', r.get('rate'))} the counts do not add up "
                f"({r['requests_sent']} sent, {r['answered']} answered, {sum(r['errors'].values())} errors: "
                f"{lost} unaccounted); the results were not saved"
            )

"""Typed configuration of `baton serve`."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from baton._config import choice
from baton.errors import ConfigError
from baton.serving.batcher import BatcherConfig
from baton.serving.repository.layout import is_bundle
from baton.serving.repository.policy import VersionPolicy
from baton.serving.repository.registry import ModelControl

__all__ = ["DEFAULT_HTTP_PORT", "DEFAULT_METRICS_PORT", "Device", "EventLoop", "ServeConfig"]

_CPU_MIN_BATCH_FILL = 0.9
SEND_LIMIT_FACTOR = 16


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class EventLoop(StrEnum):
    AUTO = "auto"  # uvloop when installed
    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


_DEFAULT_WORKER_NICE = 10 if sys.platform.startswith("linux") else 0


DEFAULT_METRICS_PORT = 9464  # OpenTelemetry's Prometheus exporter port
DEFAULT_HTTP_PORT = 8000  # Triton's and KServe's HTTP port; gRPC keeps 50051


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    bundle: str
    host: str = "127.0.0.1"  # loopback by default: exposing the server is an explicit choice
    port: int = 50051
    device: Device = Device.AUTO
    variant: str | None = None
    threads: int | None = None
    spin: bool = True  # onnxruntime intra-op spin-waiting: measured faster at 1 and 64 clients (docs/benchmarks.md)
    workers: int | None = None  # None: 2 on CPU with 2+ intra-op threads, else 1 (measured, docs/benchmarks.md)
    model_name: str | None = None  # a lone bundle's model name (a repository's models are named after their folders)
    # A model repository (serving/repository/): which versions serve, how models change at run time, the budget.
    version_policy: str = "latest"  # latest, latest:N, all, specific:N[,M...]
    model_control: ModelControl = ModelControl.NONE  # none, explicit (KServe repository calls), poll
    poll_s: float = 10.0  # poll: seconds between rescans of the repository
    max_models: int | None = None  # loaded model versions at most (None: no limit)
    # The HTTP front (serving/http/): OIP v2 REST, /v1 JSON routes, the page at /. On by default, on the same host as
    # gRPC; 0 picks a free port. Same batcher, limits, token and TLS as gRPC.
    http: bool = True
    http_port: int = DEFAULT_HTTP_PORT
    http_body_timeout_s: float = 10.0  # a request's head, and then its body, must arrive within this (408)
    http_keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    http_max_connections: int = 1000  # connections (and requests in flight) past this get 503
    # None: no metrics endpoint; 0: any free port. The default, when another process (a second server) holds it, falls
    # back to a free port with a warning; any other port in use is an error.
    metrics_port: int | None = DEFAULT_METRICS_PORT
    metrics_host: str = "127.0.0.1"
    max_batch_tokens: int = 8192
    max_batch_size: int = 8  # measured with 2 workers: 16 pads more and runs longer on one core (docs/benchmarks.md)
    max_queue_delay_ms: float = 0.0
    min_second_batch: int = 0  # texts waiting before a second batch runs beside one (serving/batcher.py)
    wide_batches: str = "idle"  # when a lone batch takes every intra-op thread (serving/batching.py, runs_wide)
    # A batch stops growing before its texts' own tokens fill less than this share of its padded tokens. None: 0.9
    # on CPU, where padding costs compute and two batches run at once (8/32 clients 1.2x/1.1x, docs/benchmarks.md),
    # 0 on CUDA, where a batch's fixed cost dominates and padding is nearly free.
    min_batch_fill: float | None = None
    # The inference workers' niceness. None: 10 on Linux (the event loop answers first; docs/benchmarks.md), else 0.
    worker_nice: int | None = None
    max_queue_items: int = 4096
    max_texts_per_request: int = 256
    max_request_tokens: int = BatcherConfig.max_request_tokens  # every window of every text (serving/batcher.py)
    max_text_chars: int = 20000
    # Sized from the limits above for the texts that matter: 256 texts of ~4 KiB (a 128-token window is well under
    # that). gRPC refuses a larger message before anything decodes it.
    max_message_bytes: int = 1024 * 1024
    # The largest answer the server sends (SEND_LIMIT_FACTOR x the largest request). A request whose answer could be
    # larger is refused with INVALID_ARGUMENT before any work (serving/tasks: `answer_bound`), rather than costing
    # the full inference and then failing with a status a client would retry (issue 29).
    # Streams one connection may hold open at the server (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); None: grpc's
    # default (no limit). A limit makes a client's excess calls wait on its own side, so a connection flooding the
    # server with doomed calls (1 ms deadlines) cannot fill grpc's pending-call queue, whose overload protection
    # cancels calls at random, bystanders included. It also caps a client that multiplexes many calls on one
    # channel (32 cost baton bench's 64-client channel 13-18 % of its throughput), so it is off by default:
    # docs/benchmarks.md, "Deadline storm".
    max_concurrent_streams: int | None = None
    # Calls grpc core may hold before the server's event loop takes them. grpc's own default starts cancelling new
    # calls at random past 1,000 (all past 3,000): a flood of calls with 1 ms deadlines filled that queue, and up to
    # 34 % of the calls of bystanders with 30 s deadlines came back CANCELLED; with 20,000 none did, same peak RSS
    # (calls that expire while queued are dropped inside grpc core without reaching Python). docs/benchmarks.md,
    # "Deadline storm".
    max_pending_calls: int = 20000
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    auth_token_file: str | None = None
    grace_s: float = 10.0
    warmup: bool = True
    event_loop: EventLoop = EventLoop.AUTO  # serving/run.py

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in [0, 65535] (got {self.port})")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"--http-port must be in [0, 65535] (got {self.http_port})")
        if self.http and self.port == self.http_port != 0:
            raise ConfigError(f"--http-port {self.http_port} is also --port: give HTTP and gRPC their own ports")
        for flag, value in (
            ("--http-body-timeout-s", self.http_body_timeout_s),
            ("--http-keep-alive-s", self.http_keep_alive_s),
        ):
            if not 0 < value <= 3600:
                raise ConfigError(f"{flag} must be in (0, 3600] (got {value})")
        if self.http_max_connections < 1:
            raise ConfigError(f"--http-max-connections must be >= 1 (got {self.http_max_connections})")
        object.__setattr__(self, "device", choice(Device, self.device, "--device"))
        object.__setattr__(self, "event_loop", choice(EventLoop, self.event_loop, "--event-loop"))
        object.__setattr__(self, "model_control", choice(ModelControl, self.model_control, "--model-control"))
        VersionPolicy.parse(self.version_policy)  # ConfigError naming --version-policy
        if not 0.1 <= self.poll_s <= 86400:
            raise ConfigError(f"--poll-s must be in [0.1, 86400] (got {self.poll_s})")
        if self.max_models is not None and self.max_models < 1:
            raise ConfigError(f"--max-models must be >= 1 (got {self.max_models})")
        if self.model_name is not None and Path(self.bundle).is_dir() and not is_bundle(Path(self.bundle)):
            raise ConfigError(
                "--model-name names a lone bundle's model; a repository's models take their folders' names"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("--tls-client-ca (mTLS) needs --tls-cert and --tls-key")
        for flag, path in (
            ("--tls-cert", self.tls_cert),
            ("--tls-key", self.tls_key),
            ("--tls-client-ca", self.tls_client_ca),
            ("--auth-token-file", self.auth_token_file),
        ):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{flag}: file not found: {path}")
        if self.max_texts_per_request < 1 or self.max_text_chars < 1 or self.max_message_bytes < 1024:
            raise ConfigError("request limits must be positive (max message size at least 1024 bytes)")
        if not 1 <= self.max_pending_calls <= 1_000_000:
            raise ConfigError(f"--max-pending-calls must be in [1, 1000000] (got {self.max_pending_calls})")
        if self.max_concurrent_streams is not None and self.max_concurrent_streams < 1:
            raise ConfigError(f"--max-concurrent-streams must be >= 1 (got {self.max_concurrent_streams})")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1 (got {self.workers})")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1 (got {self.threads})")
        if self.grace_s < 0:
            raise ConfigError("--grace-s must be >= 0")
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ConfigError("--event-loop uvloop: uvloop is not installed (pip install uvloop; not on Windows)")
        try:
            self.batcher_config("cpu")  # validates the batching flags
        except ValueError as exc:  # the batcher names its fields; the user typed flags
            message = str(exc)
            for name in dataclasses.fields(BatcherConfig):
                message = re.sub(rf"\b{name.name}\b", "--" + name.name.replace("_", "-"), message)
            raise ConfigError(message) from exc

    def batcher_config(self, provider: str) -> BatcherConfig:
        """The batching flags, with the defaults that depend on where the model runs ("cpu" or "cuda")."""
        fill = self.min_batch_fill
        if fill is None:
            fill = _CPU_MIN_BATCH_FILL if provider == "cpu" else 0.0
        return BatcherConfig(
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            max_queue_delay_ms=self.max_queue_delay_ms,
            min_second_batch=self.min_second_batch,
            wide_batches=self.wide_batches,
            min_batch_fill=fill,
            worker_nice=self.worker_nice if self.worker_nice is not None else _DEFAULT_WORKER_NICE,
            max_queue_items=self.max_queue_items,
            max_request_tokens=self.max_request_tokens,
        )

    @property
    def max_answer_bytes(self) -> int:
        return SEND_LIMIT_FACTOR * self.max_message_bytes

    def auth_token(self) -> str | None:
        if self.auth_token_file is None:
            return None
        token = Path(self.auth_token_file).read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigError(f"--auth-token-file: {self.auth_token_file} is empty")
        return token

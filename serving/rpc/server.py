"""`baton serve`'s server: its life cycle (start, ready, drain, stop, crash) and admission (limits, deadlines, the
model's batcher), with the services registered from their own modules: both domain services, KServe v2 (with the
repository extension), health and reflection, and the HTTP front. The models come from the repository
(serving/repository/). Each servicer sees the server through `ServerView` (common.py)."""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from baton.errors import EXIT_WORKER_CRASHED, ConfigError, InputError, InvalidRequest, RequestFailed
from baton.serving.batcher import EngineLike, ItemResult, RequestState
from baton.serving.bundle import Bundle, load_bundle
from baton.serving.config import DEFAULT_METRICS_PORT, ServeConfig
from baton.serving.engine import build_engine, default_threads, default_workers
from baton.serving.http import HttpFront
from baton.serving.long_text import LongTextSpec
from baton.serving.metrics import ServerMetrics
from baton.serving.repository import Model, ModelControl, Repository, VersionPolicy
from baton.serving.rpc import classifier, kserve, recognizer
from baton.serving.rpc import health as rpc_health
from baton.serving.rpc.common import grpc_code
from baton.serving.rpc.guards import Checks
from baton.serving.rpc.security import AuthInterceptor, credentials, open_to_anyone
from baton.serving.rpc.wire import Malformed
from baton.task import Task

__all__ = ["BatonServer"]

logger = logging.getLogger(__name__)

# The domain service of each task; a server answers its bundle's, and the others answer FAILED_PRECONDITION.
_DOMAIN = {module.TASK: module for module in (classifier, recognizer)}
# A call with less time left than this cannot be answered: refused before any work (no tokenizing, no queueing).
_MIN_REMAINING_S = 0.001
# Stopping. grpc core cancels (CANCELLED) every call it holds that the event loop has not picked up yet, and grpc.aio
# picks them up one at a time, so a busy loop can hold accepted calls there when a stop begins. Before core shuts
# down, the server therefore keeps taking calls (health already says NOT_SERVING) until none has arrived for
# _QUIET_S, and for at most _MAX_SETTLE_S or half the grace period, whichever is shorter.
_QUIET_S = 0.1
_MAX_SETTLE_S = 2.0


class BatonServer:
    """A model repository (or one bundle) served over gRPC and HTTP. `engine` (with `bundle`) may be injected for a
    lone bundle: tests fake the engine seam."""

    def __init__(self, config: ServeConfig, engine: EngineLike | None = None, bundle: Bundle | None = None) -> None:
        self.config = config
        self._injected: tuple[EngineLike | None, Bundle | None] = (engine, bundle)
        self.metrics = ServerMetrics()
        self.repository = Repository(
            Path(config.bundle),
            self._build,
            name=config.model_name,
            policy=VersionPolicy.parse(config.version_policy),
            control=config.model_control,
            max_models=config.max_models,
            warmup=config.warmup,
            grace_s=config.grace_s,
        )
        self.health = rpc_health.Health()
        self.exit_code = 0
        self.port = 0
        self.metrics_port: int | None = None
        self.http_port: int | None = None
        self._http: HttpFront | None = HttpFront(config, self, self.metrics) if config.http else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self._ready = False
        self.draining = asyncio.Event()  # set on stop: streams finish what they accepted and take nothing new
        self._tasks: set[asyncio.Future[Any]] = set()  # background tasks, kept until done
        self._last_arrival = 0.0  # time.monotonic() of the latest call into the shared request path
        self._cut_off = 0  # accepted calls cancelled while draining

    def _build(self, name: str, version: int, path: Path) -> Model:
        """Load one version (in a worker thread): verify the bundle, open its sessions, give it its batcher."""
        cfg = self.config
        engine, bundle = self._injected
        self._injected = (None, None)  # an injected engine serves the lone bundle once
        bundle = bundle or load_bundle(path)
        if engine is None:
            threads = default_threads(cfg.threads)
            workers = default_workers(threads, cfg.workers)
            # No tokenizer thread pool: a server's cores run inference (serving/encoder.py, `encode_all`).
            engine = build_engine(bundle, cfg.device, cfg.variant, threads, workers, cfg.spin, tokenizer_pool=False)
        provider = getattr(engine, "provider", "cpu")
        model = Model(
            name,
            version,
            path,
            bundle,
            engine,
            cfg.batcher_config(provider),
            self.metrics,
            self._crash_from_worker,
        )
        self.metrics.model.labels(model.name, str(version), model.variant, provider, bundle.checksum).set(1)
        return model

    def resolve(self, name: str | None, version: str | None = None, task: Task | None = None) -> Model:
        """The model version a call goes to (serving/repository/registry.py: routing)."""
        return self.repository.resolve(name, version, task)

    async def load_model(self, name: str) -> None:
        await self.repository.load(name)
        await self._refresh_health()

    async def unload_model(self, name: str) -> None:
        await self.repository.unload(name)
        await self._refresh_health()

    async def _refresh_health(self) -> None:
        """SERVING per service while a model answers it; the whole server while any model serves."""
        if not self._ready:
            return
        tasks = {m.task for m in self.repository.serving()}
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for task, module in _DOMAIN.items():
            await self.health.set(module.SERVICE, serving if task in tasks else not_serving)
        await self.health.set(kserve.SERVICE, serving if tasks else not_serving)
        await self.health.set("", serving if tasks else not_serving)

    async def _poll(self) -> None:
        while not self.draining.is_set():
            await asyncio.sleep(self.config.poll_s)
            if self.draining.is_set():
                return
            try:
                await self.repository.poll()
                await self._refresh_health()
            except Exception:  # a poll round never takes the server down
                logger.exception("model repository poll failed")

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> int:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        interceptors = []
        token = cfg.auth_token()
        if token:
            interceptors.append(AuthInterceptor(token))
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_answer_bytes),
            ("grpc.so_reuseport", 0),
            # Past this many calls waiting for the event loop, grpc core refuses new ones (no random early drop).
            ("grpc.server.max_pending_requests", cfg.max_pending_calls),
            ("grpc.server.max_pending_requests_hard_limit", cfg.max_pending_calls),
        ]
        if cfg.max_concurrent_streams is not None:
            options.append(("grpc.max_concurrent_streams", cfg.max_concurrent_streams))
        server = grpc.aio.server(interceptors=interceptors, options=options)
        checks = Checks(cfg.max_texts_per_request)  # elements counted on the wire before decoding
        for module in (*_DOMAIN.values(), kserve):
            module.register(self, server, checks)
        rpc_health.register(self.health, server, checks)
        # A domain service with no model of its task answers FAILED_PRECONDITION naming the call that answers.
        domain = tuple(m.SERVICE for m in _DOMAIN.values())
        services = (*domain, kserve.SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(services, server)
        try:
            self._bind(server)  # the ports first: one in use fails the start before any model loads
            for service in (*services[:3], ""):
                await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
            await self.repository.start()  # every model loaded, verified and warm before SERVING
        except BaseException:  # every port that was bound is released, every model that loaded is closed
            await server.stop(None)
            if self._http is not None:
                self._http.close()
            await self.repository.stop(0)
            self.metrics.close()
            raise
        await server.start()
        self._server = server
        if self._http is not None:
            await self._http.start()
        self._ready = True
        await self._refresh_health()
        if self.repository.control is ModelControl.POLL:
            self.spawn(self._poll())
        if open_to_anyone(cfg):
            logger.warning(
                "listening on %s with no --auth-token-file and no --tls-client-ca: anyone who reaches port %d can "
                "call this model",
                cfg.host,
                self.port,
            )
        logger.info(
            "serving %s on %s: gRPC %d, HTTP %s, metrics %s",
            ", ".join(f"{m.name} v{m.version}" for m in self.repository.serving()),
            cfg.host,
            self.port,
            self.http_port,
            self.metrics_port,
        )
        return self.port

    def _bind(self, server: grpc.aio.Server) -> None:
        """Bind the gRPC and metrics ports; a port in use or unusable TLS files are one ConfigError naming the flag."""
        cfg = self.config
        address = f"{cfg.host}:{cfg.port}"
        tls = credentials(cfg)
        try:
            if tls is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, tls)
        except RuntimeError:  # grpc: "Failed to bind to address ..." (other versions return port 0)
            self.port = 0
        if self.port == 0:
            raise ConfigError(f"--port: cannot bind {address} (in use, or not an address of this host)")
        if self._http is not None:
            self.http_port = self._http.bind()
        if cfg.metrics_port is not None:
            self.metrics_port = self._bind_metrics(cfg.metrics_host, cfg.metrics_port)

    def _bind_metrics(self, host: str, port: int) -> int:
        try:
            return self.metrics.serve_http(host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port != DEFAULT_METRICS_PORT:
                raise ConfigError(f"--metrics-port: cannot bind {host}:{port} ({exc.strerror or exc})") from exc
        bound = self.metrics.serve_http(host, 0)  # a second server on this machine: any free port, said loudly
        logger.warning(
            "metrics: port %d is in use (another server?), serving them on %d; --metrics-port sets it", port, bound
        )
        return bound

    async def stop(self, grace: float | None = None, settle: bool = True) -> None:
        """Health NOT_SERVING at once; take calls until they stop arriving (`settle`, see _QUIET_S); then refuse new
        RPCs, finish accepted ones within what is left of `grace`, and stop the workers."""
        if self._server is None:
            return
        if self.draining.is_set():  # a stop is already under way
            await self._stopped.wait()
            return
        grace = self.config.grace_s if grace is None else grace
        self._ready = False
        self.draining.set()
        await self.health.enter_graceful_shutdown()
        if settle:
            grace -= await self._settle(min(_MAX_SETTLE_S, grace / 2))
        fronts = [self._server.stop(grace)]
        if self._http is not None:
            fronts.append(self._http.stop(grace))
        await asyncio.gather(*fronts)
        if self._cut_off:
            logger.warning(
                "%d accepted call(s) cancelled while draining: the grace period ended, or their clients gave up",
                self._cut_off,
            )
        await self.repository.stop(min(grace, 5.0))  # every version finishes what it took, then its workers stop
        self.metrics.close()
        self._server = None
        self._stopped.set()

    async def _settle(self, limit: float) -> float:
        """Wait until no call has arrived for _QUIET_S since the stop began, or `limit` seconds; the seconds taken."""
        started = time.monotonic()
        while True:
            now = time.monotonic()
            until = min(max(self._last_arrival, started) + _QUIET_S, started + limit)
            if now >= until:
                return now - started
            await asyncio.sleep(until - now)

    async def wait(self) -> int:
        await self._stopped.wait()
        return self.exit_code

    def spawn(self, coro: Any) -> asyncio.Future[Any]:
        """Start a background task and keep it until it ends (an unreferenced task can vanish mid-way)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _crash_from_worker(self, exc: BaseException) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self.spawn(self._on_crash(exc)))

    async def _on_crash(self, exc: BaseException) -> None:
        logger.error("inference worker crashed (%r): NOT_SERVING, shutting down", exc)
        self.exit_code = EXIT_WORKER_CRASHED
        await self.stop(grace=1.0, settle=False)  # the workers are gone: nothing more can be answered

    @property
    def ready(self) -> bool:
        return self._ready

    # ---- the shared request path ---------------------------------------------------------------------------
    def _check_texts(self, model: Model, texts: list[str], pairs: list[str] | None) -> None:
        cfg = self.config
        if len(texts) > cfg.max_texts_per_request:
            raise InvalidRequest(f"{len(texts)} texts in one request; the limit is {cfg.max_texts_per_request}")
        if texts:  # an empty request gets an empty answer, whatever the model takes
            try:
                model.bundle.manifest.check_inputs(len(texts), None if pairs is None else len(pairs))
            except InputError as exc:
                raise InvalidRequest(str(exc)) from exc
        for field, values in (("texts", texts), ("text_pairs", pairs or [])):
            for i, text in enumerate(values):
                if len(text) > cfg.max_text_chars:
                    raise InvalidRequest(f"{field}[{i}] has {len(text)} characters; the limit is {cfg.max_text_chars}")
        chars = sum(map(len, texts))
        bound = model.answer_bound(len(texts), chars, model.bundle.labels)
        if bound > cfg.max_answer_bytes:
            raise InvalidRequest(
                f"{len(texts)} texts of {chars} characters could need an answer of {bound / 2**20:.1f} MiB; this "
                f"server sends at most {cfg.max_answer_bytes / 2**20:.0f} MiB: send fewer or shorter texts per request"
            )

    async def classify(
        self,
        model: Model,
        texts: list[str],
        pairs: list[str] | None,
        remaining: float | None,
        method: str,
        long_text: LongTextSpec | None = None,
    ) -> list[ItemResult]:
        """The texts' results through `model`'s batcher, for any front: `remaining` is the caller's time left in
        seconds (None: no deadline), `method` its name in the metrics, `long_text` the request's rule for texts
        past the window (None: the bundle's)."""
        started = time.perf_counter()
        self._last_arrival = time.monotonic()
        if model.closed:  # resolved just before a swap took it out of routing: the version now serving answers
            model = self.resolve(model.name)
        model.enter()  # before any await: a version being retired waits for this call
        code = grpc.StatusCode.OK
        try:
            if remaining is not None and remaining <= _MIN_REMAINING_S:
                # The client gives up before any answer could reach it: end the call quietly, no work, no send.
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                raise asyncio.CancelledError
            self._check_texts(model, texts, pairs)
            state = RequestState(deadline=None if remaining is None else time.monotonic() + remaining)
            results = await model.batcher.submit(texts, state, pairs, long_text)
            for r in results:
                self.metrics.queue_s.observe(r.queue_s)
                self.metrics.tokenize_s.observe(r.tokenize_s)
            return results
        except (RequestFailed, InputError) as exc:
            code = grpc_code(exc)
            raise
        except asyncio.CancelledError:
            if code is grpc.StatusCode.OK:
                code = grpc.StatusCode.CANCELLED
                self._cut_off += self.draining.is_set()
            raise
        finally:
            model.leave()
            name, version = code.name, str(model.version)
            self.metrics.requests.labels(method, name, model.name, version).inc()
            self.metrics.items.labels(method, name, model.name, version).inc(len(texts))
            self.metrics.total_s.labels(method, model.name).observe(time.perf_counter() - started)

    def refuse_malformed(self, method: str, request: Any) -> None:
        if isinstance(request, Malformed):
            self.metrics.requests.labels(method, grpc.StatusCode.INVALID_ARGUMENT.name, "", "").inc()
            raise InvalidRequest(request.reason)

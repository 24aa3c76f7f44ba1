"""`baton serve`: the gRPC server (domain API, KServe v2, health, reflection, metrics, auth, TLS, shutdown)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from baton.errors import ConfigError, InputError
from baton.serving._rpc import RpcFailure, abort, model_info, serve_stream, serve_unary, timings, wrong_task
from baton.serving.batcher import (
    Batcher,
    BatcherError,
    BatchFailed,
    Cancelled,
    DeadlineExceeded,
    EngineLike,
    ItemResult,
    Overloaded,
    RequestState,
    RequestTooLarge,
    ShuttingDown,
    WorkerCrashed,
)
from baton.serving.bundle import Bundle, load_bundle
from baton.serving.config import ServeConfig
from baton.serving.engine import build_engine, default_threads, default_workers
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.kserve_codec import decode_bytes_raw, encode_bytes_raw, encode_fp32_raw
from baton.serving.metrics import ServerMetrics
from baton.serving.recognizer_service import Recognizer, kserve_entities
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
from baton.serving.v1 import recognizer_pb2 as rpb
from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc
from baton.serving.wire import Malformed, TooManyElements, count_fields, guarded_handler

__all__ = ["EXIT_WORKER_CRASHED", "BatonServer"]

logger = logging.getLogger(__name__)

EXIT_WORKER_CRASHED = 3
_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_ERROR_CODES: dict[type[BatcherError], grpc.StatusCode] = {
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Cancelled: grpc.StatusCode.CANCELLED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    WorkerCrashed: grpc.StatusCode.INTERNAL,
    BatchFailed: grpc.StatusCode.INTERNAL,
    RequestTooLarge: grpc.StatusCode.INVALID_ARGUMENT,
}
# A call with less time left than this cannot be answered: refused before any work (no tokenizing, no queueing).
_MIN_REMAINING_S = 0.001
# Fields a KServe request may hold at its top level and per input tensor (besides the texts themselves).
_KSERVE_FIELDS = 64


def _discard(data: bytes) -> None:
    return None


class _Capture:
    """Stands in for a server to catch the method handlers a generated `add_*_to_server` registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, handlers


def _add_guarded(
    add: Callable[[Any, Any], None],
    servicer: Any,
    server: grpc.aio.Server,
    checks: Mapping[str, Callable[[bytes], None]],
) -> None:
    """Register a generated service with every request deserializer bounded (serving/wire.py)."""
    capture = _Capture()
    add(servicer, capture)
    handlers = {name: guarded_handler(h, checks.get(name)) for name, h in capture.handlers.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)


def _check_tls(cfg: ServeConfig) -> None:
    """Load the PEM files the way a TLS stack would, so a bad key or cert is named (gRPC says only "Failed to bind")."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"--tls-cert {cfg.tls_cert} / --tls-key {cfg.tls_key}: not a usable pair ({exc})") from exc
    if cfg.tls_client_ca:
        try:
            context.load_verify_locations(cafile=str(cfg.tls_client_ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"--tls-client-ca {cfg.tls_client_ca}: not a PEM certificate ({exc})") from exc


class _AuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <token>` (compared in constant time); health and reflection are exempt."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        given = metadata.get("authorization", "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return handler
        message = "missing bearer token" if not given else "invalid bearer token"

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, message)

        async def deny_stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, message)

        # The refused call's message is never decoded: an unauthenticated client cannot make the server parse 4 MB.
        kwargs = {"request_deserializer": _discard, "response_serializer": handler.response_serializer}
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny_stream, **kwargs)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny_stream, **kwargs)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny, **kwargs)
        return grpc.unary_unary_rpc_method_handler(deny, **kwargs)


class BatonServer:
    """One bundle served over gRPC. `engine` may be injected (tests fake the engine seam)."""

    def __init__(self, config: ServeConfig, engine: EngineLike | None = None, bundle: Bundle | None = None) -> None:
        self.config = config
        self.bundle = bundle or load_bundle(config.bundle)
        if engine is None:
            threads = default_threads(config.threads)
            workers = default_workers(threads, config.workers)
            # No tokenizer thread pool: a server's cores run inference (serving/encoder.py, `encode_all`).
            engine = build_engine(
                self.bundle, config.device, config.variant, threads, workers, config.spin, tokenizer_pool=False
            )
        self.engine = engine
        self.variant = getattr(engine, "variant", "?")
        self.provider = getattr(engine, "provider", "cpu")
        self.model_name = config.model_name or self.bundle.name
        self.task = self.bundle.manifest.task
        self.metrics = ServerMetrics()
        self.metrics.model.labels(self.model_name, self.variant, self.provider, self.bundle.checksum).set(1)
        batching = config.batcher_config(self.provider)
        self.batcher = Batcher(engine, batching, observer=self.metrics, on_crash=self._crash_from_worker)
        self.health = health.aio.HealthServicer()
        self.exit_code = 0
        self.port = 0
        self.metrics_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self._ready = False
        self.draining = asyncio.Event()  # set on stop: streams finish what they accepted and take nothing new
        self._tasks: set[asyncio.Future[Any]] = set()  # background tasks, kept until done

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> int:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        interceptors = []
        token = cfg.auth_token()
        if token:
            interceptors.append(_AuthInterceptor(token))
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Past this many calls waiting for the event loop, grpc core refuses new ones (no random early drop).
            ("grpc.server.max_pending_requests", cfg.max_pending_calls),
            ("grpc.server.max_pending_requests_hard_limit", cfg.max_pending_calls),
        ]
        if cfg.max_concurrent_streams is not None:
            options.append(("grpc.max_concurrent_streams", cfg.max_concurrent_streams))
        server = grpc.aio.server(interceptors=interceptors, options=options)
        # Count elements on the wire before decoding (texts, pairs and a few scalars per Classify message).
        max_fields = 2 * cfg.max_texts_per_request + 8

        def classify_check(data: bytes) -> None:
            try:
                count_fields(data, max_fields)
            except TooManyElements:
                raise TooManyElements(f"the limit is {cfg.max_texts_per_request} texts per request") from None

        def infer_check(data: bytes) -> None:
            tensor: tuple[int, dict[int, Any]] = (_KSERVE_FIELDS, {5: (max_fields, {})})  # contents: the texts
            count_fields(data, _KSERVE_FIELDS, {5: tensor})

        classify_checks = {"Classify": classify_check, "ClassifyStream": classify_check}
        _add_guarded(pb_grpc.add_TextClassifierServicer_to_server, _Classifier(self), server, classify_checks)
        recognize_checks = {"Recognize": classify_check, "RecognizeStream": classify_check}
        _add_guarded(rpb_grpc.add_EntityRecognizerServicer_to_server, Recognizer(self), server, recognize_checks)
        kserve_checks = {"ModelInfer": infer_check}
        _add_guarded(kpb_grpc.add_GRPCInferenceServiceServicer_to_server, _KServe(self), server, kserve_checks)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        domain = (
            pb.DESCRIPTOR.services_by_name["TextClassifier"].full_name
            if self.task == "text-classification"
            else rpb.DESCRIPTOR.services_by_name["EntityRecognizer"].full_name
        )
        services = (
            domain,
            kpb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
            # the other task's service answers FAILED_PRECONDITION naming this one; listed for reflection too
            pb.DESCRIPTOR.services_by_name["TextClassifier"].full_name
            if self.task != "text-classification"
            else rpb.DESCRIPTOR.services_by_name["EntityRecognizer"].full_name,
        )
        reflection.enable_server_reflection(services, server)
        try:
            self._bind(server)
        except BaseException:
            await server.stop(None)  # a port that was bound is released
            self.metrics.close()
            raise
        for service in (*services[:2], ""):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.batcher.start()
        await server.start()
        self._server = server
        if cfg.warmup:
            texts = ["warm-up", "a longer warm-up text " * 8]
            await self.batcher.submit(texts, pairs=texts[::-1] if self.bundle.manifest.pairs else None)
        for service in (*services[:2], ""):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._ready = True
        logger.info("serving %s on %s:%d (metrics port %s)", self.model_name, cfg.host, self.port, self.metrics_port)
        return self.port

    def _bind(self, server: grpc.aio.Server) -> None:
        """Bind the gRPC and metrics ports; a port in use or unusable TLS files are one ConfigError naming the flag."""
        cfg = self.config
        address = f"{cfg.host}:{cfg.port}"
        if cfg.tls_cert and cfg.tls_key:
            _check_tls(cfg)
            client_ca = Path(cfg.tls_client_ca).read_bytes() if cfg.tls_client_ca else None
            credentials = grpc.ssl_server_credentials(
                [(Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes())],
                root_certificates=client_ca,
                require_client_auth=client_ca is not None,
            )
        else:
            credentials = None
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError:  # grpc: "Failed to bind to address ..." (other versions return port 0)
            self.port = 0
        if self.port == 0:
            raise ConfigError(f"--port: cannot bind {address} (in use, or not an address of this host)")
        if cfg.metrics_port is not None:
            try:
                self.metrics_port = self.metrics.serve_http(cfg.metrics_host, cfg.metrics_port)
            except OSError as exc:
                raise ConfigError(
                    f"--metrics-port: cannot bind {cfg.metrics_host}:{cfg.metrics_port} ({exc.strerror or exc})"
                ) from exc

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING at once, refuse new RPCs, finish accepted ones within `grace`, stop workers."""
        if self._server is None:
            return
        self._ready = False
        self.draining.set()
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self.config.grace_s if grace is None else grace)
        await asyncio.get_running_loop().run_in_executor(None, self.batcher.stop, 5.0)
        self.metrics.close()
        self._server = None
        self._stopped.set()

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
        self._ready = False
        await self.health.enter_graceful_shutdown()
        await self.stop(grace=1.0)

    @property
    def ready(self) -> bool:
        return self._ready

    # ---- the shared request path ---------------------------------------------------------------------------
    def _check_texts(self, texts: list[str], pairs: list[str] | None) -> None:
        cfg = self.config
        if len(texts) > cfg.max_texts_per_request:
            raise RpcFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(texts)} texts in one request; the limit is {cfg.max_texts_per_request}",
            )
        if texts:  # an empty request gets an empty answer, whatever the model takes
            try:
                self.bundle.manifest.check_inputs(len(texts), None if pairs is None else len(pairs))
            except InputError as exc:
                raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        for field, values in (("texts", texts), ("text_pairs", pairs or [])):
            for i, text in enumerate(values):
                if len(text) > cfg.max_text_chars:
                    raise RpcFailure(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{field}[{i}] has {len(text)} characters; the limit is {cfg.max_text_chars}",
                    )

    async def classify(
        self, texts: list[str], pairs: list[str] | None, context: grpc.aio.ServicerContext, method: str
    ) -> list[ItemResult]:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= _MIN_REMAINING_S:
                # The client gives up before any answer could reach it: end the call quietly, no work, no send.
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                raise asyncio.CancelledError
            self._check_texts(texts, pairs)
            state = RequestState(deadline=None if remaining is None else time.monotonic() + remaining)
            try:
                results = await self.batcher.submit(texts, state, pairs)
            except BatcherError as exc:
                raise RpcFailure(_ERROR_CODES.get(type(exc), grpc.StatusCode.INTERNAL), str(exc)) from exc
            for r in results:
                self.metrics.queue_s.observe(r.queue_s)
                self.metrics.tokenize_s.observe(r.tokenize_s)
            return results
        except RpcFailure as failure:
            code = failure.code
            raise
        except asyncio.CancelledError:
            if code is grpc.StatusCode.OK:
                code = grpc.StatusCode.CANCELLED
            raise
        finally:
            name = code.name
            self.metrics.requests.labels(method, name).inc()
            self.metrics.items.labels(method, name).inc(len(texts))
            self.metrics.total_s.labels(method).observe(time.perf_counter() - started)

    def refuse_malformed(self, method: str, request: Any) -> None:
        if isinstance(request, Malformed):
            self.metrics.requests.labels(method, grpc.StatusCode.INVALID_ARGUMENT.name).inc()
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, request.reason)


class _Classifier(pb_grpc.TextClassifierServicer):
    def __init__(self, server: BatonServer) -> None:
        self.s = server

    async def _answer(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> pb.ClassifyResponse:
        started = time.perf_counter()
        self.s.refuse_malformed(method, request)
        if self.s.task != "text-classification":
            raise wrong_task(self.s.task, "text-classification", "EntityRecognizer.Recognize")
        pairs = list(request.text_pairs) if request.text_pairs else None
        results = await self.s.classify(list(request.texts), pairs, context, method)
        k = request.top_k if request.HasField("top_k") and request.top_k > 0 else None
        out = []
        for r in results:
            p = r.prediction
            top = p.top_k[:k] if k else p.top_k
            out.append(
                pb.Classification(
                    label=p.label,
                    score=p.score,
                    truncated=p.truncated,
                    top_k=[pb.LabelScore(label=label, score=score) for label, score in top],
                    logits=r.logits.tolist() if request.raw_scores else [],
                    labels=p.labels or [],
                )
            )
        return pb.ClassifyResponse(results=out, timings=timings(results, started))

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ClassifyResponse:
        return await serve_unary(self._answer, request, context, "Classify")  # type: ignore[no-any-return]

    async def ClassifyStream(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ClassifyResponse]:
        async for response in serve_stream(self.s, request_iterator, context, self._answer, "ClassifyStream"):
            yield response

    async def GetModelInfo(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ModelInfo:
        return model_info(self.s)


class _KServe(kpb_grpc.GRPCInferenceServiceServicer):
    """The Open Inference Protocol. Inputs: `text` BYTES [N] (and `text_pair` BYTES [N] for a pair model), as
    `contents.bytes_contents` or `raw_input_contents` — one or the other, never both."""

    def __init__(self, server: BatonServer) -> None:
        self.s = server

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerLiveResponse:
        return kpb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerReadyResponse:
        return kpb.ServerReadyResponse(ready=self.s.ready)

    async def _check_model(self, name: str, context: grpc.aio.ServicerContext) -> None:
        if name != self.s.model_name:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"unknown model '{name[:200]}'; this server serves '{self.s.model_name}'",
            )

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        await self._check_model(request.name, context)
        return kpb.ModelReadyResponse(ready=self.s.ready)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerMetadataResponse:
        from baton import __version__

        return kpb.ServerMetadataResponse(name="baton", version=__version__, extensions=[])

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        await self._check_model(request.name, context)
        tm = kpb.ModelMetadataResponse.TensorMetadata
        n_labels = len(self.s.bundle.labels)
        outputs = (
            [tm(name="entities", datatype="BYTES", shape=[-1])]
            if self.s.task == "token-classification"
            else [
                tm(name="label", datatype="BYTES", shape=[-1]),
                tm(name="score", datatype="FP32", shape=[-1]),
                tm(name="scores", datatype="FP32", shape=[-1, n_labels]),
            ]
        )
        return kpb.ModelMetadataResponse(
            name=self.s.model_name,
            versions=["1"],
            platform=f"onnxruntime_{self.s.variant}",
            inputs=[tm(name=name, datatype="BYTES", shape=[-1]) for name in self.s.bundle.manifest.inputs],
            outputs=outputs,
        )

    def _inputs(self, request: Any) -> tuple[list[str], list[str] | None]:
        def bad(message: str) -> RpcFailure:
            return RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, message)

        declared = self.s.bundle.manifest.inputs
        names = [t.name for t in request.inputs]
        if sorted(names) != sorted(declared):
            raise bad(f"inputs must be {' and '.join(declared)} (BYTES, shape [N]); got {names[:8]}")
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise bad(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
        limit = self.s.config.max_texts_per_request
        columns: dict[str, list[str]] = {}
        for i, tensor in enumerate(request.inputs):
            if tensor.datatype != "BYTES":
                raise bad(f"input '{tensor.name}' must be of datatype BYTES (got {tensor.datatype[:20]})")
            shape = list(tensor.shape)
            if len(shape) != 1 or shape[0] < 0:
                raise bad(f"input '{tensor.name}' must have shape [N] with N >= 0 (got {shape[:8]})")
            if raw and tensor.HasField("contents"):
                raise bad(f"input '{tensor.name}' has both contents and raw_input_contents: send one")
            try:
                elements = decode_bytes_raw(raw[i], limit + 1) if raw else list(tensor.contents.bytes_contents)
                texts = [element.decode("utf-8") for element in elements]
            except (ValueError, UnicodeDecodeError) as exc:
                raise bad(f"input '{tensor.name}': {exc}") from exc
            if len(texts) > limit:
                raise bad(f"input '{tensor.name}' holds more than {limit} texts; the limit is {limit}")
            if shape[0] != len(texts):
                raise bad(f"input '{tensor.name}' has shape {shape} but {len(texts)} elements")
            columns[tensor.name] = texts
        return columns["text"], columns.get("text_pair")

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            self.s.refuse_malformed("ModelInfer", request)
            await self._check_model(request.model_name, context)
            known = ("entities",) if self.s.task == "token-classification" else ("label", "score", "scores")
            wanted = [o.name for o in request.outputs] or list(known)
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output(s): {', '.join(unknown[:8])}")
            texts, pairs = self._inputs(request)
            results = await self.s.classify(texts, pairs, context, "ModelInfer")
        except RpcFailure as failure:
            await abort(context, failure.code, str(failure))
            raise  # unreachable: abort raises
        import numpy as np

        n = len(results)
        response = kpb.ModelInferResponse(model_name=self.s.model_name, model_version="1", id=request.id)
        out_tensor = kpb.ModelInferResponse.InferOutputTensor
        if self.s.task == "token-classification":
            response.outputs.append(out_tensor(name="entities", datatype="BYTES", shape=[n]))
            response.raw_output_contents.append(encode_bytes_raw(kserve_entities(results)))
            return response
        labels = self.s.bundle.labels
        probs = np.asarray([[r.prediction.scores[label] for label in labels] for r in results], dtype=np.float32)
        for name in wanted:
            if name == "label":
                response.outputs.append(out_tensor(name="label", datatype="BYTES", shape=[n]))
                response.raw_output_contents.append(encode_bytes_raw([r.prediction.label.encode() for r in results]))
            elif name == "score":
                response.outputs.append(out_tensor(name="score", datatype="FP32", shape=[n]))
                response.raw_output_contents.append(encode_fp32_raw(np.asarray([r.prediction.score for r in results])))
            else:
                response.outputs.append(out_tensor(name="scores", datatype="FP32", shape=[n, len(labels)]))
                response.raw_output_contents.append(encode_fp32_raw(probs.reshape(n, len(labels))))
        return response

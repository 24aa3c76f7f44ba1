"""Python clients for `baton serve`. A failed call raises the `RequestFailed` of baton/errors.py for the status it
received; `.code` is the grpc.StatusCode, and the message keeps the server's own words after the status name.

    InvalidRequest     INVALID_ARGUMENT, OUT_OF_RANGE (fix the request; retrying never helps)
    Unauthenticated    UNAUTHENTICATED, PERMISSION_DENIED
    NotFound           NOT_FOUND (no such model)
    WrongTask          FAILED_PRECONDITION (the model is of another task: the message names the call)
    Overloaded         RESOURCE_EXHAUSTED (queue full: retry with backoff)
    Cancelled          CANCELLED
    DeadlineExceeded   DEADLINE_EXCEEDED
    Unavailable        UNAVAILABLE (server down, unreachable, or shutting down)
    InternalError      INTERNAL and anything else

Retries. Inference is idempotent, so `Classify` and `Recognize` are retried (gRPC's own retry policy, `retries`
more attempts with backoff from 0.1 s to 1 s) when the server answered UNAVAILABLE or CANCELLED without starting an
answer: a server that is down or stopping, a call that grpc core dropped as the server shut down, or one cut off at
the end of a grace period. Nothing else is retried; `retries=0` turns it off (benchmarks do).

The names of the first release stay one release as aliases: `ClientError` (RequestFailed), `InvalidInput`
(InvalidRequest), `Timeout` (DeadlineExceeded), `ServerError` (InternalError).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from baton.errors import (
    Cancelled,
    DeadlineExceeded,
    InternalError,
    InvalidRequest,
    NotFound,
    Overloaded,
    RequestFailed,
    Unauthenticated,
    Unavailable,
    WrongTask,
    from_status,
)
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
from baton.serving.v1 import recognizer_pb2 as rpb
from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc

__all__ = [
    "AsyncClient",
    "Cancelled",
    "Client",
    "ClientError",
    "DeadlineExceeded",
    "EntityResult",
    "InternalError",
    "InvalidInput",
    "InvalidRequest",
    "NotFound",
    "Overloaded",
    "RequestFailed",
    "ServerError",
    "TLSConfig",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "WrongTask",
]


# the first release's names, kept for one release
ClientError = RequestFailed
InvalidInput = InvalidRequest
Timeout = DeadlineExceeded
ServerError = InternalError


def _translate(exc: grpc.RpcError) -> RequestFailed:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return from_status(code.name, details or "")


@dataclass(frozen=True)
class TLSConfig:
    """Server CA to trust, and optionally this client's certificate and key (mTLS)."""

    root_ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None  # override the name checked against the server certificate

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(read(self.root_ca), read(self.client_key), read(self.client_cert))


@dataclass(frozen=True)
class Result:
    label: str
    score: float
    top_k: list[tuple[str, float]]
    truncated: bool
    labels: list[str]
    empty: bool = False  # an empty or whitespace-only text: label "", score 0


def _results(response: pb.ClassifyResponse) -> list[Result]:
    return [
        Result(r.label, r.score, [(x.label, x.score) for x in r.top_k], r.truncated, list(r.labels), r.empty)
        for r in response.results
    ]


@dataclass(frozen=True)
class EntityResult:
    """One text's entities: (label, text, start, end, score) with character offsets into the text sent."""

    entities: list[tuple[str, str, int, int, float]]
    truncated: bool


def _entities(response: rpb.RecognizeResponse) -> list[EntityResult]:
    return [
        EntityResult([(e.label, e.text, e.start, e.end, e.score) for e in r.entities], r.truncated)
        for r in response.results
    ]


def _recognize_request(texts: Sequence[str], aggregation: str | None, model: str) -> rpb.RecognizeRequest:
    if isinstance(texts, str):
        raise TypeError("takes a sequence of texts, not a single string")
    return rpb.RecognizeRequest(texts=list(texts), aggregation=aggregation or "", model=model)


LOAD_BALANCING = ("pick_first", "round_robin")
RETRIES = 2  # more attempts after the first; gRPC allows at most 4
_RETRIED = [
    {"service": "baton.serving.v1.TextClassifier", "method": "Classify"},
    {"service": "baton.serving.v1.EntityRecognizer", "method": "Recognize"},
]


def _service_config(load_balancing: str | None, retries: int) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if load_balancing is not None:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    if retries:
        policy = {
            "maxAttempts": retries + 1,
            "initialBackoff": "0.1s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
        }
        config["methodConfig"] = [{"name": _RETRIED, "retryPolicy": policy}]
    return config


def _channel_args(
    target: str, tls: TLSConfig | None, max_message_bytes: int, load_balancing: str | None = None, retries: int = 0
) -> tuple[list[Any], Any]:
    """Channel options. `load_balancing="round_robin"` spreads calls over every address the target resolves to
    (`dns:///name:port` for a headless Service's pods, or `ipv4:host:port,host:port`); gRPC's default,
    `pick_first`, sends every call to one of them."""
    if load_balancing is not None and load_balancing not in LOAD_BALANCING:
        raise ValueError(f"load_balancing must be one of {', '.join(LOAD_BALANCING)} (got {load_balancing!r})")
    if not 0 <= retries <= 4:
        raise ValueError(f"retries must be from 0 to 4 (got {retries!r})")
    options: list[Any] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    config = _service_config(load_balancing, retries)
    if config:
        options.append(("grpc.service_config", json.dumps(config)))
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options, tls.credentials() if tls is not None else None


class _ClientBase:
    """Channel, stub, metadata and request building shared by the sync and asyncio clients."""

    _aio = False

    def __init__(
        self,
        target: str,
        token: str | None = None,
        tls: TLSConfig | None = None,
        timeout: float | None = 30.0,
        max_message_bytes: int = 4 * 1024 * 1024,
        load_balancing: str | None = None,
        retries: int = RETRIES,
        model: str | None = None,
    ) -> None:
        """`model`: the model every call asks for, on a server of several (a model repository)."""
        options, credentials = _channel_args(target, tls, max_message_bytes, load_balancing, retries)
        factory: Any = grpc.aio if self._aio else grpc
        self._channel = (
            factory.secure_channel(target, credentials, options)
            if credentials
            else factory.insecure_channel(target, options)
        )
        self._stub = pb_grpc.TextClassifierStub(self._channel)
        self._recognizer = rpb_grpc.EntityRecognizerStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.model = model or ""

    def _request(
        self,
        texts: Sequence[str],
        top_k: int | None,
        pairs: Sequence[str] | None,
        long_text: str | None = None,
        chunk_combine: str | None = None,
    ) -> pb.ClassifyRequest:
        if isinstance(texts, str) or isinstance(pairs, str):
            raise TypeError("takes a sequence of texts, not a single string")
        request = pb.ClassifyRequest(
            texts=list(texts),
            text_pairs=list(pairs or ()),
            model=self.model,
            long_text=long_text or "",
            chunk_combine=chunk_combine or "",
        )
        if top_k:
            request.top_k = top_k
        return request


class Client(_ClientBase):
    """Blocking client: `Client("127.0.0.1:50051").classify(["text"])`."""

    def classify_response(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        timeout: float | None = None,
        pairs: Sequence[str] | None = None,
        long_text: str | None = None,
        chunk_combine: str | None = None,
    ) -> pb.ClassifyResponse:
        request = self._request(texts, top_k, pairs, long_text, chunk_combine)
        try:
            return self._stub.Classify(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc

    def classify(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        timeout: float | None = None,
        pairs: Sequence[str] | None = None,
        long_text: str | None = None,
        chunk_combine: str | None = None,
    ) -> list[Result]:
        """One result per text; `pairs` (one per text) for a sentence-pair model; `long_text` ("truncate" or
        "chunk") and `chunk_combine` ("mean" or "max") for texts past the window (default: the model's)."""
        return _results(self.classify_response(texts, top_k, timeout, pairs, long_text, chunk_combine))

    def recognize(
        self, texts: Sequence[str], aggregation: str | None = None, timeout: float | None = None
    ) -> list[EntityResult]:
        """Entities of each text (an entity-recognition server); `aggregation` overrides the bundle's default."""
        try:
            response = self._recognizer.Recognize(
                _recognize_request(texts, aggregation, self.model),
                timeout=timeout or self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return _entities(response)

    def model_info(self) -> pb.ModelInfo:
        try:
            request = pb.GetModelInfoRequest(model=self.model)
            return self._stub.GetModelInfo(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """The server's grpc.health.v1 status for `service` ("" is the whole server): SERVING, NOT_SERVING, ..."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """asyncio client with the same calls: `await AsyncClient(target).classify([...])`."""

    _aio = True

    async def classify_response(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        timeout: float | None = None,
        pairs: Sequence[str] | None = None,
        long_text: str | None = None,
        chunk_combine: str | None = None,
    ) -> pb.ClassifyResponse:
        request = self._request(texts, top_k, pairs, long_text, chunk_combine)
        try:
            return await self._stub.Classify(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc

    async def classify(
        self,
        texts: Sequence[str],
        top_k: int | None = None,
        timeout: float | None = None,
        pairs: Sequence[str] | None = None,
    ) -> list[Result]:
        return _results(await self.classify_response(texts, top_k, timeout, pairs))

    async def recognize(
        self, texts: Sequence[str], aggregation: str | None = None, timeout: float | None = None
    ) -> list[EntityResult]:
        try:
            response = await self._recognizer.Recognize(
                _recognize_request(texts, aggregation, self.model),
                timeout=timeout or self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return _entities(response)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

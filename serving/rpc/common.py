"""What every servicer shares: the view of the server it is given, the failure type, quiet aborts, timings, the
stream loop, model info."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

from baton.errors import InputError, RequestFailed, WrongTask, status_of
from baton.serving.batcher import ItemResult, timings_us
from baton.serving.config import ServeConfig
from baton.serving.long_text import LongTextSpec
from baton.serving.metrics import ServerMetrics
from baton.serving.repository import Model, Repository
from baton.serving.v1 import classifier_pb2 as pb
from baton.task import Task

__all__ = [
    "ServerView",
    "abort",
    "grpc_code",
    "model_info",
    "serve_stream",
    "serve_unary",
    "timings",
    "wrong_task",
]

logger = logging.getLogger(__name__)

# The RPC that answers each task, named in the refusal another task's service gives.
_CALL = {Task.CLASSIFICATION: "TextClassifier.Classify", Task.ENTITIES: "EntityRecognizer.Recognize"}


class ServerView(Protocol):
    """What a servicer may use of the server: its models (routing and changes), limits, metrics, and admission."""

    config: ServeConfig
    metrics: ServerMetrics
    repository: Repository
    draining: asyncio.Event

    @property
    def ready(self) -> bool: ...

    def resolve(self, name: str | None, version: str | None = None, task: Task | None = None) -> Model: ...

    async def load_model(self, name: str) -> None: ...

    async def unload_model(self, name: str) -> None: ...

    async def classify(
        self,
        model: Model,
        texts: list[str],
        pairs: list[str] | None,
        remaining: float | None,
        method: str,
        long_text: LongTextSpec | None = None,
    ) -> list[ItemResult]: ...

    def refuse_malformed(self, method: str, request: Any) -> None: ...


def grpc_code(exc: BaseException) -> grpc.StatusCode:
    """The status a server answers `exc` with (baton/errors.py holds the one mapping)."""
    return grpc.StatusCode[status_of(exc).name]


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """End the call with `code`; for a call its client has already left (cancelled, deadline passed) there is no
    one to tell, and grpc would log a traceback for the failed send: end it quietly instead (no log flood)."""
    remaining = context.time_remaining()
    if context.cancelled() or (remaining is not None and remaining <= 0):
        raise asyncio.CancelledError
    await context.abort(code, message)


def wrong_task(task: Task, wanted: Task) -> WrongTask:
    """The refusal a service of `wanted` gives on a server of `task`, naming the call that answers."""
    return WrongTask(f"this server's model is for {task}, not {wanted}: call {_CALL[task]}")


def timings(results: list[ItemResult], started: float) -> pb.Timings:
    return pb.Timings(**timings_us(results, started))


def model_info(model: Model) -> pb.ModelInfo:
    """GetModelInfo: the version's info, and its card's text (gRPC has no URL to link to)."""
    return pb.ModelInfo(**model.info(), card=(model.card_text or b"").decode("utf-8", "replace"))


async def serve_unary(
    answer: Callable[[Any, grpc.aio.ServicerContext, str], Awaitable[Any]],
    request: Any,
    context: grpc.aio.ServicerContext,
    method: str,
) -> Any:
    """One answer. A `RequestFailed` or `InputError` ends the call with its status and message; anything else is
    a bug: it is logged with an id, and the client gets INTERNAL with that id, never the exception's text."""
    try:
        return await answer(request, context, method)
    except (RequestFailed, InputError) as exc:
        await abort(context, grpc_code(exc), str(exc))
        raise  # unreachable: abort raises
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception:
        incident = uuid.uuid4().hex[:12]
        logger.exception("%s failed (incident %s)", method, incident)
        await abort(context, grpc.StatusCode.INTERNAL, f"internal error (incident {incident} in the server log)")
        raise  # unreachable: abort raises


async def serve_stream(
    server: ServerView,
    request_iterator: AsyncIterator[Any],
    context: grpc.aio.ServicerContext,
    answer: Callable[[Any, grpc.aio.ServicerContext, str], Awaitable[Any]],
    method: str,
) -> AsyncIterator[Any]:
    """One response per message, in order. On shutdown the stream answers the message it is working on, reads
    no more, and ends with OK: the client sees which of its messages were answered."""
    reader = request_iterator.__aiter__()
    drained = asyncio.ensure_future(server.draining.wait())
    incoming: asyncio.Future[Any] | None = None
    try:
        while True:
            incoming = asyncio.ensure_future(reader.__anext__())
            await asyncio.wait({incoming, drained}, return_when=asyncio.FIRST_COMPLETED)
            if not incoming.done():
                incoming.cancel()
                return
            try:
                request = incoming.result()
            except StopAsyncIteration:
                return
            yield await serve_unary(answer, request, context, method)
    finally:  # also when the call itself is cancelled: no task is left pending
        drained.cancel()
        if incoming is not None and not incoming.done():
            incoming.cancel()

"""The ASGI application: route, authenticate, bound, answer, count. Rules, in the order a request meets them:

1. The route is looked up from the method and path alone (404, or 405 naming the methods the path takes).
2. A route that is not public needs `Authorization: Bearer <token>` when the server has a token; it is compared in
   constant time, and a request without it gets 401 before one byte of its body is read.
3. A body is read only by a route that takes one: a declared `Content-Length` past the limit is 413 before reading,
   a body that grows past it while arriving is 413, and a body that takes longer than the body timeout is 408.
4. The handler answers; a `BatonError` becomes its HTTP status (baton/errors.py) with `{"error": message}`; an
   `HttpError` its own status; anything else is logged with an incident id and answered 500 with that id only.
5. Every answer is counted in `baton_http_requests{route, status}` by route template (never the raw path, whose
   values a client controls), and timed in `baton_http_request_seconds{route}`.

A route's handler receives a `Request` and returns a `Response`. Routes come from the modules listed in
`front.py`; each module declares its own.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from baton.errors import BatonError, Cancelled, InvalidRequest

__all__ = ["App", "HttpError", "Request", "Response", "Route", "json_body", "json_response", "parse_json"]

logger = logging.getLogger(__name__)

Handler = Callable[["Request"], Awaitable["Response"]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]
_Receive = Callable[[], Awaitable[dict[str, Any]]]

_JSON_TYPES = ("application/json", "", "application/x-www-form-urlencoded")
_MAX_PATH_VALUE = 200  # characters of a path value (a model name) repeated in an error


class HttpError(Exception):
    """An HTTP-only refusal (405, 408, 413, 415, ...): a status and one line."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


@dataclass(frozen=True)
class Route:
    """`pattern` is a path with `{name}` segments; `name` labels the metrics and is the OpenAPI operationId."""

    method: str
    pattern: str
    name: str
    handler: Handler
    public: bool = False  # no token needed: health probes, the page and its assets, the OpenAPI document
    summary: str = ""
    request: str | None = None  # the OpenAPI schema name of the JSON body, when the route takes one
    response: str | None = None  # the OpenAPI schema name of the JSON answer
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.pattern)
        regex = "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        object.__setattr__(self, "regex", re.compile(regex + "$"))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value))


def _error(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, orjson.dumps({"error": message}), headers=list(headers))


class Request:
    """One request: its route's path values, headers (lower-case names) and, on demand, its bounded body."""

    def __init__(self, scope: dict[str, Any], receive: _Receive, params: dict[str, str], app: App) -> None:
        self.scope = scope
        self.params = params
        self.headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            self.headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self._receive = receive
        self._app = app
        self.routes = app.routes
        self.server: Any = app.context  # the server view the handlers answer from (serving/rpc/common.ServerView)

    async def body(self) -> bytes:
        """The whole body, within the size and time limits (rule 3)."""
        limit = self._app.max_body_bytes
        declared = self.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HttpError(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise HttpError(413, f"the body has {int(declared)} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self._app.body_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(self._receive(), left)
            except TimeoutError:
                raise HttpError(408, f"the body did not arrive within {self._app.body_timeout_s:g} s") from None
            if message["type"] == "http.disconnect":
                raise Cancelled("the client left before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def parse_json(data: bytes, what: str) -> Any:
    """`data` as JSON, or a 400 saying where it stopped being JSON (`what`: "the body", ...)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"{what} is not JSON: {exc}") from None


async def json_body(request: Request) -> dict[str, Any]:
    """The body as one JSON object (400 otherwise). 415 for a declared content type other than JSON, or than the
    form type `curl -d` sends by default (its body is read as JSON all the same)."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind not in _JSON_TYPES:
        raise HttpError(415, f"send application/json (got {kind[:60]})")
    value = parse_json(await request.body(), "the body")
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


class App:
    """The ASGI callable. `token`: the bearer token every non-public route needs (None: open)."""

    def __init__(
        self,
        routes: Sequence[Route],
        metrics: Any,
        token: str | None,
        max_body_bytes: int,
        body_timeout_s: float,
        context: Any = None,
    ) -> None:
        self.routes = list(routes)
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.context = context  # what handlers serve: the server view
        self._expected = None if token is None else f"Bearer {token}".encode()

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise HttpError(
                405,
                f"{path[:_MAX_PATH_VALUE]} takes {', '.join(sorted(set(allowed)))}",
                [("allow", ", ".join(sorted(set(allowed))))],
            )
        raise HttpError(404, f"no route {path[:_MAX_PATH_VALUE]}; the routes are listed at /openapi.json")

    def _authorized(self, request: Request) -> None:
        if self._expected is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode("latin-1"), self._expected):
            message = "missing bearer token" if not given else "invalid bearer token"
            raise HttpError(401, message, [("www-authenticate", "Bearer")])

    async def __call__(self, scope: dict[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not served
            return
        started = time.perf_counter()
        name = "unrouted"
        body_read = True
        try:
            route, params = self._match(scope["method"], scope["path"])
            name = route.name
            body_read = route.request is None
            request = Request(scope, receive, params, self)
            if not route.public:
                self._authorized(request)
            response = await route.handler(request)
            body_read = True
        except HttpError as exc:
            response = _error(exc.status, str(exc), exc.headers)
        except BatonError as exc:
            if isinstance(exc, Cancelled):  # no one is left to answer
                self._count(name, 499, started)
                return
            response = _error(exc.status.value, str(exc))
        except Exception:
            incident = uuid.uuid4().hex[:12]
            logger.exception("HTTP %s failed (incident %s)", name, incident)
            response = _error(500, f"internal error (incident {incident} in the server log)")
        if not body_read:  # refused before its body was read: close, so the unread body is never parsed
            response.headers.append(("connection", "close"))
        await _send(send, response, scope["method"] == "HEAD")
        self._count(name, response.status, started)

    def _count(self, name: str, status: int, started: float) -> None:
        self.metrics.http_requests.labels(name, str(status)).inc()
        self.metrics.http_seconds.labels(name).observe(time.perf_counter() - started)


async def _send(send: _Send, response: Response, head_only: bool) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})

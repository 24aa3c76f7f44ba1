"""Running the HTTP app on uvicorn (httptools), on the server's own event loop: its socket is bound here, so a port
in use is one ConfigError naming `--http-port` and port 0 reports the port it got.

uvicorn bounds neither the bytes nor the time a client may take to send its request line and headers (its keep-alive
timer starts only after a first answer). `_BoundedProtocol` adds both: at most `_MAX_HEAD_BYTES` before the headers
end (431), and `head_timeout_s` from the connection's first byte, or the end of the previous answer, to the end of
the headers (408). The body's own bounds are the app's (app.py, rule 3)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from baton.errors import ConfigError
from baton.serving.config import ServeConfig
from baton.serving.http import oip, openapi, page, tasks
from baton.serving.http.app import App, Route

__all__ = ["HttpFront", "listening_socket"]

logger = logging.getLogger(__name__)

# The route modules: a new route group is a module with ROUTES, listed here.
_MODULES = (oip, tasks, openapi, page)
_MAX_HEAD_BYTES = 64 * 1024
_LINGER_S = 1.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket bound to host:port (port 0: any free one) and listening, for uvicorn's `_serve`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it an
    # answer written in two parts (head, body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def routes() -> list[Route]:
    return [route for module in _MODULES for route in module.ROUTES]


def _bounded_protocol(head_timeout_s: float) -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _BoundedProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_bytes = 0
            self._in_head = True
            self._refused = False
            self._head_timer = self.loop.call_later(head_timeout_s, self._refuse, 408, "request head too slow")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._in_head:
                self._in_head, self._head_bytes = True, 0
                self._head_timer = self.loop.call_later(head_timeout_s, self._refuse, 408, "request head too slow")

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_timer.cancel()
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # the refusal is on its way: what the client still sends is dropped, unparsed
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > _MAX_HEAD_BYTES:
                self._refuse(431, "request head too large")

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_timer.cancel()
            super().connection_lost(exc)

        def _refuse(self, status: int, message: str) -> None:
            if not self._in_head or self._refused or self.transport.is_closing():
                return
            reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
            body = b'{"error":"%s"}' % message.encode()  # the app's error shape (app.py), for a fixed message
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n"
                b"\r\n%s" % (status, reason, len(body), body)
            )
            # A lingering close: closing with unread bytes would send a reset, which can destroy the answer before
            # the client reads it. Send the answer and a FIN, drop what still arrives, close a second later.
            self._refused = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)

    return _BoundedProtocol


class HttpFront:
    """The HTTP port of one server: start() binds and serves, stop(grace) stops listening, lets the requests in
    flight finish within `grace` seconds, and closes the connections."""

    def __init__(self, config: ServeConfig, view: Any, metrics: Any) -> None:
        self.config = config
        self.app = App(
            routes(),
            metrics,
            token=config.auth_token(),
            max_body_bytes=config.max_message_bytes,
            body_timeout_s=config.http_body_timeout_s,
            context=view,
        )
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Release a port bound by bind() when the server does not start after all."""
        if self._sock is not None and self._server is None:
            self._sock.close()
            self._sock = None

    def bind(self) -> int:
        """Bind the port (before anything serves, so a port in use fails the start cleanly); the port bound."""
        cfg = self.config
        try:
            sock = listening_socket(cfg.host, cfg.http_port)
        except OSError as exc:
            raise ConfigError(f"--http-port: cannot bind {cfg.host}:{cfg.http_port} ({exc.strerror or exc})") from exc
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self.port

    async def start(self) -> int:
        import uvicorn

        if self._sock is None:
            self.bind()
        cfg = self.config
        tls: dict[str, Any] = {}
        if cfg.tls_cert:
            tls = {"ssl_certfile": cfg.tls_cert, "ssl_keyfile": cfg.tls_key}
            if cfg.tls_client_ca:
                tls |= {"ssl_ca_certs": cfg.tls_client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
        config = uvicorn.Config(
            self.app,
            http=_bounded_protocol(cfg.http_body_timeout_s),
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            date_header=False,
            timeout_keep_alive=max(1, round(cfg.http_keep_alive_s)),
            limit_concurrency=cfg.http_max_connections,
            timeout_graceful_shutdown=max(1, round(cfg.grace_s)),
            **tls,
        )
        self._server = uvicorn.Server(config)
        # `_serve`, not `serve`: serve() would take over SIGTERM and SIGINT, which `baton serve` handles (run.py)
        self._task = asyncio.ensure_future(self._server._serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what failed
                raise ConfigError(f"--http-port: the HTTP server on {cfg.host}:{self.port} did not start")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self, grace: float) -> None:
        if self._server is None or self._task is None:
            return
        self._server.config.timeout_graceful_shutdown = max(grace, 0.1)  # uvicorn waits this long (a float works)
        self._server.should_exit = True
        await self._task
        self._server = None

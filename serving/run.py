"""Running the server as a process: signals, graceful shutdown, exit codes."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal

from baton.serving.config import EventLoop, ServeConfig
from baton.serving.rpc import BatonServer

__all__ = ["serve_forever"]

logger = logging.getLogger(__name__)


async def _serve(config: ServeConfig) -> int:
    server = BatonServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_signal(sig: signal.Signals) -> None:
        if stopping:  # a second signal: the operator wants out now (accepted requests are dropped)
            logger.warning("%s again: exiting now, without finishing accepted requests", sig.name)
            os._exit(128 + sig.value)
        logger.info("%s: NOT_SERVING, finishing accepted requests (grace %.1fs)", sig.name, config.grace_s)
        stopping.append(asyncio.ensure_future(server.stop()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    print(
        f"baton serving {', '.join(f'{m.name} v{m.version}' for m in server.repository.serving()) or 'no model'}"
        f" on {config.host}:{server.port}"
        + (f", HTTP on :{server.http_port}" if server.http_port else "")
        + (f", metrics on :{server.metrics_port}/metrics" if server.metrics_port else ""),
        flush=True,
    )
    code = await server.wait()
    logger.info("server stopped (exit code %d)", code)
    return code


def serve_forever(config: ServeConfig) -> int:
    """Serve until a signal; the exit code. The event loop is uvloop for `event_loop="uvloop"`, and for "auto" when
    it is installed: side by side with asyncio's own loop it served 0-5 % more single-text calls at loads from 1
    to 64 clients (docs/decisions.md, "Serving: niced workers, uvloop, two sessions side by side")."""
    loop = config.event_loop
    if loop is EventLoop.AUTO:
        loop = EventLoop.UVLOOP if importlib.util.find_spec("uvloop") is not None else EventLoop.ASYNCIO
    logger.info("event loop: %s", loop)
    if loop is EventLoop.UVLOOP:
        import uvloop

        return uvloop.run(_serve(config))  # type: ignore[no-any-return]
    return asyncio.run(_serve(config))

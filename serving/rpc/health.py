"""grpc.health.v1, bounded. Health is exempt from auth (probes carry no token), so what an anonymous client can
make it hold is capped: a malformed message is INVALID_ARGUMENT with no traceback in the log (it was one per call),
a service name is at most `MAX_SERVICE_CHARS`, and Watch streams are capped per connection and in all
(RESOURCE_EXHAUSTED past either): 10,000 Watch streams on one connection took the server from 213 to 398 MB RSS
(issue 29)."""

from __future__ import annotations

import collections
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from baton.serving.rpc.common import abort
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.rpc.wire import Malformed

__all__ = ["MAX_SERVICE_CHARS", "MAX_WATCHES", "MAX_WATCHES_PER_PEER", "Health", "register"]

MAX_SERVICE_CHARS = 200
MAX_WATCHES = 256  # Watch streams open at once, in all
MAX_WATCHES_PER_PEER = 8  # ... and from one connection (a probe needs one)


class Health(health.aio.HealthServicer):
    def __init__(self, max_watches: int = MAX_WATCHES, max_per_peer: int = MAX_WATCHES_PER_PEER) -> None:
        super().__init__()
        self.max_watches, self.max_per_peer = max_watches, max_per_peer
        self.watching: collections.Counter[str] = collections.Counter()

    async def _refuse_bad(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        if isinstance(request, Malformed):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        if len(request.service) > MAX_SERVICE_CHARS:
            await abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"service names are {MAX_SERVICE_CHARS} chars at most"
            )

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._refuse_bad(request, context)
        return await super().Check(request, context)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        await self._refuse_bad(request, context)
        peer = context.peer() or "?"
        if sum(self.watching.values()) >= self.max_watches or self.watching[peer] >= self.max_per_peer:
            await abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many health watches open (at most {self.max_per_peer} a connection, {self.max_watches} in all)",
            )
        self.watching[peer] += 1
        try:
            await super().Watch(request, context)
        finally:
            self.watching[peer] -= 1
            if self.watching[peer] <= 0:
                del self.watching[peer]


def register(servicer: Health, server: grpc.aio.Server, checks: Checks) -> None:
    add_guarded(health_pb2_grpc.add_HealthServicer_to_server, servicer, server, {})

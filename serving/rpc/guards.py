"""Every request message is bounded on the wire before it is decoded (serving/rpc/wire.py): a generated service is
registered through `add_guarded`, which wraps each method's deserializer with its element count check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc

from baton.serving.rpc.wire import TooManyElements, count_fields, guarded_handler

__all__ = ["Checks", "add_guarded"]

# Fields a KServe request may hold at its top level and per input tensor (besides the texts themselves).
_KSERVE_FIELDS = 64


class Checks:
    """The wire checks for one server's limits: a domain call's texts, a KServe call's tensors."""

    def __init__(self, max_texts: int) -> None:
        self.max_texts = max_texts
        # texts, pairs and a few scalars per Classify/Recognize message
        self.max_fields = 2 * max_texts + 8

    def texts(self, data: bytes) -> None:
        try:
            count_fields(data, self.max_fields)
        except TooManyElements:
            raise TooManyElements(f"the limit is {self.max_texts} texts per request") from None

    def infer(self, data: bytes) -> None:
        tensor: tuple[int, dict[int, Any]] = (_KSERVE_FIELDS, {5: (self.max_fields, {})})  # contents: the texts
        count_fields(data, _KSERVE_FIELDS, {5: tensor})


class _Capture:
    """Stands in for a server to catch the method handlers a generated `add_*_to_server` registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, handlers


def add_guarded(
    add: Callable[[Any, Any], None],
    servicer: Any,
    server: grpc.aio.Server,
    checks: Mapping[str, Callable[[bytes], None]],
) -> None:
    """Register a generated service with every request deserializer bounded (serving/rpc/wire.py)."""
    capture = _Capture()
    add(servicer, capture)
    handlers = {name: guarded_handler(h, checks.get(name)) for name, h in capture.handlers.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)

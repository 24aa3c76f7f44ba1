"""One loaded version of one model: its verified bundle, its engine and its own batcher.

Calls are counted in and out (`enter`, `leave`); `drain` waits until the version has answered every call it took,
so a version taken out of routing (a swap, an unload, a stop) finishes its work before its workers stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baton.serving.batcher import Batcher, BatcherConfig, EngineLike
from baton.serving.bundle import Bundle
from baton.serving.long_text import LongTextSpec, requested
from baton.serving.tasks import task_class
from baton.task import Task

__all__ = ["Model"]

logger = logging.getLogger(__name__)


class Model:
    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        bundle: Bundle,
        engine: EngineLike,
        batching: BatcherConfig,
        observer: Any,
        on_crash: Callable[[BaseException], None],
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.bundle = bundle
        self.engine: Any = engine
        self.task: Task = bundle.manifest.task
        self.variant = getattr(engine, "variant", "?")
        self.provider = getattr(engine, "provider", "cpu")
        self.answer_bound = task_class(self.task).answer_bound  # looked up once, not per request
        card = bundle.card
        self.card_text: bytes | None = None if card is None else card.read_bytes()  # checksummed at load
        self.batcher = Batcher(engine, batching, observer=observer, on_crash=on_crash)
        self.closed = False  # out of routing: a call that still resolved it is sent to the serving version
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __repr__(self) -> str:
        return f"{self.name} v{self.version}"

    def info(self) -> dict[str, Any]:
        """What GetModelInfo says of this version, on every front (each adds how it reaches the card)."""
        m = self.bundle.manifest
        return {
            "name": self.name,
            "version": str(self.version),
            "task": str(m.task),
            "problem_type": m.problem_type,
            "labels": list(m.labels),
            "variant": self.variant,
            "provider": self.provider,
            "max_length": m.max_length,
            "bundle_sha256": self.bundle.checksum,
            "base_model": m.base_model,
            "inputs": list(m.inputs),
            "aggregation": m.aggregation if task_class(m.task).takes_aggregation else "",
            "scheme": m.scheme or "",
            "long_text": m.long_text.mode.value if m.task is Task.CLASSIFICATION else "",
            "chunk_combine": m.long_text.combine.value if m.task is Task.CLASSIFICATION else "",
        }

    def long_text(self, mode: str | None, combine: str | None) -> LongTextSpec | None:
        """A request's rule for texts past the window (None: the bundle's; serving/long_text.py, `requested`)."""
        m = self.bundle.manifest
        return requested(m.long_text if m.task is Task.CLASSIFICATION else None, mode, combine)

    def start(self) -> None:
        self.batcher.start()

    async def warm_up(self) -> None:
        texts = ["warm-up", "a longer warm-up text " * 8]
        await self.batcher.submit(texts, pairs=texts[::-1] if self.bundle.manifest.pairs else None)

    def enter(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every call this version took has its answer; whether it did within `timeout`."""
        if self._idle.is_set():
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (after `drain`): the engine's sessions are freed with the last reference."""
        self.closed = True
        await asyncio.get_running_loop().run_in_executor(None, self.batcher.stop, timeout)
        logger.info("%r closed", self)

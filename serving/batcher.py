"""The dynamic batcher: bounded intake, tokenization on arrival, token-budgeted length-sorted batches.

Two supervised worker threads form a pipeline:
  tokenizer thread   intake → engine.tokenize → ready set   (overlaps the current inference)
  inference thread   ready set → select_window → collate → engine.run → postprocess → futures
Futures are completed on the event loop (`call_soon_threadsafe`). Every item gets exactly one outcome: a result,
or one of the errors below. If a worker dies, every pending item fails with WorkerCrashed and `on_crash` runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from baton.serving.batching import select_window
from baton.serving.engine import Encoded, Prediction, Tokens

__all__ = [
    "Batcher",
    "BatcherConfig",
    "BatcherError",
    "Cancelled",
    "DeadlineExceeded",
    "ItemResult",
    "Overloaded",
    "RequestState",
    "ShuttingDown",
    "WorkerCrashed",
]

logger = logging.getLogger(__name__)


class BatcherError(Exception):
    """Base of the outcomes that are not a result."""


class Overloaded(BatcherError):
    """The queue is full (maps to RESOURCE_EXHAUSTED)."""


class DeadlineExceeded(BatcherError):
    """The request's deadline passed before its items ran."""


class Cancelled(BatcherError):
    """The request was cancelled before its items ran."""


class ShuttingDown(BatcherError):
    """The batcher no longer accepts work (maps to UNAVAILABLE)."""


class WorkerCrashed(BatcherError):
    """A worker thread died (maps to INTERNAL)."""


class EngineLike(Protocol):
    def tokenize(self, texts: Sequence[str]) -> list[Tokens]: ...
    def collate(self, items: Sequence[Tokens]) -> Encoded: ...
    def run(self, encoded: Encoded) -> np.ndarray: ...
    def postprocess(self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None) -> list[Prediction]: ...


class BatchObserver(Protocol):
    def batch_done(self, size: int, padded_tokens: int, inference_s: float) -> None: ...
    def queue_depth(self, depth: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BatcherConfig:
    max_batch_tokens: int = 8192  # padded tokens (longest × count) per batch
    max_batch_size: int = 16
    max_queue_delay_ms: float = 0.0  # 0: run as soon as the engine is free; >0: wait up to this for a fuller batch
    max_queue_items: int = 4096

    def __post_init__(self) -> None:
        if self.max_batch_tokens < 1 or self.max_batch_size < 1 or self.max_queue_items < 1:
            raise ValueError("max_batch_tokens, max_batch_size and max_queue_items must be >= 1")
        if self.max_queue_delay_ms < 0:
            raise ValueError("max_queue_delay_ms must be >= 0")


@dataclass
class RequestState:
    """Shared by the items of one request: its deadline (time.monotonic) and whether it was cancelled."""

    deadline: float | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class ItemResult:
    prediction: Prediction
    logits: np.ndarray
    queue_s: float
    tokenize_s: float
    inference_s: float
    batch_size: int


@dataclass(eq=False)
class _Item:
    text: str
    future: asyncio.Future[ItemResult]
    loop: asyncio.AbstractEventLoop
    state: RequestState
    enqueued: float = field(default_factory=time.perf_counter)
    tokens: Tokens | None = None
    tokenize_s: float = 0.0
    finished: bool = False


def _settle(future: asyncio.Future[ItemResult], result: ItemResult | None, error: BaseException | None) -> None:
    if future.done():  # cancelled by its RPC meanwhile: the outcome has nowhere to go
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class Batcher:
    def __init__(
        self,
        engine: EngineLike,
        config: BatcherConfig | None = None,
        observer: BatchObserver | None = None,
        on_crash: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or BatcherConfig()
        self._observer = observer
        self._on_crash = on_crash
        self._lock = threading.Lock()
        self._intake_cv = threading.Condition(self._lock)
        self._ready_cv = threading.Condition(self._lock)
        self._intake: deque[_Item] = deque()
        self._ready: list[_Item] = []
        self._running: list[_Item] = []
        self._tokenizing: list[_Item] = []
        self._pending = 0
        self._closing = False
        self._crashed: BaseException | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        for name, target in (("baton-tokenize", self._tokenize_loop), ("baton-infer", self._infer_loop)):
            thread = threading.Thread(target=self._supervised, args=(target,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def crashed(self) -> BaseException | None:
        return self._crashed

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting work, let the workers drain what was accepted, and join them."""
        with self._lock:
            self._closing = True
            self._intake_cv.notify_all()
            self._ready_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # ---- submission (event-loop side) ------------------------------------------------------------------------
    async def submit(self, texts: Sequence[str], state: RequestState | None = None) -> list[ItemResult]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        state = state or RequestState()
        items = [_Item(text, loop.create_future(), loop, state) for text in texts]
        with self._lock:
            if self._crashed is not None:
                raise WorkerCrashed(f"the inference worker crashed: {self._crashed!r}")
            if self._closing:
                raise ShuttingDown("the server is shutting down")
            if self._pending + len(items) > self.config.max_queue_items:
                raise Overloaded(
                    f"queue full: {self._pending} items waiting, limit {self.config.max_queue_items}; retry later"
                )
            self._pending += len(items)
            self._intake.extend(items)
            self._intake_cv.notify()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        except asyncio.CancelledError:
            state.cancelled = True
            raise

    # ---- workers ---------------------------------------------------------------------------------------------
    def _supervised(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            logger.exception("batcher worker %s crashed", threading.current_thread().name)
            self._crash(exc)

    def _crash(self, exc: BaseException) -> None:
        with self._lock:
            if self._crashed is None:
                self._crashed = exc
            self._closing = True
            victims = [*self._intake, *self._tokenizing, *self._ready, *self._running]
            self._intake.clear()
            self._tokenizing = []
            self._ready.clear()
            self._running = []
            self._intake_cv.notify_all()
            self._ready_cv.notify_all()
        error = WorkerCrashed(f"the inference worker crashed: {exc!r}")
        for item in victims:
            self._finish(item, None, error)
        if self._on_crash is not None:
            self._on_crash(exc)

    def _finish(self, item: _Item, result: ItemResult | None, error: BaseException | None) -> None:
        with self._lock:
            if item.finished:
                return
            item.finished = True
            self._pending -= 1
        item.loop.call_soon_threadsafe(_settle, item.future, result, error)

    def _tokenize_loop(self) -> None:
        while True:
            with self._lock:
                while not self._intake and not self._closing:
                    self._intake_cv.wait()
                if not self._intake and self._closing:
                    self._ready_cv.notify_all()
                    return
                group = [self._intake.popleft() for _ in range(min(len(self._intake), 512))]
                self._tokenizing = group
            started = time.perf_counter()
            tokens = self.engine.tokenize([item.text for item in group])
            spent = time.perf_counter() - started
            for item, tok in zip(group, tokens, strict=True):
                item.tokens, item.tokenize_s = tok, spent
            with self._lock:
                self._tokenizing = []
                if self._crashed is None:
                    self._ready.extend(group)
                self._ready_cv.notify()

    def _next_batch(self) -> list[_Item] | None:
        """Block until a batch is due; return it (None: closing and drained)."""
        delay = self.config.max_queue_delay_ms / 1000.0
        with self._lock:
            while True:
                if self._ready:
                    oldest = min(self._ready, key=lambda i: i.enqueued)
                    waited = time.perf_counter() - oldest.enqueued
                    full = len(self._ready) >= self.config.max_batch_size
                    if delay <= 0 or full or waited >= delay or self._closing:
                        break
                    self._ready_cv.wait(delay - waited)
                    continue
                tokenizer_done = not self._threads[0].is_alive() if self._threads else True
                if self._closing and not self._intake and tokenizer_done:
                    return None
                self._ready_cv.wait(0.05 if self._closing else None)
            self._ready.sort(key=lambda i: len(i.tokens or ()))
            anchor = self._ready.index(oldest)
            lo, hi = select_window(
                [len(i.tokens or ()) for i in self._ready],
                anchor,
                self.config.max_batch_tokens,
                self.config.max_batch_size,
            )
            batch = self._ready[lo:hi]
            del self._ready[lo:hi]
            self._running = batch
            depth = len(self._ready) + len(self._intake)
        if self._observer is not None:
            self._observer.queue_depth(depth)
        return batch

    def _infer_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            now, started = time.monotonic(), time.perf_counter()
            live = []
            for item in batch:
                if item.state.cancelled or item.future.cancelled():
                    self._finish(item, None, Cancelled("request cancelled before inference"))
                elif item.state.deadline is not None and now >= item.state.deadline:
                    self._finish(item, None, DeadlineExceeded("deadline passed while queued"))
                else:
                    live.append(item)
            if live:
                encoded = self.engine.collate([item.tokens for item in live])  # type: ignore[misc]
                logits = self.engine.run(encoded)
                predictions = self.engine.postprocess(logits, encoded)
                spent = time.perf_counter() - started
                if self._observer is not None:
                    self._observer.batch_done(len(live), encoded.padded_tokens, spent)
                for row, (item, prediction) in enumerate(zip(live, predictions, strict=True)):
                    result = ItemResult(
                        prediction, logits[row], started - item.enqueued, item.tokenize_s, spent, len(live)
                    )
                    self._finish(item, result, None)
            with self._lock:
                self._running = []

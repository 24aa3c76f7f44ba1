"""The dynamic batcher: bounded intake, tokenization on arrival, token-budgeted length-sorted batches.

  submit (event loop)   engine.tokenize → ready set     (in the loop for a few texts, about 40 us each; in a
                                                          helper thread for large requests)
  workers (threads)     ready set → select_window → collate → engine.run → postprocess → futures
`engine.workers` supervised worker threads (2 on a multi-core CPU, else 1) take batches, so one worker collates
and post-processes while the other is inside `engine.run` (which releases the GIL), and the texts of the next
batch are tokenized while the current one runs. A batch that runs alone under serial traffic runs *wide* (every
intra-op thread); when two run at once, or may (concurrent traffic), each runs *narrow* (its share of the cores);
a second batch never starts beside a wide one (the rules: `batching.runs_wide`). Futures are completed on the
event loop (`call_soon_threadsafe`, once per batch).
Every item gets exactly one outcome: a result, or one `RequestFailed` of baton/errors.py (Overloaded,
RequestTooLarge, ShuttingDown, DeadlineExceeded, Cancelled, TokenizationFailed, BatchFailed, WorkerCrashed). If a
worker dies, every pending item fails with WorkerCrashed and `on_crash` runs. The exceptions themselves go to the
log; a client's message never carries their text.

A batch whose collate, run or postprocess raises is logged, and each of its texts runs again alone: a text that
also fails alone is one the model cannot take, and gets InvalidRequest (INVALID_ARGUMENT); the others get their
answers. When no text of the batch runs alone, a known-good probe text decides: if the probe runs, the texts were
at fault (InvalidRequest again, not counted); if it fails too, the engine is broken: BatchFailed (INTERNAL) for the
batch, counted. Only `max_consecutive_failures` such batches in a row (with no success between) crash the batcher
as above, so no client can stop a server by sending texts the model fails on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from baton.errors import (
    BatchFailed,
    Cancelled,
    DeadlineExceeded,
    InputError,
    InvalidRequest,
    Overloaded,
    RequestTooLarge,
    ShuttingDown,
    TokenizationFailed,
    WorkerCrashed,
)
from baton.serving.batching import WIDE_POLICIES, runs_wide, select_window
from baton.serving.engine import Encoded, Tokens
from baton.serving.long_text import LongTextSpec

__all__ = ["Batcher", "BatcherConfig", "ItemResult", "RequestState", "timings_us"]

logger = logging.getLogger(__name__)

# Up to this many texts are tokenized in the event loop (about 40 us each here); larger requests
# go to a helper thread so one big request cannot stall every other RPC.
_INLINE_TOKENIZE_TEXTS = 16


class _RunFailed(Exception):
    """A batch's collate, run or postprocess raised; `live` are its texts still waiting for an answer."""

    def __init__(self, live: list[Any], cause: Exception) -> None:
        super().__init__(repr(cause))
        self.live, self.cause = live, cause


def _lower_priority(nice: int) -> None:
    """Make the calling thread `nice` steps less favoured than the process (Linux: a thread is a task).

    Why: on a small machine the event loop, the gRPC threads and the inference workers share the cores. At equal
    priority a ready event loop waits behind two workers for its time slice, so calls sit accepted but unread and
    answers sit computed but unsent, while the queue runs dry. Niced workers still take every cycle the loop
    leaves. Measured with 8 single-text clients, the time outside the server's clock fell from ~3 ms to ~1.3 ms of
    a ~10 ms round trip (docs/decisions.md, "Serving: niced workers, uvloop, two sessions side by side").
    onnxruntime's own pool threads (a wide batch's second thread) keep the process's priority.
    """
    if nice:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)


class EngineLike(Protocol):
    workers: int  # how many batches may run at once

    def tokenize(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, long_text: LongTextSpec | None = None
    ) -> list[Tokens]: ...
    def collate(self, items: Sequence[Tokens]) -> Encoded: ...
    def run(self, encoded: Encoded, wide: bool = True) -> np.ndarray: ...
    def postprocess(self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None) -> list[Any]: ...


class BatchObserver(Protocol):
    def batch_done(self, size: int, padded_tokens: int, inference_s: float) -> None: ...
    def queue_depth(self, depth: int) -> None: ...
    def batch_failed(self, size: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BatcherConfig:
    max_batch_tokens: int = 8192  # padded tokens (longest × count) per batch
    max_batch_size: int = 8
    max_queue_delay_ms: float = 0.0  # 0: run as soon as the engine is free; >0: wait up to this for a fuller batch
    max_queue_items: int = 4096
    # Model tokens one request may cost, every window of every text counted (a text chunked or read in windows
    # runs as several rows): past it the request is refused before it is queued, so one caller's long documents
    # cannot hold the workers for long (32 batches' worth by default).
    max_request_tokens: int = 262144
    max_consecutive_failures: int = 3  # failed batches in a row that mean the engine is broken (then crash)
    # With two workers: a second batch starts beside a running one only once this many texts wait (0: at once).
    # Fewer wait for the running batch to end and then go as one batch, wide when nothing is left over.
    min_second_batch: int = 0
    # When a batch alone may use every intra-op thread: "idle" (only when no texts arrived while the previous batch
    # ran) or "alone" (whenever nothing else runs or waits). See `batching.runs_wide`.
    wide_batches: str = "idle"
    # A batch grows only while its texts' own tokens fill at least this share of its padded tokens (0: no bound).
    min_batch_fill: float = 0.0
    # The workers' scheduling niceness (Linux, per thread; 0: the process's own). Above 0, the event loop that
    # accepts and answers calls runs first whenever it is ready, and inference takes the cores it leaves: see
    # `_lower_priority`.
    worker_nice: int = 0

    def __post_init__(self) -> None:
        if min(self.max_batch_tokens, self.max_batch_size, self.max_queue_items, self.max_request_tokens) < 1:
            raise ValueError("max_batch_tokens, max_batch_size, max_queue_items and max_request_tokens must be >= 1")
        if self.max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be >= 1")
        if self.max_queue_delay_ms < 0:
            raise ValueError("max_queue_delay_ms must be >= 0")
        if self.min_second_batch < 0:
            raise ValueError("min_second_batch must be >= 0")
        if not 0.0 <= self.min_batch_fill <= 1.0:
            raise ValueError(f"min_batch_fill must be in [0, 1] (got {self.min_batch_fill})")
        if not 0 <= self.worker_nice <= 19:
            raise ValueError(f"worker_nice must be in [0, 19] (got {self.worker_nice})")
        if self.worker_nice and not sys.platform.startswith("linux"):
            raise ValueError("worker_nice needs Linux (per-thread priorities); use 0 here")
        if self.wide_batches not in WIDE_POLICIES:
            raise ValueError(f"wide_batches must be one of {', '.join(WIDE_POLICIES)} (got {self.wide_batches!r})")


@dataclass
class RequestState:
    """Shared by the items of one request: its deadline (time.monotonic) and whether it was cancelled."""

    deadline: float | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class ItemResult:
    prediction: Any  # the task's answer: a Prediction (classification) or Entities (entity recognition)
    logits: np.ndarray  # this item's logits rows
    queue_s: float
    tokenize_s: float
    inference_s: float
    batch_size: int
    tokens: Any = None  # the item as the task tokenized it (entity models re-aggregate from it on request)


def timings_us(results: Sequence[ItemResult], started: float) -> dict[str, int]:
    """A request's timings in µs, as every front answers them: the slowest item's queue, tokenize and inference
    times, and the whole call since `started` (time.perf_counter())."""
    us = 1_000_000
    return {
        "queue_us": int(max((r.queue_s for r in results), default=0) * us),
        "tokenize_us": int(max((r.tokenize_s for r in results), default=0) * us),
        "inference_us": int(max((r.inference_s for r in results), default=0) * us),
        "total_us": int((time.perf_counter() - started) * us),
    }


@dataclass(eq=False)
class _Item:
    text: str
    pair: str | None
    future: asyncio.Future[ItemResult]
    loop: asyncio.AbstractEventLoop
    state: RequestState
    enqueued: float = 0.0  # when it joined the ready set (time.perf_counter)
    tokens: Tokens | None = None
    tokenize_s: float = 0.0
    finished: bool = False


_Outcome = tuple["asyncio.Future[ItemResult]", "ItemResult | None", "BaseException | None"]


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # cancelled by its RPC meanwhile: the outcome has nowhere to go
            continue
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
        self._cv = threading.Condition(self._lock)
        self._ready: list[_Item] = []
        self._running: set[_Item] = set()
        self._tokenizing = 0  # accepted items still in the tokenizer: workers wait for them before exiting
        # Large requests are tokenized here (the executor starts its one thread on first use).
        self._tokenizer_thread = ThreadPoolExecutor(1, thread_name_prefix="baton-tokenize")
        self._runs = 0  # batches inside engine.run (or about to be)
        self._wide_running = False
        self._arrived_while_running = 0  # texts queued while a batch ran, since the last batch was taken
        self._workers = max(1, engine.workers)
        self._pending = 0
        self._closing = False
        self._crashed: BaseException | None = None
        self._failures_in_a_row = 0
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        for n in range(self._workers):
            thread = threading.Thread(target=self._supervised, name=f"baton-worker-{n}", daemon=True)
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
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._tokenizer_thread.shutdown(wait=False)

    # ---- submission (event-loop side) ------------------------------------------------------------------------
    async def submit(
        self,
        texts: Sequence[str],
        state: RequestState | None = None,
        pairs: Sequence[str] | None = None,
        long_text: LongTextSpec | None = None,
    ) -> list[ItemResult]:
        """Queue one request's texts (and their pairs, for a pair model); one result per text, in order.
        `long_text`: the request's rule for texts past the window (None: the bundle's)."""
        if not texts:
            return []
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError("one pair per text")
        if len(texts) > self.config.max_queue_items:
            raise RequestTooLarge(
                f"{len(texts)} texts in one request; the queue holds at most {self.config.max_queue_items}"
            )
        loop = asyncio.get_running_loop()
        state = state or RequestState()
        items = [
            _Item(text, None if pairs is None else pairs[i], loop.create_future(), loop, state)
            for i, text in enumerate(texts)
        ]
        with self._lock:
            if self._crashed is not None:
                raise WorkerCrashed("the inference worker crashed; the server is stopping")
            if self._closing:
                raise ShuttingDown("the server is shutting down")
            if self._pending + len(items) > self.config.max_queue_items:
                raise Overloaded(
                    f"queue full: {self._pending} items waiting, limit {self.config.max_queue_items}; retry later"
                )
            self._pending += len(items)
            self._tokenizing += len(items)
        try:
            await self._tokenize(items, long_text)
        finally:
            with self._lock:
                self._tokenizing -= len(items)
                queued = self._crashed is None and all(item.tokens is not None for item in items)
                if queued:
                    now = time.perf_counter()  # queue time starts after tokenization (reported on its own)
                    for item in items:
                        item.enqueued = now
                    if self._runs > 0:
                        self._arrived_while_running += len(items)
                    self._ready.extend(items)
                    # Workers wait on the same conditions, so waking as many as can take a batch of these is
                    # enough; waking every one costs each of the others a wake-up for nothing.
                    self._cv.notify(min(len(items), self._workers))
                else:
                    self._pending -= len(items)
                    for item in items:
                        item.finished = True
                    self._cv.notify_all()  # the workers may wait for the tokenizer to drain before they exit
        if not queued:
            raise WorkerCrashed("the inference worker crashed; the server is stopping")
        try:
            if len(items) == 1:  # the common case under many small clients: no gather future
                return [await items[0].future]
            return list(await asyncio.gather(*(item.future for item in items)))
        except asyncio.CancelledError:
            state.cancelled = True
            raise

    async def _tokenize(self, items: list[_Item], long_text: LongTextSpec | None) -> None:
        """Tokenize on arrival: in the event loop for a few texts, in the helper thread for more."""
        texts = [item.text for item in items]
        pairs = None if items[0].pair is None else [item.pair or "" for item in items]
        started = time.perf_counter()
        try:
            if len(texts) <= _INLINE_TOKENIZE_TEXTS:
                tokens = self.engine.tokenize(texts, pairs, long_text)
            else:
                loop = asyncio.get_running_loop()
                tokens = await loop.run_in_executor(
                    self._tokenizer_thread, self.engine.tokenize, texts, pairs, long_text
                )
        except InputError:
            raise  # the request's own fault (a pair asked to chunk): its status says so
        except Exception as exc:
            logger.exception("tokenization failed")
            raise TokenizationFailed("tokenization failed for this request (the server log has why)") from exc
        spent = time.perf_counter() - started
        cost = sum(len(t) for t in tokens)
        if cost > self.config.max_request_tokens:
            raise RequestTooLarge(
                f"this request needs {cost} tokens of model work (every window of every text); the limit is "
                f"{self.config.max_request_tokens} (the server's --max-request-tokens): send fewer or shorter texts"
            )
        for item, tok in zip(items, tokens, strict=True):
            item.tokens, item.tokenize_s = tok, spent

    # ---- workers ---------------------------------------------------------------------------------------------
    def _supervised(self) -> None:
        try:
            _lower_priority(self.config.worker_nice)
            self._work()
        except BaseException as exc:
            logger.exception("batcher worker %s crashed", threading.current_thread().name)
            self._crash(exc)

    def _crash(self, exc: BaseException) -> None:
        """Fail everything pending; `on_crash` runs once, even when both workers die (e.g. at the same failed run)."""
        with self._lock:
            first = self._crashed is None
            if first:
                self._crashed = exc
            self._closing = True
            victims = [*self._ready, *self._running]  # items still in the tokenizer are failed by submit
            self._ready.clear()
            self._running.clear()
            self._cv.notify_all()
        error = WorkerCrashed("the inference worker crashed; the server is stopping")
        self._finish([(item, None, error) for item in victims])
        if first and self._on_crash is not None:
            self._on_crash(exc)

    def _finish(self, outcomes: Sequence[tuple[_Item, ItemResult | None, BaseException | None]]) -> None:
        """Give each item its one outcome: one hop to each event loop for the whole group."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        with self._lock:
            for item, result, error in outcomes:
                if item.finished:
                    continue
                item.finished = True
                self._pending -= 1
                by_loop.setdefault(item.loop, []).append((item.future, result, error))
        for loop, group in by_loop.items():
            loop.call_soon_threadsafe(_settle, group)

    def _work(self) -> None:
        while True:
            job = self._next_batch()
            if job is None:
                return
            batch, wide = job
            try:
                self._run(batch, wide)
            except _RunFailed as failed:
                self._batch_failed(failed.live, failed.cause)  # raises when the engine is broken: `_crash`
            else:
                with self._lock:
                    self._failures_in_a_row = 0
            finally:
                with self._lock:
                    self._running.difference_update(batch)

    def _batch_failed(self, live: list[_Item], exc: Exception) -> None:
        """The batch of `live` raised: rerun each text alone (see the module docstring); raise once
        `max_consecutive_failures` batches in a row showed a broken engine."""
        logger.error("a batch of %d item(s) failed: %r; running each alone", len(live), exc, exc_info=exc)
        if self._observer is not None:
            self._observer.batch_failed(len(live))
        failing = [item for item in live if not self._run_alone(item)]
        if not failing:
            return
        healthy = len(failing) < len(live) or self._probe(failing[0])
        with self._lock:
            self._failures_in_a_row = 0 if healthy else self._failures_in_a_row + 1
            in_a_row = self._failures_in_a_row
        if healthy:
            error: Exception = InvalidRequest("the model cannot run this text (the server log has why)")
            logger.warning("%d text(s) the model cannot run, refused; the engine runs others", len(failing))
        else:
            error = BatchFailed("inference failed for this batch (the server log has why)")
        self._finish([(item, None, error) for item in failing])
        if in_a_row >= self.config.max_consecutive_failures:
            raise RuntimeError(f"{in_a_row} batches failed in a row; last: {exc!r}") from exc

    def _run_alone(self, item: _Item) -> bool:
        """Run one text as its own batch, narrow, and answer it; False if it fails here too."""
        started = time.perf_counter()
        try:
            encoded = self.engine.collate([item.tokens])  # type: ignore[list-item]
            logits = self.engine.run(encoded, wide=False)
            (prediction,) = self.engine.postprocess(logits, encoded)
        except Exception:
            logger.warning("a text failed alone as well", exc_info=True)
            return False
        spent = time.perf_counter() - started
        result = ItemResult(
            prediction, encoded.item_logits(logits, 0), started - item.enqueued, item.tokenize_s, spent, 1, item.tokens
        )
        self._finish([(item, result, None)])
        return True

    def _probe(self, like: _Item) -> bool:
        """Whether the engine runs a known-good text (a pair when `like` is one)."""
        try:
            tokens = self.engine.tokenize(["probe"], None if like.pair is None else ["probe"])
            self.engine.run(self.engine.collate(tokens), wide=False)
        except Exception:
            logger.error("the engine fails on a known-good probe text too", exc_info=True)
            return False
        return True

    def _release(self, wide: bool) -> None:
        """The engine is free again: the next batch may start (wide, if nothing else runs)."""
        with self._lock:
            self._runs -= 1
            if wide:  # a wide batch always runs alone
                self._wide_running = False
            if self._ready or self._closing:  # else no worker can move on: a wake-up would cost CPU for nothing
                self._cv.notify_all()

    def _next_batch(self) -> tuple[list[_Item], bool] | None:
        """Block until a batch is due and a worker slot is free; return it (None: closed and drained)."""
        delay = self.config.max_queue_delay_ms / 1000.0
        with self._lock:
            while True:
                few = self._runs > 0 and len(self._ready) < self.config.min_second_batch and not self._closing
                if self._ready and self._runs < self._workers and not self._wide_running and not few:
                    oldest = min(self._ready, key=lambda i: i.enqueued)
                    waited = time.perf_counter() - oldest.enqueued
                    full = len(self._ready) >= self.config.max_batch_size
                    if delay <= 0 or full or waited >= delay or self._closing:
                        break
                    self._cv.wait(delay - waited)
                    continue
                if self._closing and not self._ready and not self._tokenizing:
                    return None
                self._cv.wait()
            self._ready.sort(key=lambda i: len(i.tokens or ()))
            lo, hi = select_window(
                [len(i.tokens or ()) for i in self._ready],
                self._ready.index(oldest),
                self.config.max_batch_tokens,
                self.config.max_batch_size,
                self.config.min_batch_fill,
            )
            batch = self._ready[lo:hi]
            del self._ready[lo:hi]
            wide = runs_wide(
                workers=self._workers,
                running=self._runs,
                left=len(self._ready),
                min_second=self.config.min_second_batch,
                arrived_while_running=self._arrived_while_running,
                policy=self.config.wide_batches,
            )
            self._arrived_while_running = 0
            self._runs += 1
            self._wide_running = wide
            self._running.update(batch)
            depth = len(self._ready) + self._tokenizing
        if self._observer is not None:
            self._observer.queue_depth(depth)
        return batch, wide

    def _run(self, batch: list[_Item], wide: bool) -> None:
        released = False
        try:
            now, started = time.monotonic(), time.perf_counter()
            live: list[_Item] = []
            dropped: list[tuple[_Item, ItemResult | None, BaseException | None]] = []
            for item in batch:
                if item.state.cancelled or item.future.cancelled():
                    dropped.append((item, None, Cancelled("request cancelled before inference")))
                elif item.state.deadline is not None and now >= item.state.deadline:
                    dropped.append((item, None, DeadlineExceeded("deadline passed while queued")))
                else:
                    live.append(item)
            if dropped:
                self._finish(dropped)
            if not live:
                return
            try:
                encoded = self.engine.collate([item.tokens for item in live])  # type: ignore[misc]
                logits = self.engine.run(encoded, wide=wide)
                # Free the slot before answering, so a client's next request never sees this run as still in flight.
                self._release(wide)
                released = True
                predictions = self.engine.postprocess(logits, encoded)
            except Exception as exc:
                raise _RunFailed(live, exc) from exc
            spent = time.perf_counter() - started
            if self._observer is not None:
                self._observer.batch_done(len(live), encoded.padded_tokens, spent)
            size = len(live)
            self._finish(
                [
                    (
                        item,
                        ItemResult(
                            prediction,
                            encoded.item_logits(logits, row),
                            started - item.enqueued,
                            item.tokenize_s,
                            spent,
                            size,
                            item.tokens,
                        ),
                        None,
                    )
                    for row, (item, prediction) in enumerate(zip(live, predictions, strict=True))
                ]
            )
        finally:
            if not released:
                self._release(wide)

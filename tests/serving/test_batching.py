"""The pure batch-assembly function and the batcher over a real engine (no gRPC)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import SlowEngine, real_engine

from baton.errors import InvalidRequest, RequestTooLarge, WorkerCrashed
from baton.serving.batcher import Batcher, BatcherConfig, RequestState
from baton.serving.batching import runs_wide, select_window
from baton.serving.engine import Encoded


@pytest.mark.parametrize(("max_tokens", "max_size"), list(itertools.product([1, 10, 64, 200, 10_000], [1, 2, 8, 64])))
@pytest.mark.parametrize("min_fill", [0.0, 0.8, 0.95])
def test_window_respects_limits_and_contains_anchor(max_tokens: int, max_size: int, min_fill: float) -> None:
    lengths = sorted([3, 5, 5, 7, 9, 12, 12, 20, 33, 40, 41, 60])
    for anchor in range(len(lengths)):
        lo, hi = select_window(lengths, anchor, max_tokens, max_size, min_fill)
        assert lo <= anchor < hi
        assert hi - lo <= max_size
        if hi - lo > 1:
            assert max(lengths[lo:hi]) * (hi - lo) <= max_tokens
            assert sum(lengths[lo:hi]) >= min_fill * max(lengths[lo:hi]) * (hi - lo)


def test_window_stops_growing_below_the_fill() -> None:
    """Around the 25-token anchor, 24 and 26 keep the batch 96 % full; 10 (82 %) or 50 (62 %) would not."""
    lengths = [10, 24, 25, 26, 50]
    assert select_window(lengths, 2, max_tokens=10_000, max_size=8, min_fill=0.9) == (1, 4)
    assert select_window(lengths, 2, max_tokens=10_000, max_size=8, min_fill=0.8) == (0, 4)
    assert select_window(lengths, 2, max_tokens=10_000, max_size=8) == (0, 5)
    assert select_window(lengths, 4, max_tokens=10_000, max_size=8, min_fill=0.9) == (4, 5)  # alone, not starved


def test_window_prefers_similar_lengths() -> None:
    lengths = [4, 5, 6, 50, 51, 52]
    assert select_window(lengths, 1, max_tokens=10_000, max_size=3) == (0, 3)
    assert select_window(lengths, 4, max_tokens=10_000, max_size=3) == (3, 6)
    assert select_window(lengths, 0, max_tokens=12, max_size=64) == (0, 2)  # 6*3=18 > 12
    assert select_window([], 0, 1, 1) == (0, 0)


def test_runs_wide_rules() -> None:
    base = {"workers": 2, "running": 0, "left": 0, "min_second": 0, "arrived_while_running": 0}
    for policy in ("idle", "alone"):
        assert runs_wide(**base, policy=policy)  # serial traffic, alone: every thread
        assert runs_wide(**{**base, "workers": 1, "running": 1, "left": 5}, policy=policy)  # one worker: always
        assert not runs_wide(**{**base, "running": 1}, policy=policy)  # another batch runs
        assert not runs_wide(**{**base, "left": 1}, policy=policy)  # room for a second batch
        assert runs_wide(**{**base, "left": 3, "min_second": 4}, policy=policy)  # too few for a second batch
    # Texts came in while the previous batch ran: concurrent traffic. Only "idle" leaves room for a second batch.
    assert not runs_wide(**{**base, "arrived_while_running": 1}, policy="idle")
    assert runs_wide(**{**base, "arrived_while_running": 1}, policy="alone")
    with pytest.raises(ValueError, match="policy must be one of"):
        runs_wide(**base, policy="always")


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.new_event_loop().run_until_complete(coro)


def test_a_request_wakes_only_the_worker_that_takes_it(tiny_bundle: Path) -> None:
    """Two workers wait on one condition. A lone request wakes one of them, and a finished batch with nothing
    queued wakes none: each needless wake-up is a thread switch and CPU on a small machine (benchmarks/front_cost.py).
    Serial requests therefore cost about one sleep per request, not one per worker per request and per batch."""
    sleeps: list[str] = []

    class _Counting(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            sleeps.append(threading.current_thread().name)
            return super().wait(timeout)

    engine = real_engine(tiny_bundle, workers=2)
    requests = 40

    async def main() -> list:
        batcher = Batcher(engine, BatcherConfig())
        batcher._cv = _Counting(batcher._lock)
        batcher.start()
        answers = [await batcher.submit([f"review number {i}"]) for i in range(requests)]
        batcher.stop(5)
        return answers

    answers = _run(main())
    assert len(answers) == requests and all(len(a) == 1 for a in answers)
    assert set(sleeps) <= {"baton-worker-0", "baton-worker-1"}
    assert len(sleeps) <= requests + 4  # waking every worker each time: 68 for 40


@pytest.mark.parametrize("workers", [1, 2])
def test_batched_results_equal_single_results(tiny_bundle: Path, workers: int) -> None:
    engine = SlowEngine(real_engine(tiny_bundle, workers=workers), delay=0.02)
    texts = [f"the product {'is great ' * (i % 7)} number {i}" for i in range(40)]

    async def main() -> tuple[list, list, list]:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=8))
        batcher.start()
        together = await asyncio.gather(*(batcher.submit([t]) for t in texts))
        under_load = list(engine.calls)
        alone = [await batcher.submit([t]) for t in texts]
        batcher.stop(5)
        return [r[0] for r in together], [r[0] for r in alone], under_load

    together, alone, under_load = _run(main())
    assert max(r.batch_size for r in together) > 1
    assert all(r.batch_size == 1 for r in alone)
    for a, b in zip(together, alone, strict=True):
        assert a.prediction.label == b.prediction.label
        assert abs(a.prediction.score - b.prediction.score) <= 1e-5
        assert abs(a.logits - b.logits).max() <= 1e-5
    # Two workers: batches ran two at a time, narrow, never beside a wide one; a lone request runs wide.
    assert max(in_flight for _, in_flight in under_load) == workers
    assert all(not wide for wide, in_flight in under_load if in_flight > 1)
    assert all(wide for wide, _ in engine.calls[len(under_load) :])


def test_large_requests_and_tokenizer_failures(tiny_bundle: Path) -> None:
    """A request over the inline limit is tokenized in the helper thread; a tokenizer error fails only its request."""
    inner = real_engine(tiny_bundle)
    engine = SlowEngine(inner)
    tokenize = engine.tokenize

    def fragile(texts, pairs=None, long_text=None):  # type: ignore[no-untyped-def]
        if any("boom" in t for t in texts):
            raise ValueError("tokenizer exploded")
        return tokenize(texts, pairs, long_text)

    engine.tokenize = fragile  # type: ignore[method-assign]
    texts = [f"review number {i} {'very ' * (i % 5)}good" for i in range(40)]

    async def main() -> tuple[list, list, list]:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=8))
        batcher.start()
        big = await batcher.submit(texts)
        failed = await asyncio.gather(
            batcher.submit(["fine", "boom"]), batcher.submit(["boom"] * 20), return_exceptions=True
        )
        after = await batcher.submit(["still serving"])
        batcher.stop(5)
        assert batcher.pending == 0
        return big, failed, after

    big, failed, after = _run(main())
    direct = inner(texts)
    assert [r.prediction.label for r in big] == [p.label for p in direct]
    assert max(abs(r.prediction.score - p.score) for r, p in zip(big, direct, strict=True)) <= 1e-5
    assert [type(f).__name__ for f in failed] == ["TokenizationFailed", "TokenizationFailed"]
    # the client's message never carries the exception's own text; the log and the chained cause do
    assert "tokenizer exploded" not in str(failed[0]) and "server log" in str(failed[0])
    assert isinstance(failed[0].__cause__, ValueError)
    assert len(after) == 1


@pytest.mark.timeout(120)  # a lost outcome shows up as a hang
@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_that_fails_once_is_answered_text_by_text(tiny_bundle: Path, workers: int) -> None:
    """A run that fails by chance (run 2 here) costs its texts nothing: each runs again alone and is answered."""
    engine = SlowEngine(real_engine(tiny_bundle, workers=workers), delay=0.02, fail_runs=[2])
    crashes: list[BaseException] = []
    failed_batches: list[int] = []

    class Observer:
        def batch_done(self, size: int, padded_tokens: int, inference_s: float) -> None: ...
        def queue_depth(self, depth: int) -> None: ...
        def batch_failed(self, size: int) -> None:
            failed_batches.append(size)

    async def main() -> list:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=1), Observer(), on_crash=crashes.append)
        batcher.start()
        outcomes = await asyncio.gather(*(batcher.submit([f"text {i}"]) for i in range(6)), return_exceptions=True)
        later = await batcher.submit(["after the failure"])
        batcher.stop(5)
        assert batcher.pending == 0
        return [*outcomes, later]

    outcomes = _run(main())
    assert [type(o).__name__ for o in outcomes if isinstance(o, BaseException)] == []
    assert crashes == [] and failed_batches == [1]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_text_the_model_cannot_run_is_refused_alone_and_never_stops_the_engine(
    tiny_bundle: Path, workers: int
) -> None:
    """Issue 29: a text past what the graph takes failed its whole batch as INTERNAL, and three in a row crashed the
    server. Now it alone gets InvalidRequest, its batch-mates their answers, and no number of them stops the
    engine (a probe text shows the engine is fine). A broken engine still crashes it (the test below)."""
    engine = SlowEngine(real_engine(tiny_bundle, workers=workers), fail_wider_than=24)
    crashes: list[BaseException] = []
    long_text = "a rather long review that goes on " * 6

    async def main() -> tuple[list, list, list]:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=8), on_crash=crashes.append)
        batcher.start()
        mixed = await asyncio.gather(batcher.submit(["short one", long_text, "another short"]), return_exceptions=True)
        alone = await asyncio.gather(*(batcher.submit([long_text]) for _ in range(5)), return_exceptions=True)
        after = await batcher.submit(["still serving"])
        batcher.stop(5)
        return mixed, alone, after

    mixed, alone, after = _run(main())
    assert isinstance(mixed[0], InvalidRequest) and "cannot run this text" in str(mixed[0])
    assert all(isinstance(o, InvalidRequest) for o in alone) and crashes == []
    assert len(after) == 1 and after[0].prediction.label

    async def batch_mates() -> list:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=8), on_crash=crashes.append)
        batcher.start()
        texts = ["short one", "another short", long_text]
        results = await asyncio.gather(*(batcher.submit([t]) for t in texts), return_exceptions=True)
        batcher.stop(5)
        return results

    short_a, short_b, refused = _run(batch_mates())
    assert not isinstance(short_a, BaseException) and not isinstance(short_b, BaseException)
    assert isinstance(refused, InvalidRequest) and crashes == []


@pytest.mark.timeout(120)  # a lost outcome shows up as a hang
@pytest.mark.parametrize("workers", [1, 2])
def test_every_item_gets_one_outcome_under_overload_and_repeated_failures(tiny_bundle: Path, workers: int) -> None:
    engine = SlowEngine(real_engine(tiny_bundle, workers=workers), delay=0.05, crash_on=3)
    crashes: list[BaseException] = []
    config = BatcherConfig(max_batch_size=1, max_queue_items=6, max_consecutive_failures=2)

    async def main() -> list:
        batcher = Batcher(engine, config, on_crash=crashes.append)
        batcher.start()
        outcomes = await asyncio.gather(*(batcher.submit([f"text {i}"]) for i in range(12)), return_exceptions=True)
        later = await asyncio.gather(batcher.submit(["after"]), return_exceptions=True)
        batcher.stop(5)
        assert batcher.pending == 0
        return [*outcomes, *later]

    outcomes = _run(main())
    kinds = [type(o).__name__ if isinstance(o, BaseException) else "ok" for o in outcomes]
    assert kinds.count("Overloaded") == 6  # the queue holds 6: the rest is refused at once
    assert 1 <= kinds.count("ok") <= 2 and kinds.count("BatchFailed") >= 2  # 2 failures in a row: broken engine
    assert isinstance(outcomes[-1], WorkerCrashed)  # after the crash, nothing is accepted
    assert len(crashes) == 1
    assert set(kinds) <= {"ok", "Overloaded", "BatchFailed", "WorkerCrashed"}


def test_a_request_larger_than_the_queue_is_invalid_not_retryable(tiny_bundle: Path) -> None:
    async def main() -> BaseException | None:
        batcher = Batcher(real_engine(tiny_bundle), BatcherConfig(max_queue_items=4))
        batcher.start()
        try:
            await batcher.submit(["x"] * 5)
        except RequestTooLarge as exc:
            return exc
        finally:
            batcher.stop(5)
        return None

    error = _run(main())
    assert error is not None and "the queue holds at most 4" in str(error)


def test_expired_items_are_dropped_before_inference(tiny_bundle: Path) -> None:
    import time

    engine = SlowEngine(real_engine(tiny_bundle), delay=0.2)

    async def main() -> list:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=1))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["occupies the engine"]))
        await asyncio.sleep(0.05)
        late = await asyncio.gather(
            batcher.submit(["x"], RequestState(deadline=time.monotonic() + 0.05)), return_exceptions=True
        )
        await first
        batcher.stop(5)
        return late

    (late,) = _run(main())
    assert type(late).__name__ == "DeadlineExceeded"
    assert engine.runs == 1  # the expired item never reached the engine


def test_timings_split_queue_tokenize_and_inference(tiny_bundle: Path) -> None:
    """Queue time starts after tokenization, so the three parts of a result never add up to more than its wall time."""
    import time

    # The second text waits ~delay - 0.03 s (the first's run minus its own tokenization): 0.07 s, asserted >= 0.03.
    # A 0.05 s delay left 0.02 s against an assertion of 0.02: it failed once in a full run when a sleep overshot.
    engine = SlowEngine(real_engine(tiny_bundle), delay=0.1)
    tokenize = engine.tokenize

    def slow_tokenize(texts, pairs=None, long_text=None):  # type: ignore[no-untyped-def]
        time.sleep(0.03)
        return tokenize(texts, pairs, long_text)

    engine.tokenize = slow_tokenize  # type: ignore[method-assign]

    async def timed(batcher: Batcher, text: str) -> tuple[float, object]:
        started = time.perf_counter()
        (result,) = await batcher.submit([text])
        return time.perf_counter() - started, result

    async def main() -> list:
        batcher = Batcher(engine, BatcherConfig(max_batch_size=1))
        batcher.start()
        out = await asyncio.gather(timed(batcher, "first"), timed(batcher, "second"))
        batcher.stop(5)
        return out

    (wall_a, a), (wall_b, b) = _run(main())
    for wall, r in ((wall_a, a), (wall_b, b)):
        assert r.tokenize_s >= 0.03 and r.inference_s >= 0.1
        assert r.queue_s + r.tokenize_s + r.inference_s <= wall
    assert max(a.queue_s, b.queue_s) >= 0.03  # one of the two waited for the other's run


def test_min_second_batch_holds_a_small_second_batch_back(tiny_bundle: Path) -> None:
    """Nine texts at once, batches of at most 8. With --min-second-batch 0 (the default) the first batch leaves one
    text over, so it runs narrow and the second worker takes that one at once beside it. With 4, one left over is
    too few for a second batch: the first runs wide and the last text runs after it, wide too."""

    def calls_for(min_second: int) -> list[tuple[bool, int, int]]:
        engine = SlowEngine(real_engine(tiny_bundle, workers=2), delay=0.2)
        sizes: list[int] = []
        collate = engine.collate

        def counting(items):  # type: ignore[no-untyped-def]
            sizes.append(len(items))
            return collate(items)

        engine.collate = counting  # type: ignore[method-assign]

        async def main() -> None:
            batcher = Batcher(engine, BatcherConfig(max_batch_size=8, min_second_batch=min_second))
            batcher.start()
            await batcher.submit([f"text number {i}" for i in range(9)])
            batcher.stop(5)

        _run(main())
        return [(wide, in_flight, size) for (wide, in_flight), size in zip(engine.calls, sizes, strict=True)]

    assert calls_for(4) == [(True, 1, 8), (True, 1, 1)]
    assert calls_for(0) == [(False, 1, 8), (False, 2, 1)]


@pytest.mark.parametrize(("policy", "second_wide"), [("idle", False), ("alone", True)])
def test_a_batch_of_concurrent_traffic_runs_narrow(tiny_bundle: Path, policy: str, second_wide: bool) -> None:
    """B arrives while A runs wide, so it waits for A and then runs alone. Under "idle" it runs narrow (traffic is
    concurrent: leave room for a batch beside it); under "alone" wide. C, sent after both, is serial: wide."""
    engine = SlowEngine(real_engine(tiny_bundle, workers=2), delay=0.2)

    async def main() -> None:
        batcher = Batcher(engine, BatcherConfig(wide_batches=policy))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["text a"]))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, batcher.submit(["text b"]))
        await batcher.submit(["text c"])
        batcher.stop(5)

    _run(main())
    assert engine.calls == [(True, 1), (second_wide, 1), (True, 1)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_workers_run_at_the_configured_niceness(tiny_bundle: Path) -> None:
    """Each worker thread runs `worker_nice` steps below the process; the event loop keeps the process's priority."""
    seen: list[int] = []

    class Recording(SlowEngine):
        def run(self, encoded: Encoded, wide: bool = True) -> np.ndarray:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return super().run(encoded, wide)

    base = os.getpriority(os.PRIO_PROCESS, 0)
    engine = Recording(real_engine(tiny_bundle, workers=2))

    async def main() -> None:
        batcher = Batcher(engine, BatcherConfig(worker_nice=7))
        batcher.start()
        await asyncio.gather(*(batcher.submit([f"text {i}"]) for i in range(6)))
        batcher.stop(5)

    _run(main())
    assert seen and set(seen) == {min(19, base + 7)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def test_wide_batches_and_min_batch_fill_are_validated() -> None:
    with pytest.raises(ValueError, match="wide_batches must be one of idle, alone"):
        BatcherConfig(wide_batches="sometimes")
    with pytest.raises(ValueError, match=r"min_batch_fill must be in \[0, 1\]"):
        BatcherConfig(min_batch_fill=1.5)
    with pytest.raises(ValueError, match=r"worker_nice must be in \[0, 19\]"):
        BatcherConfig(worker_nice=-1)

"""Test helpers: the real server in a background event loop on port 0, and engine wrappers for the seam."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from baton.serving.bundle import load_bundle
from baton.serving.config import ServeConfig
from baton.serving.engine import Encoded, Engine, Prediction, Tokens
from baton.serving.rpc import BatonServer


class SlowEngine:
    """The real engine, with `delay` seconds added to every run; runs numbered in `fail_runs`, every run from
    number `crash_on` on, and every run of rows wider than `fail_wider_than` tokens (a text the model cannot take,
    as past its position table) raise."""

    def __init__(
        self,
        engine: Engine,
        delay: float = 0.0,
        crash_on: int | None = None,
        fail_runs: Sequence[int] = (),
        fail_wider_than: int | None = None,
    ) -> None:
        self.inner, self.delay, self.crash_on, self.runs = engine, delay, crash_on, 0
        self.fail_runs = set(fail_runs)
        self.fail_wider_than = fail_wider_than
        self.variant, self.provider, self.workers = engine.variant, engine.provider, engine.workers
        self.calls: list[tuple[bool, int]] = []  # per run: (wide, runs in flight when it started, itself included)
        self._in_flight = 0
        self._lock = threading.Lock()

    def tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None = None, long_text: Any = None) -> list[Tokens]:
        return self.inner.tokenize(texts, pairs, long_text)

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        return self.inner.collate(items)

    def run(self, encoded: Encoded, wide: bool = True) -> np.ndarray:
        with self._lock:
            self.runs += 1
            self._in_flight += 1
            self.calls.append((wide, self._in_flight))
            crash = (self.crash_on is not None and self.runs >= self.crash_on) or self.runs in self.fail_runs
            width = encoded.inputs["input_ids"].shape[1]
            crash = crash or (self.fail_wider_than is not None and width > self.fail_wider_than)
        try:
            if crash:
                raise RuntimeError("injected engine failure")
            time.sleep(self.delay)
            return self.inner.run(encoded, wide)
        finally:
            with self._lock:
                self._in_flight -= 1

    def postprocess(self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None) -> list[Prediction]:
        return self.inner.postprocess(logits, encoded, top_k)


class ServerThread:
    """`with ServerThread(cfg) as s:` runs BatonServer in its own loop; `s.target` is host:port."""

    def __init__(self, config: ServeConfig, engine: Any = None) -> None:
        self.config = replace(config, port=0, metrics_port=0, http_port=0)
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.server: BatonServer | None = None
        self.exit_code: int | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = BatonServer(self.config, engine=self.engine)
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.exit_code = self.loop.run_until_complete(self.server.wait())

    @property
    def target(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    def metrics_text(self) -> str:
        import urllib.request

        assert self.server is not None and self.server.metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self, grace: float = 5.0) -> None:
        if self.server is not None and self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop)
            with contextlib.suppress(Exception):  # a server that already stopped itself (crash test)
                future.result(30)
        self._thread.join(30)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def real_engine(bundle_dir: Path, variant: str = "fp32", workers: int = 1) -> Engine:
    """One thread per worker: with workers=2 the wide session has 2 threads and each narrow one 1."""
    return Engine(load_bundle(bundle_dir), variant, "cpu", threads=workers, workers=workers)


def metric_value(text: str, name: str, labels: str = "") -> float:
    """Sum of the samples of `name` (optionally only lines containing `labels`)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not labels or labels in line) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head.split("{")[0] == name:
                total += float(value)
    return total

"""The HTTP load generator's caller: one request of `/v1/classify` (or `/v1/recognize`) or of the OIP v2 REST infer
route, over a keep-alive aiohttp session (a connection per concurrent client), with the same interface as the gRPC
caller in loadgen.py: `await caller(texts, timeout)`, `failures` to catch, `code(exc)` to count them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from baton.errors import BatonError
from baton.serving.http.tasks import TASK_ROUTE
from baton.task import Task
from baton.tools.bench.options import pairs_of

__all__ = ["HttpCaller", "HttpFailure"]


class HttpFailure(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class HttpCaller:
    """`protocol`: "http" (the task routes) or "http-kserve" (POST /v2/models/{model}/infer, JSON tensors).
    `request` replaces both with another request shape (path, body) for a batch of texts: another server's API
    (benchmarks/infinity_http.py)."""

    def __init__(
        self,
        target: str,
        protocol: str,
        model_name: str | None,
        token: str | None,
        request: Callable[[list[str]], tuple[str, bytes]] | None = None,
    ) -> None:
        import aiohttp

        self.aiohttp = aiohttp
        self.base = target if target.startswith("http") else f"http://{target}"
        self.protocol = protocol
        self.model_name = model_name or ""
        self.headers = {"content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self.failures: tuple[type[BaseException], ...] = (HttpFailure, aiohttp.ClientError, asyncio.TimeoutError)
        self._session: Any = None
        self._route = ""
        self._request = request

    def code(self, exc: BaseException) -> str:
        return str(exc.status) if isinstance(exc, HttpFailure) else type(exc).__name__

    def _open(self) -> Any:
        if self._session is None:
            connector = self.aiohttp.TCPConnector(limit=0, force_close=False)
            self._session = self.aiohttp.ClientSession(connector=connector, headers=self.headers)
        return self._session

    async def wait_ready(self, timeout: float) -> None:
        session = self._open()
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with session.get(f"{self.base}/v2/health/ready") as r:
                    if r.status == 200:
                        break
            except self.aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise BatonError(f"--server {self.base}: no HTTP server was ready within {timeout:.0f}s")
            await asyncio.sleep(0.1)
        if self.protocol == "http":
            async with session.get(f"{self.base}/v1/model") as r:
                task = (await r.json())["task"]
            self._route = TASK_ROUTE[Task.parse(task, f"{self.base}/v1/model")]

    def _body(self, texts: list[str]) -> tuple[str, bytes]:
        if self._request is not None:
            return self._request(texts)
        pairs = pairs_of(texts)
        if self.protocol == "http":
            return self._route, orjson.dumps({"texts": texts, **({"text_pairs": pairs} if pairs else {})})
        columns = {"text": texts, **({"text_pair": pairs} if pairs else {})}
        inputs = [{"name": n, "datatype": "BYTES", "shape": [len(c)], "data": c} for n, c in columns.items()]
        return f"/v2/models/{self.model_name}/infer", orjson.dumps({"inputs": inputs})

    async def __call__(self, texts: list[str], timeout: float) -> None:
        path, body = self._body(texts)
        limit = self.aiohttp.ClientTimeout(total=timeout)
        async with self._open().post(self.base + path, data=body, timeout=limit) as r:
            await r.read()
            if r.status != 200:
                raise HttpFailure(r.status)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

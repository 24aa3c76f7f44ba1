"""Prometheus metrics of one server, on its own registry (several servers can live in one process)."""

from __future__ import annotations

from typing import Any

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)


class ServerMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        by = ["method", "code", "model", "version"]
        self.requests = Counter("baton_requests", "Calls by method, status code and model version", by, registry=r)
        self.items = Counter("baton_items", "Texts by method, status code and model version", by, registry=r)
        self.queue_s = Histogram(
            "baton_queue_seconds", "Time an item waited for its batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tokenize_s = Histogram(
            "baton_tokenize_seconds", "Tokenization time of an item's group", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.inference_s = Histogram(
            "baton_inference_seconds", "Inference time per batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.total_s = Histogram(
            "baton_request_seconds",
            "Call time by method and model",
            ["method", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram("baton_batch_size", "Items per batch", buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram(
            "baton_batch_tokens", "Padded tokens per batch", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.batch_failures = Counter(
            "baton_batch_failures", "Batches that failed (their items got INTERNAL)", registry=r
        )
        self.depth = Gauge("baton_queue_depth", "Items waiting for a batch", registry=r)
        self.model = Gauge(
            "baton_model_info",
            "The loaded model versions",
            ["name", "version", "variant", "provider", "sha256"],
            registry=r,
        )
        self.http_requests = Counter(
            "baton_http_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "baton_http_request_seconds", "HTTP request time by route", ["route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self._http: Any = None

    # BatchObserver
    def batch_done(self, size: int, padded_tokens: int, inference_s: float) -> None:
        self.batch_size.observe(size)
        self.batch_tokens.observe(padded_tokens)
        self.inference_s.observe(inference_s)

    def queue_depth(self, depth: int) -> None:
        self.depth.set(depth)

    def batch_failed(self, size: int) -> None:
        self.batch_failures.inc()

    def serve_http(self, host: str, port: int) -> int:
        """Expose /metrics; returns the bound port (port 0 picks a free one)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return int(server.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

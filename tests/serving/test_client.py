"""The Python client against a real gRPC server on a loopback port whose servicer fails on purpose."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from baton.serving.client import Cancelled, Client, InvalidRequest, Unavailable
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc


class _Flaky(pb_grpc.TextClassifierServicer):
    """Fails the first `failures` calls with `code`, then answers."""

    def __init__(self, code: grpc.StatusCode, failures: int) -> None:
        self.code = code
        self.failures = failures
        self.calls = 0

    def Classify(self, request: pb.ClassifyRequest, context: grpc.ServicerContext) -> pb.ClassifyResponse:
        self.calls += 1
        if self.calls <= self.failures:
            context.abort(self.code, f"attempt {self.calls} fails")
        return pb.ClassifyResponse(results=[pb.Classification(label="ok", score=1.0) for _ in request.texts])


def _serve(servicer: _Flaky) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_TextClassifierServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("code", "error"), [(grpc.StatusCode.UNAVAILABLE, Unavailable), (grpc.StatusCode.CANCELLED, Cancelled)]
)
def test_inference_the_server_did_not_answer_is_retried(code: grpc.StatusCode, error: type) -> None:
    """A stopping server's dropped calls (CANCELLED from grpc core) and refusals (UNAVAILABLE) are tried again:
    classifying is idempotent. `retries=0` shows the raw status."""
    servicer = _Flaky(code, failures=2)
    server, target = _serve(servicer)
    try:
        with Client(target, timeout=10) as client:
            assert [r.label for r in client.classify(["a", "b"])] == ["ok", "ok"]
        assert servicer.calls == 3
        servicer.calls, servicer.failures = 0, 3
        with Client(target, timeout=10) as client, pytest.raises(error, match="attempt 3 fails"):
            client.classify(["a"])
        servicer.calls = 0
        with Client(target, timeout=10, retries=0) as client, pytest.raises(error, match="attempt 1 fails"):
            client.classify(["a"])
        assert servicer.calls == 1
    finally:
        server.stop(None)


def test_a_refused_request_is_not_retried() -> None:
    servicer = _Flaky(grpc.StatusCode.INVALID_ARGUMENT, failures=1)
    server, target = _serve(servicer)
    try:
        with Client(target, timeout=10) as client, pytest.raises(InvalidRequest, match="attempt 1 fails"):
            client.classify(["a"])
        assert servicer.calls == 1
    finally:
        server.stop(None)


def test_retries_are_bounded_by_grpc() -> None:
    with pytest.raises(ValueError, match="retries must be from 0 to 4"):
        Client("127.0.0.1:1", retries=5)

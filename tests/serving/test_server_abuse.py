"""A bad request, a mistake or an attack, fails alone: bounded before decoding, refused before auth costs anything,
malformed bytes answered INVALID_ARGUMENT, a failed batch answered INTERNAL while the server keeps serving."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import grpc
import pytest
from serving_helpers import ServerThread, SlowEngine, metric_value, real_engine

from baton.errors import ConfigError
from baton.serving.client import Client, InvalidRequest
from baton.serving.config import ServeConfig
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

CLASSIFY = "/baton.serving.v1.TextClassifier/Classify"
INFER = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def server(tiny_bundle: Path):  # type: ignore[no-untyped-def]
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1)) as s:
        yield s


def _raw_call(target: str, method: str, payload: bytes, metadata: tuple = ()) -> grpc.RpcError:
    """Send raw bytes as a unary request; return the error it must end with."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            call(payload, timeout=30, metadata=metadata)
    return info.value


def test_millions_of_empty_texts_are_refused_before_decoding(server: ServerThread) -> None:
    flood = b"\x0a\x00" * 500_000  # 1 MB: half a million empty strings in field 1 (texts)
    error = _raw_call(server.target, CLASSIFY, flood)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 256 texts per request" in (error.details() or "")
    # one text holding 5 MB is over --max-message-bytes (1 MiB): refused by gRPC before any handler
    big = pb.ClassifyRequest(texts=["x" * (5 << 20)]).SerializeToString()
    assert _raw_call(server.target, CLASSIFY, big).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_kserve_element_floods_are_refused_before_decoding(server: ServerThread, tiny_bundle: Path) -> None:
    contents = kpb.InferTensorContents(bytes_contents=[b""] * 100_000)
    tensor = kpb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[100_000], contents=contents)
    request = kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[tensor]).SerializeToString()
    error = _raw_call(server.target, INFER, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "too many elements" in (error.details() or "")
    raw = b"\x00\x00\x00\x00" * 100_000  # 100k empty elements in raw_input_contents
    tensor = kpb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[100_000])
    request = kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[tensor], raw_input_contents=[raw])
    error = _raw_call(server.target, INFER, request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "more than 256 texts" in (error.details() or "")


def test_malformed_protobuf_is_invalid_argument_without_a_traceback(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for method in (CLASSIFY, INFER):
        error = _raw_call(server.target, method, b"\x0a\xff\xff\xff\xff\x0f")  # a length past the end
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert "not a valid protobuf message" in (error.details() or "")
    assert not [r for r in caplog.records if r.exc_info], "a malformed request logged a traceback"
    with grpc.insecure_channel(server.target) as channel:
        stream = channel.stream_stream(
            "/baton.serving.v1.TextClassifier/ClassifyStream",
            request_serializer=lambda b: b,
            response_deserializer=pb.ClassifyResponse.FromString,
        )
        good = pb.ClassifyRequest(texts=["fine"]).SerializeToString()
        responses = stream(iter([good, b"\x0a\xff\xff"]), timeout=30)
        assert len(next(responses).results) == 1  # the good message is answered first
        with pytest.raises(grpc.RpcError) as info:
            next(responses)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("shape", "both", "message"),
    [
        ([-1, -1], False, "must have shape [N]"),
        ([-1], False, "must have shape [N]"),
        ([1, 2], False, "must have shape [N]"),
        ([2], True, "has both contents and raw_input_contents"),
        ([3], False, "has shape [3] but 2 elements"),
    ],
)
def test_kserve_shapes_and_contents_are_checked(
    server: ServerThread, tiny_bundle: Path, shape: list[int], both: bool, message: str
) -> None:
    contents = kpb.InferTensorContents(bytes_contents=[b"good", b"bad"])
    tensor = kpb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=shape, contents=contents)
    raw = [b"\x04\x00\x00\x00good\x03\x00\x00\x00bad"] if both else []
    with grpc.insecure_channel(server.target) as channel:
        stub = kpb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(
                kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[tensor], raw_input_contents=raw), timeout=30
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or "")


def test_unauthenticated_calls_are_refused_before_their_message_is_decoded(tiny_bundle: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), auth_token_file=str(token))) as s:
        # Malformed bytes: decoding them would answer INVALID_ARGUMENT; the refusal comes first.
        error = _raw_call(s.target, CLASSIFY, b"\x0a\xff\xff\xff\xff\x0f")
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        error = _raw_call(s.target, CLASSIFY, b"\x0a\x00" * 500_000)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        good = _raw_call(s.target, CLASSIFY, b"\x0a\xff\xff", metadata=(("authorization", "Bearer s3cret"),))
        assert good.code() == grpc.StatusCode.INVALID_ARGUMENT  # with the token, it is decoded (and refused)


def test_a_request_larger_than_the_queue_is_invalid_argument(tiny_bundle: Path) -> None:
    cfg = ServeConfig(bundle=str(tiny_bundle), max_queue_items=4, warmup=False)
    with ServerThread(cfg) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.TextClassifierStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Classify(pb.ClassifyRequest(texts=["x"] * 5), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the queue holds at most 4" in (info.value.details() or "")


def test_texts_the_model_cannot_run_are_refused_and_the_server_keeps_serving(tiny_bundle: Path) -> None:
    """Issue 29: three such calls used to flip health to NOT_SERVING and exit 3, with onnxruntime's own message and
    source paths in the answer. Now each is INVALID_ARGUMENT with a message of ours, and the server serves on."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    engine = SlowEngine(real_engine(tiny_bundle), fail_wider_than=24)
    long_text = "a rather long review that goes on " * 6
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), warmup=False), engine=engine) as s:
        with Client(s.target) as client:
            for _ in range(5):  # past max_consecutive_failures (3)
                with pytest.raises(InvalidRequest, match="the model cannot run this text") as refused:
                    client.classify([long_text])
                assert "injected" not in str(refused.value) and ".py" not in str(refused.value)
            assert len(client.classify(["the next one", "and another"])) == 2
        with grpc.insecure_channel(s.target) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert metric_value(s.metrics_text(), "baton_batch_failures_total") == 5
        assert s.exit_code is None


def test_port_in_use_and_bad_tls_files_are_config_errors(tiny_bundle: Path, tmp_path: Path) -> None:
    import asyncio

    from baton.serving.rpc import BatonServer

    async def start(cfg: ServeConfig) -> None:
        server = BatonServer(cfg)
        try:
            await server.start()
        finally:
            await server.stop(0)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--port: cannot bind 127.0.0.1:{port}"):
            asyncio.run(start(ServeConfig(bundle=str(tiny_bundle), port=port, http_port=0, metrics_port=None)))
        with pytest.raises(ConfigError, match="--metrics-port: cannot bind"):
            asyncio.run(start(ServeConfig(bundle=str(tiny_bundle), port=0, http_port=0, metrics_port=port)))
        with pytest.raises(ConfigError, match=f"--http-port: cannot bind 127.0.0.1:{port}"):
            asyncio.run(start(ServeConfig(bundle=str(tiny_bundle), port=0, http_port=port, metrics_port=None)))
    with pytest.raises(ConfigError, match="also --port"):
        ServeConfig(bundle=str(tiny_bundle), port=8123, http_port=8123)
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    cert.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="not a usable pair"):
        asyncio.run(start(ServeConfig(bundle=str(tiny_bundle), port=0, tls_cert=str(cert), tls_key=str(key))))


def test_a_stream_on_shutdown_answers_what_it_took_then_ends_ok(tiny_bundle: Path) -> None:
    """On stop, a stream answers the message it is working on, reads nothing more and ends with OK (before the
    change it was served for the whole grace period, then its in-flight messages got UNAVAILABLE)."""
    import asyncio
    import threading

    engine = SlowEngine(real_engine(tiny_bundle), delay=0.5)
    s = ServerThread(ServeConfig(bundle=str(tiny_bundle), warmup=False, grace_s=20), engine=engine)
    with s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.TextClassifierStub(channel)
        first_sent, stopping = threading.Event(), threading.Event()

        def requests():  # type: ignore[no-untyped-def]
            yield pb.ClassifyRequest(texts=["first"])
            first_sent.set()
            stopping.wait(10)
            yield pb.ClassifyRequest(texts=["sent after the stop began"])
            stopping.wait(30)  # keep the request side open: the server must end the stream

        responses = stub.ClassifyStream(requests(), timeout=60)
        first_sent.wait(10)
        time.sleep(0.1)  # the first message is in the engine (0.5 s)
        assert s.server is not None
        stopped = asyncio.run_coroutine_threadsafe(s.server.stop(20), s.loop)
        time.sleep(0.05)
        stopping.set()
        started = time.monotonic()
        answered = list(responses)  # ends without an error: the stream finished with OK
        assert [len(r.results) for r in answered] == [1]
        assert time.monotonic() - started < 10  # well within the 20 s grace: nothing waited for it to run out
        stopped.result(30)


@pytest.mark.timeout(120)
def test_auth_exempt_health_is_bounded_for_anonymous_clients(
    tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 29: with token auth on, 10,000 Watch streams on one connection grew RSS by 185 MB, and garbage sent to
    Health/Check logged a traceback per call. Watches are capped per connection and in all, names are bounded,
    and garbage is INVALID_ARGUMENT with no traceback."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from baton.serving.rpc.health import MAX_SERVICE_CHARS, MAX_WATCHES_PER_PEER

    token = tmp_path / "token"
    token.write_text("s3cret")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), auth_token_file=str(token), warmup=False)) as s:
        with grpc.insecure_channel(s.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            garbage = channel.unary_unary(
                "/grpc.health.v1.Health/Check", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            with caplog.at_level(logging.ERROR):
                for _ in range(20):
                    with pytest.raises(grpc.RpcError) as info:
                        garbage(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
                    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Traceback" not in caplog.text
            with pytest.raises(grpc.RpcError) as info:
                stub.Check(health_pb2.HealthCheckRequest(service="x" * (MAX_SERVICE_CHARS + 1)), timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            watches = [stub.Watch(health_pb2.HealthCheckRequest(), timeout=60) for _ in range(MAX_WATCHES_PER_PEER)]
            for watch in watches:
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            one_more = stub.Watch(health_pb2.HealthCheckRequest(), timeout=60)
            with pytest.raises(grpc.RpcError) as info:
                next(one_more)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            watches[0].cancel()
            time.sleep(0.5)
            again = stub.Watch(health_pb2.HealthCheckRequest(), timeout=60)  # a closed watch frees its place
            assert next(again).status == health_pb2.HealthCheckResponse.SERVING
            for watch in [*watches, again]:
                watch.cancel()
        assert stub is not None and s.exit_code is None

"""The real gRPC server on a loopback port with a real bundle; real clients (ours, tritonclient, grpc health)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_helpers import ServerThread, SlowEngine, metric_value, real_engine

from baton.serving import Predictor
from baton.serving.client import (
    Client,
    ClientError,
    InvalidInput,
    Overloaded,
    Timeout,
    TLSConfig,
    Unauthenticated,
    Unavailable,
)
from baton.serving.config import ServeConfig
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

TEXTS = ["I loved it", "terrible, I want my money back", "", "the plot was slow but the ending saved it"]


@pytest.fixture(scope="module")
def server(tiny_bundle: Path):  # type: ignore[no-untyped-def]
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1)) as s:
        yield s


def test_classify_matches_the_embedded_predictor(server: ServerThread, tiny_bundle: Path) -> None:
    expected = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict(TEXTS)
    with Client(server.target) as client:
        response = client.classify_response(TEXTS, top_k=1)
        got = client.classify(TEXTS)
    assert [r.label for r in got] == [p.label for p in expected]
    assert np.allclose([r.score for r in got], [p.score for p in expected], atol=1e-5)
    assert [len(r.top_k) for r in response.results] == [0 if not t.strip() else 1 for t in TEXTS]
    assert response.timings.total_us >= response.timings.inference_us > 0
    with Client(server.target) as client:
        assert client.classify([]) == []


def test_a_blank_text_is_flagged_not_labelled(server: ServerThread, tiny_bundle: Path) -> None:
    """Issue 29: an empty or whitespace-only text got a label from the model with no flag. Every surface now says
    `empty` with label "" and score 0, as `baton score` does."""
    texts = ["I loved it", "", " \n\t ", "terrible"]
    with Client(server.target) as client:
        remote = client.classify(texts, top_k=2)
    local = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict(texts, top_k=2)
    for answers in (remote, local):
        assert [a.empty for a in answers] == [False, True, True, False]
        assert [(a.label, a.score, list(a.top_k)) for a in answers[1:3]] == [("", 0.0, [])] * 2
        assert all(a.label and a.score > 0 and len(a.top_k) == 2 for a in (answers[0], answers[3]))
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "-q", "predict", "--server", server.target, "fine", " "],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and [r.get("empty", False) for r in rows] == [False, True], proc.stdout


def test_the_server_tokenizes_without_the_tokenizer_pool(server: ServerThread) -> None:
    """Its cores run inference: the pool's threads would only wait for them (serving/encoder.py, `encode_all`)."""
    assert server.server is not None
    (model,) = server.server.repository.serving()
    assert model.engine.encoder.pool is False


def test_stream_answers_each_message_in_order(server: ServerThread) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.TextClassifierStub(channel)
        requests = [pb.ClassifyRequest(texts=[t] * (i + 1)) for i, t in enumerate(TEXTS)]
        responses = list(stub.ClassifyStream(iter(requests), timeout=30))
    assert [len(r.results) for r in responses] == [1, 2, 3, 4]


def test_model_info(server: ServerThread, tiny_bundle: Path) -> None:
    with Client(server.target) as client:
        info = client.model_info()
    assert list(info.labels) == ["negative", "positive"]
    assert (info.variant, info.provider, info.max_length) == ("fp32", "cpu", 64)
    assert len(info.bundle_sha256) == 64 and info.name == tiny_bundle.name


def test_kserve_v2_with_tritonclient_raw_bytes(server: ServerThread, tiny_bundle: Path) -> None:
    import tritonclient.grpc as tc

    expected = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict(TEXTS)
    client = tc.InferenceServerClient(server.target)
    name = tiny_bundle.name
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    meta = client.get_model_metadata(name)
    assert meta.inputs[0].name == "text" and meta.inputs[0].datatype == "BYTES"
    text = tc.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_))  # raw_input_contents
    result = client.infer(name, [text], outputs=[tc.InferRequestedOutput(n) for n in ("label", "score", "scores")])
    assert [x.decode() for x in result.as_numpy("label")] == [p.label for p in expected]
    assert np.allclose(result.as_numpy("score"), [p.score for p in expected], atol=1e-5)
    assert result.as_numpy("scores").shape == (len(TEXTS), 2)
    with pytest.raises(Exception, match="unknown model"):
        client.infer("nope", [text])


def test_kserve_v2_bytes_contents(server: ServerThread, tiny_bundle: Path) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = kpb_grpc.GRPCInferenceServiceStub(channel)
        tensor = kpb.ModelInferRequest.InferInputTensor(
            name="text", datatype="BYTES", shape=[2], contents=kpb.InferTensorContents(bytes_contents=[b"good", b"bad"])
        )
        response = stub.ModelInfer(kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[tensor]), timeout=30)
        assert [o.name for o in response.outputs] == ["label", "score", "scores"]
        assert len(response.raw_output_contents) == 3
        bad = kpb.ModelInferRequest.InferInputTensor(name="text", datatype="FP32", shape=[1])
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[bad]), timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # the id is echoed in the answer: a ~1 MB one was the cost of a whole answer for free (issue 29)
        long_id = kpb.ModelInferRequest(model_name=tiny_bundle.name, inputs=[tensor], id="x" * 300_000)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(long_id, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "id has 300000 characters" in str(
            info.value.details()
        )


def test_health_and_reflection(server: ServerThread) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "baton.serving.v1.TextClassifier", "inference.GRPCInferenceService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"baton.serving.v1.TextClassifier", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= services


def test_concurrent_clients_are_batched_with_identical_results(tiny_bundle: Path) -> None:
    texts = [f"review {i}: " + "pretty good " * (i % 5) for i in range(48)]
    engine = SlowEngine(real_engine(tiny_bundle), delay=0.01)  # slow enough that requests meet in the queue
    with ServerThread(ServeConfig(bundle=str(tiny_bundle)), engine=engine) as s:
        with Client(s.target) as client:
            alone = [client.classify([t])[0] for t in texts]
            before = metric_value(s.metrics_text(), "baton_batch_size_count")
            with cf.ThreadPoolExecutor(16) as pool:
                together = list(pool.map(lambda t: client.classify([t])[0], texts))
        metrics = s.metrics_text()
    batches = metric_value(metrics, "baton_batch_size_count") - before
    assert batches < len(texts)  # some batches held more than one text
    assert metric_value(metrics, "baton_batch_size_bucket", 'le="1.0"') < metric_value(
        metrics, "baton_batch_size_count"
    )
    for a, b in zip(alone, together, strict=True):
        assert a.label == b.label and abs(a.score - b.score) <= 1e-5
    assert metric_value(metrics, "baton_requests_total", 'code="OK"') >= 2 * len(texts)


def test_deadline_overload_and_limits(tiny_bundle: Path) -> None:
    engine = SlowEngine(real_engine(tiny_bundle), delay=0.3)
    cfg = ServeConfig(
        bundle=str(tiny_bundle),
        max_queue_items=4,
        max_batch_size=1,
        max_texts_per_request=8,
        max_text_chars=100,
        warmup=False,
    )
    with ServerThread(cfg, engine=engine) as s, Client(s.target) as client:
        with pytest.raises(Timeout):
            client.classify(["x"], timeout=0.1)
        with pytest.raises(InvalidInput, match="texts\\[1\\] has 101 characters; the limit is 100"):
            client.classify(["ok", "y" * 101])
        with pytest.raises(InvalidInput, match="9 texts in one request; the limit is 8"):
            client.classify(["a"] * 9)
        time.sleep(0.5)

        def call(i: int) -> str:
            try:
                client.classify([f"t{i}"], timeout=30)
                return "ok"
            except Overloaded:
                return "overloaded"

        with cf.ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(call, range(12)))
        metrics = s.metrics_text()
    assert outcomes.count("overloaded") >= 1 and outcomes.count("ok") >= 4
    assert metric_value(metrics, "baton_requests_total", 'code="RESOURCE_EXHAUSTED"') == outcomes.count("overloaded")
    # the expired request was dropped before inference (not run) and answered
    assert (
        metric_value(metrics, "baton_items_total", 'code="DEADLINE_EXCEEDED"')
        + metric_value(metrics, "baton_items_total", 'code="CANCELLED"')
        >= 1
    )


def test_bearer_token_auth(tiny_bundle: Path, tmp_path: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), auth_token_file=str(token))) as s:
        with Client(s.target) as anonymous, pytest.raises(Unauthenticated, match="missing bearer token"):
            anonymous.classify(["x"])
        with Client(s.target, token="wrong") as wrong, pytest.raises(Unauthenticated, match="invalid bearer token"):
            wrong.classify(["x"])
        with Client(s.target, token="s3cret") as good:
            assert len(good.classify(["x"])) == 1
        with grpc.insecure_channel(s.target) as channel:  # health is exempt
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)


@pytest.mark.parametrize(
    ("host", "flags", "open_"),
    [
        ("127.0.0.1", {}, False),
        ("::1", {}, False),
        ("localhost", {}, False),
        ("0.0.0.0", {}, True),
        ("[::]", {}, True),
        ("10.1.2.3", {}, True),
        ("0.0.0.0", {"auth_token_file": "TOKEN"}, False),
        ("0.0.0.0", {"tls_cert": "CERT", "tls_key": "KEY"}, True),  # encrypted, but anyone may still call
    ],
)
def test_a_server_open_to_anyone_is_recognised(tmp_path: Path, host: str, flags: dict, open_: bool) -> None:
    """Issue 29: the image and manifests listened on 0.0.0.0 with nothing asked of callers; the server now warns."""
    from baton.serving.rpc.security import open_to_anyone

    for name in flags.values():
        (tmp_path / name).write_text("x")
    paths = {key: str(tmp_path / name) for key, name in flags.items()}
    assert open_to_anyone(ServeConfig(bundle=str(tmp_path), host=host, **paths)) is open_


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _check_https(s: ServerThread, ca: Path, client: tuple[Path, Path] | None = None) -> None:
    """The HTTP port serves the same TLS (and asks for the same client certificates) as the gRPC port."""
    import ssl
    import urllib.error
    import urllib.request

    assert s.server is not None
    url = f"https://127.0.0.1:{s.server.http_port}/v2/health/ready"
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no client certificate: refused
            urllib.request.urlopen(url, context=context, timeout=10)
        context.load_cert_chain(str(client[0]), str(client[1]))
    with urllib.request.urlopen(url, context=context, timeout=10) as r:
        assert r.status == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plaintext HTTP to a TLS port
        urllib.request.urlopen(url.replace("https", "http"), timeout=10)


def test_tls_and_mutual_tls(tiny_bundle: Path, tmp_path: Path) -> None:
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    )
    ckey, ccert = tmp_path / "client.key", tmp_path / "client.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ckey),
        "-out",
        str(ccert),
        "-days",
        "1",
        "-subj",
        "/CN=client",
    )
    cfg = ServeConfig(bundle=str(tiny_bundle), tls_cert=str(cert), tls_key=str(key))
    with ServerThread(cfg) as s:
        with Client(s.target, tls=TLSConfig(root_ca=str(cert))) as client:
            assert len(client.classify(["secure"])) == 1
        cli = [sys.executable, "-m", "baton", "-q", "predict", "--server", s.target, "--tls-ca", str(cert), "secure"]
        proc = subprocess.run(cli, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and '"text": "secure"' in proc.stdout, proc.stderr
        half = subprocess.run([*cli, "--tls-cert", str(cert)], capture_output=True, text=True, timeout=120)
        assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr
        with Client(s.target, timeout=3) as plaintext, pytest.raises(Unavailable) as refused:
            plaintext.classify(["x"])
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE  # no TLS handshake: never connected
        _check_https(s, cert)
    mtls = ServeConfig(bundle=str(tiny_bundle), tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ccert))
    with ServerThread(mtls) as s:
        tls = TLSConfig(root_ca=str(cert), client_cert=str(ccert), client_key=str(ckey))
        with Client(s.target, tls=tls) as client:
            assert len(client.classify(["mutual"])) == 1
        no_cert = Client(s.target, tls=TLSConfig(root_ca=str(cert), server_name="localhost"), timeout=3)
        with no_cert, pytest.raises(Unavailable) as refused:
            no_cert.classify(["x"])
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE  # the server asked for a client certificate
        _check_https(s, cert, (ccert, ckey))


def test_worker_crash_fails_pending_and_flips_health(tiny_bundle: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    engine = SlowEngine(real_engine(tiny_bundle), delay=0.05, crash_on=3)
    cfg = ServeConfig(bundle=str(tiny_bundle), max_batch_size=1, warmup=False, grace_s=2)
    s = ServerThread(cfg, engine=engine)
    with s:
        channel = grpc.insecure_channel(s.target)
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.TextClassifierStub(channel)

        def call(i: int) -> str:
            try:
                stub.Classify(pb.ClassifyRequest(texts=[f"t{i}"]), timeout=30)
                return "OK"
            except grpc.RpcError as exc:
                return exc.code().name

        with cf.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(call, range(8)))
        assert "INTERNAL" in codes
        assert set(codes) <= {"OK", "INTERNAL", "UNAVAILABLE"}  # every request answered, none left hanging
        deadline = time.time() + 10
        while time.time() < deadline and s.exit_code is None:
            time.sleep(0.05)
        assert s.exit_code == 3
        try:
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            assert status != health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            pass  # the server has already stopped: also not serving
        channel.close()


def _serve_process(bundle: Path, *flags: str) -> subprocess.Popen[str]:
    """`baton serve` as its own process on ports it picks; its first stdout line names them."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baton",
            "serve",
            str(bundle),
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--http-port",
            "0",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_answers_every_accepted_request_and_exits_zero(tiny_bundle: Path, tmp_path: Path, loop: str) -> None:
    """On either event loop (`--event-loop`; auto picks uvloop where it installs)."""
    if loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop does not install on Windows")
    proc = _serve_process(tiny_bundle, "--grace-s", "20", "--event-loop", loop)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "baton serving" in line, proc.stderr.read() if proc.stderr else ""
        target = line.split(" on ")[1].split(",")[0].strip()
        client = Client(target, timeout=30)  # retries what the server did not answer (UNAVAILABLE, CANCELLED)
        texts = ["a fairly long review text that takes some work " * 6] * 64

        def call(i: int) -> str:
            try:
                client.classify(texts)
                return "OK"
            except ClientError as exc:
                return exc.code.name

        with cf.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(call, i) for i in range(48)]
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            outcomes = [f.result() for f in futures]
        assert proc.wait(60) == 0
        assert outcomes.count("OK") >= 1
        # every call was answered, or refused as UNAVAILABLE once the server had gone (after the client's retries);
        # none failed (INTERNAL), and the server cancelled no call it had accepted
        assert set(outcomes) <= {"OK", "UNAVAILABLE"}, outcomes
        assert proc.stderr is not None
        log = proc.stderr.read()
        assert f"event loop: {loop}" in log and "cancelled while draining" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_predict_through_the_server(server: ServerThread) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "-q", "predict", "--server", server.target, "--top-k", "1", "great", "awful"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["great", "awful"] and all(len(r["top_k"]) == 1 for r in rows)
    down = subprocess.run(
        [sys.executable, "-m", "baton", "-q", "predict", "--server", "127.0.0.1:1", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 2 and "--server 127.0.0.1:1: UNAVAILABLE" in down.stderr


def test_async_client(server: ServerThread, tiny_bundle: Path) -> None:
    import asyncio

    from baton.serving.client import AsyncClient

    async def main() -> tuple[list, Exception | None]:
        async with AsyncClient(server.target) as client:
            results = await client.classify(TEXTS, top_k=1)
            try:
                await client.classify(["x"] * 1000)
                error = None
            except InvalidInput as exc:
                error = exc
        return results, error

    results, error = asyncio.run(main())
    expected = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict(TEXTS)
    assert [r.label for r in results] == [p.label for p in expected]
    assert error is not None and "limit is 256" in str(error)


@pytest.mark.parametrize("policy", ["round_robin", "pick_first"])
def test_client_load_balancing_over_two_live_servers(tiny_bundle: Path, policy: str) -> None:
    """`load_balancing="round_robin"` spreads calls over every address of the target (two real servers here, as a
    headless Service's DNS name resolves to its pods); gRPC's default, pick_first, sends them all to one."""
    cfg = ServeConfig(bundle=str(tiny_bundle), device="cpu", variant="fp32")
    with ServerThread(cfg) as a, ServerThread(cfg) as b:
        target = f"ipv4:{a.target},{b.target}"
        with Client(target, load_balancing=policy) as client:
            for _ in range(20):
                assert len(client.classify(["fine"])) == 1
        calls = [metric_value(s.metrics_text(), "baton_requests_total", 'method="Classify"') for s in (a, b)]
    assert sum(calls) == 20
    if policy == "round_robin":
        assert min(calls) >= 5, calls
    else:
        assert sorted(calls) == [0, 20], calls


def test_client_refuses_an_unknown_load_balancing_policy() -> None:
    with pytest.raises(ValueError, match="load_balancing must be one of pick_first, round_robin"):
        Client("127.0.0.1:1", load_balancing="random")


@pytest.mark.parametrize(("max_pending", "refused"), [(4, True), (20000, False)])
def test_calls_waiting_for_a_busy_event_loop_are_kept_up_to_max_pending_calls(
    tiny_bundle: Path, max_pending: int, refused: bool
) -> None:
    """30 calls arrive while the server's event loop is blocked for 1 s, so they wait in grpc core's pending-call
    queue. Past `--max-pending-calls` core refuses them (CANCELLED: what bystanders saw in the deadline storm with
    grpc's default limits); with the default every call is answered once the loop is free."""
    cfg = ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1, max_pending_calls=max_pending)
    with ServerThread(cfg) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.TextClassifierStub(channel)
        stub.Classify(pb.ClassifyRequest(texts=["warm"]), timeout=10)
        s.loop.call_soon_threadsafe(time.sleep, 1.0)
        time.sleep(0.1)
        futures = [stub.Classify.future(pb.ClassifyRequest(texts=["x"]), timeout=20) for _ in range(30)]
        codes = []
        for future in futures:
            try:
                future.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    if refused:
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED}
    else:
        assert codes == [grpc.StatusCode.OK] * 30


def test_a_second_server_falls_back_from_the_default_metrics_port(tiny_bundle: Path) -> None:
    """Issue 29: a second `baton serve` on one machine failed at start, its default metrics port taken by the first.
    It now serves metrics on a free port, says so, and prints it; a port chosen by hand that is taken still fails."""
    import re
    import socket
    import urllib.request

    from baton.serving.config import DEFAULT_METRICS_PORT

    with socket.socket() as holder, socket.socket() as other:
        with contextlib.suppress(OSError):  # already held by another process: the same case
            holder.bind(("127.0.0.1", DEFAULT_METRICS_PORT))
            holder.listen(1)
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        proc = subprocess.Popen(
            [sys.executable, "-m", "baton", "serve", str(tiny_bundle), "--port", "0", "--http-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            found = re.search(r"metrics on :(\d+)/metrics", line)
            assert found and int(found.group(1)) != DEFAULT_METRICS_PORT, line + proc.stderr.read()
            with urllib.request.urlopen(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=10) as r:
                assert "baton_requests_total" in r.read().decode()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            assert f"port {DEFAULT_METRICS_PORT} is in use" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
        chosen = other.getsockname()[1]
        taken = subprocess.run(
            [
                sys.executable,
                "-m",
                "baton",
                "serve",
                str(tiny_bundle),
                "--port",
                "0",
                "--http-port",
                "0",
                "--metrics-port",
                str(chosen),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert taken.returncode == 2 and f"--metrics-port: cannot bind 127.0.0.1:{chosen}" in taken.stderr


def test_a_second_sigterm_forces_the_exit(tiny_bundle: Path) -> None:
    """Issue 29: a second SIGTERM was ignored while the server finished its accepted requests (grace up to 60 s
    here); operators expect it to end the process at once."""
    import concurrent.futures as cf

    proc = _serve_process(tiny_bundle, "--grace-s", "60")
    try:
        assert proc.stdout is not None
        target = proc.stdout.readline().split(" on ")[1].split(",")[0].strip()
        client = Client(target, timeout=120)
        texts = ["a fairly long review text that takes some work " * 6] * 64
        with cf.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client.classify, texts) for _ in range(32)]  # well over a few seconds of work
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            waited = time.monotonic() - started
            for future in futures:
                future.exception()  # each call got an outcome: answered, or failed when the process went
        assert code == 128 + signal.SIGTERM.value and waited < 10, (code, waited)
        assert proc.stderr is not None and "exiting now" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)

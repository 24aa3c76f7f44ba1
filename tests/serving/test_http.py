"""The HTTP front on a real server on a loopback port (the committed tiny bundle), called by real clients:
tritonclient.http (JSON and binary tensors), urllib, raw sockets for the slow and oversized cases."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_helpers import ServerThread, SlowEngine, metric_value, real_engine

from baton.serving.client import Client
from baton.serving.config import ServeConfig

TEXTS = ["I loved it", "terrible, I want my money back", "", "the plot was slow but the ending saved it"]


@pytest.fixture(scope="module")
def server(tiny_bundle: Path):  # type: ignore[no-untyped-def]
    config = ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1, http_body_timeout_s=1.0)
    with ServerThread(config) as s:
        yield s


def _url(s: ServerThread, path: str) -> str:
    assert s.server is not None and s.server.http_port
    return f"http://127.0.0.1:{s.server.http_port}{path}"


def _call(
    s: ServerThread, path: str, body: Any = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else (headers or {})
    request = urllib.request.Request(_url(s, path), data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _raw(s: ServerThread, payload: bytes, wait: float = 10.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it (or `wait` passes)."""
    assert s.server is not None
    with socket.create_connection(("127.0.0.1", s.server.http_port), timeout=wait) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused mid-way: read the answer
            sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_tritonclient_http_matches_grpc_for_both_encodings(server: ServerThread, tiny_bundle: Path) -> None:
    import tritonclient.grpc as tg
    import tritonclient.http as th

    assert server.server is not None
    name = tiny_bundle.name
    client = th.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    assert client.get_server_metadata()["name"] == "baton"
    meta = client.get_model_metadata(name)
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "score", "scores"]
    array = np.array([t.encode() for t in TEXTS], dtype=np.object_)

    gclient = tg.InferenceServerClient(server.target)
    gtext = tg.InferInput("text", [len(TEXTS)], "BYTES")
    gtext.set_data_from_numpy(array)
    expected = gclient.infer(name, [gtext])

    for binary in (True, False):
        text = th.InferInput("text", [len(TEXTS)], "BYTES")
        text.set_data_from_numpy(array, binary_data=binary)
        outputs = [th.InferRequestedOutput(n, binary_data=binary) for n in ("label", "score", "scores")]
        result = client.infer(name, [text], outputs=outputs, request_id="req-7")
        assert result.get_response()["id"] == "req-7"
        labels = [x if isinstance(x, bytes) else x.encode() for x in result.as_numpy("label")]  # JSON: str
        assert labels == list(expected.as_numpy("label")), binary
        assert np.allclose(result.as_numpy("score"), expected.as_numpy("score"), atol=1e-6)
        assert np.allclose(result.as_numpy("scores"), expected.as_numpy("scores"), atol=1e-6)
        assert result.as_numpy("scores").shape == (len(TEXTS), 2)
    only_label = client.infer(name, [text], outputs=[th.InferRequestedOutput("label")])
    assert [o["name"] for o in only_label.get_response()["outputs"]] == ["label"]
    with pytest.raises(th.InferenceServerException, match="unknown model"):
        client.infer("nope", [text])


def test_v1_classify_answers_what_the_python_client_returns(server: ServerThread) -> None:
    status, headers, body = _call(server, "/v1/classify", {"texts": TEXTS, "top_k": 2})
    assert status == 200 and headers["content-type"] == "application/json"
    got = json.loads(body)["results"]
    with Client(server.target) as client:
        expected = client.classify(TEXTS, top_k=2)
    assert [r["label"] for r in got] == [e.label for e in expected]
    assert np.allclose([r["score"] for r in got], [e.score for e in expected], atol=1e-6)
    assert [[x["label"] for x in r["top_k"]] for r in got] == [[x[0] for x in e.top_k] for e in expected]
    assert [r["empty"] for r in got] == [e.empty for e in expected] == [False, False, True, False]
    status, _, body = _call(server, "/v1/classify", {"texts": ["ok"], "raw_scores": True, "top_k": 0})
    (row,) = json.loads(body)["results"]
    assert len(row["logits"]) == 2 and len(row["top_k"]) == 2  # top_k 0: every label
    # curl -d sends a form content type by default: read as JSON all the same
    status, _, body = _call(
        server, "/v1/classify", b'{"texts": ["ok"]}', {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200 and len(json.loads(body)["results"]) == 1


def test_model_info_and_the_openapi_document(server: ServerThread, tiny_bundle: Path) -> None:
    status, _, body = _call(server, "/v1/model")
    info = json.loads(body)
    assert status == 200 and info["labels"] == ["negative", "positive"] and info["name"] == tiny_bundle.name
    assert info["card"] == f"/v1/models/{info['name']}/card" and info["version"] == "1"
    assert _call(server, info["card"])[2] == _call(server, "/v1/model/card")[2]
    status, headers, body = _call(server, "/v1/model/card")
    assert status == 200 and headers["content-type"].startswith("text/markdown")
    assert body == (tiny_bundle / "README.md").read_bytes()
    with Client(server.target) as client:
        assert client.model_info().card == body.decode()  # gRPC carries the same card
    status, _, body = _call(server, "/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.")
    assert server.server is not None
    routes = server.server._http.app.routes  # type: ignore[union-attr]
    assert {(r.pattern, r.method.lower()) for r in routes} == {(p, m) for p, ops in doc["paths"].items() for m in ops}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    refs = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for ops in doc["paths"].values()
        for op in ops.values()
        if "requestBody" in op
    }
    assert refs <= set(doc["components"]["schemas"])


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/nope", None, 404, "no route /nope"),
        ("/v1/classify", b"{not json", 400, "not JSON"),
        ("/v1/classify", [1, 2], 400, "JSON object"),
        ("/v1/classify", {"text": ["a"]}, 400, "unknown key(s) text"),
        ("/v1/classify", {"texts": "a"}, 400, "list of strings"),
        ("/v1/classify", {"texts": [1]}, 400, "list of strings"),
        ("/v1/classify", {"texts": ["a"] * 257}, 400, "the limit is 256"),
        ("/v1/classify", {"texts": ["a" * 20001]}, 400, "the limit is 20000"),
        ("/v1/classify", {"texts": ["a"], "top_k": -1}, 400, "top_k"),
        ("/v1/classify", {"texts": ["a"], "top_k": True}, 400, "top_k"),
        ("/v1/classify", {"texts": ["a"], "text_pairs": ["b"]}, 400, "single texts"),
        (
            "/v1/recognize",
            {"texts": ["a"]},
            409,
            "for text-classification, not token-classification: POST /v1/classify",
        ),
        ("/v2/models/nope", None, 404, "unknown model 'nope'"),
        ("/v2/models/{m}/versions/2", None, 404, "has no version '2' serving; it serves versions [1]"),
        ("/v2/models/{m}/infer", {"inputs": []}, 400, "inputs must be text"),
        (
            "/v2/models/{m}/infer",
            {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": ["a"]}]},
            400,
            "BYTES",
        ),
        (
            "/v2/models/{m}/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a"]}]},
            400,
            "1 elements",
        ),
        (
            "/v2/models/{m}/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [1]}]},
            400,
            "list of strings",
        ),
        (
            "/v2/models/{m}/infer",
            {
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
                "outputs": [{"name": "x"}],
            },
            400,
            "unknown output",
        ),
        ("/v2/models/{m}/infer", {"id": "i" * 257, "inputs": []}, 400, "the limit is 256"),
        (
            "/v2/models/{m}/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 9}}]},
            400,
            "passes the end",
        ),
        ("/v2/models/{m}/infer", {"inputs": [{"name": "text"}] * 9}, 400, "at most 2"),
    ],
)
def test_every_bad_request_gets_a_4xx_and_a_json_error(
    server: ServerThread, tiny_bundle: Path, path: str, body: Any, status: int, message: str
) -> None:
    got, headers, raw = _call(server, path.replace("{m}", tiny_bundle.name), body)
    assert got == status and headers["content-type"] == "application/json"
    assert message in json.loads(raw)["error"]


def test_methods_types_and_sizes_are_refused_with_their_own_status(server: ServerThread) -> None:
    status, headers, body = _call(server, "/v1/classify", method="GET")
    assert status == 405 and headers["allow"] == "POST" and "takes POST" in json.loads(body)["error"]
    status, _, body = _call(server, "/v1/classify", b"<xml/>", {"Content-Type": "text/xml"})
    assert status == 415
    # a declared length past the limit is refused before any of the body is read: nothing is sent after the head
    head = (
        b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n"
    )
    answer = _raw(server, head)
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is 1048576" in answer
    # a chunked body that grows past the limit is cut off at the limit
    chunk = b"x" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    head = b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _raw(server, head + chunked).startswith(b"HTTP/1.1 413")


def test_a_slow_or_bloated_request_cannot_hold_the_server(server: ServerThread) -> None:
    started = time.monotonic()
    head = b'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"texts":'
    assert _raw(server, head).startswith(b"HTTP/1.1 408")  # a body that stops arriving: 1 s here
    assert _raw(server, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408")  # head stalls
    assert time.monotonic() - started < 8
    bloated = b"GET / HTTP/1.1\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 1000) for i in range(200))
    answer = _raw(server, bloated)
    assert answer.startswith(b"HTTP/1.1 431") and b"content-type: application/json" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"error": "request head too large"}
    status, _, _ = _call(server, "/v2/health/ready")
    assert status == 200  # still serving


def test_answers_are_not_held_back_by_nagle(server: ServerThread) -> None:
    """Every accepted connection has TCP_NODELAY: without it, an answer written as head then body waited ~40 ms for
    the client's delayed ACK (the listening socket was made with proto 0, which asyncio does not take for TCP)."""
    import http.client

    assert server.server is not None and server.server._http is not None
    connection = http.client.HTTPConnection("127.0.0.1", server.server.http_port, timeout=10)
    connection.request("GET", "/v2/health/live")
    assert connection.getresponse().read() == b'{"live":true}'
    held = server.server._http._server.server_state.connections
    flags = [c.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in held]
    connection.close()
    assert flags and all(flags), flags


def test_http_requests_are_in_the_metrics(server: ServerThread) -> None:
    for _ in range(3):
        _call(server, "/v1/classify", {"texts": ["fine"]})
    _call(server, "/nope")
    text = server.metrics_text()
    assert metric_value(text, "baton_http_requests_total", 'route="Classify",status="200"') >= 3
    assert metric_value(text, "baton_http_requests_total", 'route="unrouted",status="404"') >= 1
    assert metric_value(text, "baton_requests_total", 'code="OK",method="http.Classify"') >= 3


def test_the_bearer_token_is_checked_before_the_body(tiny_bundle: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), auth_token_file=str(token), warmup=False)) as s:
        # the head promises a megabyte that never comes: 401 at once, not a wait for the body
        started = time.monotonic()
        head = b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
        answer = _raw(s, head)
        assert answer.startswith(b"HTTP/1.1 401") and b"missing bearer token" in answer
        assert b"www-authenticate: Bearer" in answer and time.monotonic() - started < 2
        assert _call(s, "/v1/classify", {"texts": ["a"]}, {"Authorization": "Bearer nope"})[0] == 401
        assert _call(s, "/v1/model")[0] == 401
        status, _, body = _call(s, "/v1/classify", {"texts": ["a"]}, {"Authorization": "Bearer s3cret"})
        assert status == 200 and len(json.loads(body)["results"]) == 1
        for public in ("/v2/health/live", "/v2/health/ready", "/", "/page.js", "/openapi.json"):
            assert _call(s, public)[0] == 200, public


def test_stopping_answers_every_http_request_in_flight(tiny_bundle: Path) -> None:
    engine = SlowEngine(real_engine(tiny_bundle), delay=0.3)
    s = ServerThread(ServeConfig(bundle=str(tiny_bundle), warmup=False, grace_s=10), engine=engine)
    with s, cf.ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(_call, s, "/v1/classify", {"texts": [f"text {i}"]}) for i in range(8)]
        time.sleep(0.2)
        s.stop(10)
        statuses = [c.result(30)[0] for c in calls]
    assert statuses == [200] * 8

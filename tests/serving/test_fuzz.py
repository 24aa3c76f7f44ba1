"""Property-based fuzzing (hypothesis), bounded so it runs in `make test`.

Both APIs: every message, well-formed or not, gets an answer or the right status code, never UNKNOWN or INTERNAL,
and the server stays SERVING. Bundles: a mutated manifest or file is one BundleError, and nothing outside the
bundle is ever opened.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import ServerThread

from baton.errors import BundleError
from baton.serving import load_bundle
from baton.serving.config import ServeConfig
from baton.serving.engine import Engine
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.v1 import classifier_pb2 as pb

_FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.fixture(scope="module")
def fuzz_server(tiny_bundle: Path) -> Iterator[ServerThread]:
    cfg = ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1, max_texts_per_request=16, max_text_chars=200)
    with ServerThread(cfg) as s:
        yield s


def _status(target: str, method: str, payload: bytes) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(payload, timeout=30)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _assert_serving(target: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=250)  # protobuf strings are valid UTF-8
_CLASSIFY = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda texts, pairs, top_k, raw: pb.ClassifyRequest(
            texts=texts, text_pairs=pairs, raw_scores=raw, **({"top_k": top_k} if top_k is not None else {})
        ).SerializeToString(),
        st.lists(_TEXT, max_size=20),
        st.lists(_TEXT, max_size=3),
        st.none() | st.integers(0, 2**32 - 1),
        st.booleans(),
    ),
)


@_FUZZ
@given(payload=_CLASSIFY)
def test_classify_answers_every_message_well(fuzz_server: ServerThread, payload: bytes) -> None:
    code = _status(fuzz_server.target, "/baton.serving.v1.TextClassifier/Classify", payload)
    assert code in _EXPECTED, code


def _tensor(name: str, datatype: str, shape: list[int], values: list[bytes] | None) -> Any:
    contents = kpb.InferTensorContents(bytes_contents=values) if values is not None else None
    return kpb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape, contents=contents)


def _infer(model: str, tensors: list[Any], raw: list[bytes], outputs: list[str]) -> bytes:
    wanted = [kpb.ModelInferRequest.InferRequestedOutputTensor(name=o) for o in outputs]
    request = kpb.ModelInferRequest(model_name=model, inputs=tensors, raw_input_contents=raw, outputs=wanted)
    return request.SerializeToString()  # type: ignore[no-any-return]


_TENSORS = st.lists(
    st.builds(
        _tensor,
        st.sampled_from(["text", "text_pair", "other", ""]),
        st.sampled_from(["BYTES", "FP32", "INT64", ""]),
        st.lists(st.integers(-3, 40), max_size=3),
        st.none() | st.lists(st.binary(max_size=40), max_size=20),
    ),
    max_size=3,
)


@_FUZZ
@given(
    model=st.sampled_from(["bundle", "nope", ""]),
    tensors=_TENSORS,
    raw=st.lists(st.binary(max_size=120), max_size=3),
    outputs=st.lists(st.sampled_from(["label", "score", "scores", "logits"]), max_size=3),
    garbage=st.none() | st.binary(max_size=300),
)
def test_model_infer_answers_every_message_well(
    fuzz_server: ServerThread,
    tiny_bundle: Path,
    model: str,
    tensors: list[Any],
    raw: list[bytes],
    outputs: list[str],
    garbage: bytes | None,
) -> None:
    name = tiny_bundle.name if model == "bundle" else model
    payload = garbage if garbage is not None else _infer(name, tensors, raw, outputs)
    code = _status(fuzz_server.target, "/inference.GRPCInferenceService/ModelInfer", payload)
    assert code in _EXPECTED, code


def test_the_server_is_still_serving_after_the_fuzzing(fuzz_server: ServerThread) -> None:
    _assert_serving(fuzz_server.target)
    assert fuzz_server.exit_code is None


# ---- bundles ---------------------------------------------------------------------------------------------------
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["../outside.json", "/etc/passwd", "model.onnx", "tokenizer.json", ".", "a/b"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_PATHS = st.sampled_from(
    [
        ("name",),
        ("labels",),
        ("threshold",),
        ("max_length",),
        ("inputs",),
        ("input_names",),
        ("problem_type",),
        ("task",),
        ("files",),
        ("tokenizer",),
        ("tokenizer", "file"),
        ("tokenizer", "pad_id"),
        ("tokenizer", "max_length"),
        ("tokenizer", "truncation_side"),
        ("files", "model.onnx", "sha256"),
        ("files", "model.onnx", "bytes"),
        ("files", "model.onnx", "variant"),
        ("files", "tokenizer.json"),
        ("files", "../outside.json"),
    ]
)


def _mutate(manifest: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool) -> None:
    node: Any = manifest
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(_PATHS, _VALUES, st.booleans()), min_size=1, max_size=3))
def test_mutated_manifests_are_one_bundle_error_and_stay_inside(
    tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory, mutations: list[Any]
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    copy = root / "b"
    shutil.copytree(tiny_bundle, copy)
    (root / "outside.json").write_text("{}")
    manifest = json.loads((copy / "bundle.json").read_text())
    for path, value, delete in mutations:
        _mutate(manifest, path, value, delete)
    (copy / "bundle.json").write_text(json.dumps(manifest))
    _OPENED.clear()
    _WATCHING.append(True)
    try:
        engine = Engine(load_bundle(copy), "fp32")
    except BundleError as exc:
        assert "\n" not in str(exc)  # one line
        return
    finally:
        _WATCHING.clear()
    # Loaded: every path it reads is a plain file directly inside the bundle.
    inside = copy.resolve()
    bundle = engine.bundle
    paths = [bundle.tokenizer_path, *(m.path for m in bundle.models.values())]
    assert all(p.resolve().parent == inside for p in paths), paths
    outside = [p for p in _OPENED if not Path(p).resolve().is_relative_to(inside)]
    assert not outside, outside


_OPENED: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Python-level opens while a bundle loads (onnxruntime and tokenizers read their files in native code; the
    assertion on their paths above covers those)."""
    if _WATCHING and event == "open" and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)

"""`baton serve DIR`: a model repository of copies of the committed tiny bundle on a real server, called by real
clients (ours, tritonclient grpc and http, urllib), with models loaded, swapped and unloaded while calls go on."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from serving_helpers import ServerThread

from baton.serving.client import Client, ClientError, InvalidInput, NotFound
from baton.serving.config import ServeConfig


def _repo(tmp_path: Path, tiny_bundle: Path, layout: dict[str, list[int] | None]) -> Path:
    """`layout`: model name -> version numbers (None: the bundle sits directly in the model's folder)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name, versions in layout.items():
        for version in versions or [None]:
            shutil.copytree(tiny_bundle, root / name / str(version) if version else root / name)
    return root


def _serve(root: Path, **kwargs: Any) -> ServerThread:
    return ServerThread(ServeConfig(bundle=str(root), threads=1, workers=1, **kwargs))


def _version(s: ServerThread, model: str) -> str:
    with Client(s.target, model=model) as client:
        return str(client.model_info().version)


def _tc(s: ServerThread) -> Any:
    import tritonclient.grpc as tg

    return tg.InferenceServerClient(s.target)


def test_a_repository_serves_every_model_by_name_and_lists_them(tmp_path: Path, tiny_bundle: Path) -> None:
    root = _repo(tmp_path, tiny_bundle, {"sentiment": [1, 2], "topic": None})
    (root / "junk").mkdir()
    with _serve(root) as s:
        assert _version(s, "sentiment") == "2" and _version(s, "topic") == "1"  # latest: the highest version
        with Client(s.target, model="topic") as client:
            assert len(client.classify(["fine"])) == 1
        with Client(s.target) as anonymous, pytest.raises(InvalidInput, match=r"several models: name one"):
            anonymous.classify(["fine"])
        with Client(s.target, model="nope") as client, pytest.raises(NotFound, match="unknown model 'nope'"):
            client.classify(["fine"])
        index = {
            (m["name"], m["version"]): m["state"] for m in _tc(s).get_model_repository_index(as_json=True)["models"]
        }
        assert index == {("sentiment", "1"): "UNAVAILABLE", ("sentiment", "2"): "READY", ("topic", "1"): "READY"}
        assert _tc(s).is_model_ready("sentiment", "2") and not _tc(s).is_model_ready("sentiment", "1")
        assert s.server is not None
        base = f"http://127.0.0.1:{s.server.http_port}"
        request = urllib.request.Request(
            f"{base}/v1/classify", json.dumps({"texts": ["ok"], "model": "topic"}).encode()
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert len(json.loads(r.read())["results"]) == 1
        with urllib.request.urlopen(f"{base}/v2/models/sentiment", timeout=30) as r:
            assert json.loads(r.read())["versions"] == ["2"]


def test_a_lone_bundle_answers_to_the_name_it_reports_wherever_it_was_copied(tmp_path: Path, tiny_bundle: Path) -> None:
    """`baton serve BUNDLE` names its one model as the manifest says (or `--model-name`), not after the folder it was
    copied to: the name GetModelInfo, KServe metadata and /v1/model report is the name a call may give."""
    import tritonclient.grpc as tg

    manifest_name = json.loads((tiny_bundle / "bundle.json").read_text())["name"]
    copy = tmp_path / "mounted-elsewhere"
    shutil.copytree(tiny_bundle, copy)
    for flag, expected in ((None, manifest_name), ("sentiment", "sentiment")):
        with _serve(copy, model_name=flag) as s:
            with Client(s.target) as anonymous:
                reported = anonymous.model_info().name
            assert reported == expected != copy.name
            with Client(s.target, model=reported) as named:
                assert len(named.classify(["fine"])) == 1
            assert _tc(s).get_model_metadata(reported).name == expected
            text = tg.InferInput("text", [1], "BYTES")
            text.set_data_from_numpy(__import__("numpy").array([b"fine"], dtype=object))
            assert _tc(s).infer(reported, [text]).as_numpy("label").shape == (1,)
            with Client(s.target, model=copy.name) as by_folder, pytest.raises(NotFound, match="unknown model"):
                by_folder.classify(["fine"])


def test_version_policy_all_serves_each_version_by_number(tmp_path: Path, tiny_bundle: Path) -> None:
    import numpy as np
    import tritonclient.grpc as tg

    root = _repo(tmp_path, tiny_bundle, {"sentiment": [1, 2]})
    with _serve(root, version_policy="all") as s:
        client = _tc(s)
        text = tg.InferInput("text", [1], "BYTES")
        text.set_data_from_numpy(np.array([b"fine"], dtype=np.object_))
        for version in ("1", "2"):
            assert client.infer("sentiment", [text], model_version=version).get_response().model_version == version
        assert client.infer("sentiment", [text]).get_response().model_version == "2"
        assert client.get_model_metadata("sentiment").versions == ["1", "2"]


def _state(s: ServerThread, name: str, version: str) -> str:
    rows = _tc(s).get_model_repository_index(as_json=True)["models"]
    return next(m["state"] for m in rows if (m["name"], m["version"]) == (name, version))


def _hammer(target: str, model: str, stop: threading.Event, outcomes: list[str], retries: int = 0) -> None:
    with Client(target, model=model, retries=retries) as client:
        while not stop.is_set():
            try:
                client.classify(["a text to classify"])
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(type(exc).__name__ + ": " + str(exc))


def test_a_swap_under_load_fails_no_call(tmp_path: Path, tiny_bundle: Path) -> None:
    root = _repo(tmp_path, tiny_bundle, {"sentiment": [1]})
    with _serve(root, model_control="explicit") as s:
        assert s.server is not None
        (old,) = s.server.repository.serving()
        stop, outcomes = threading.Event(), []  # type: ignore[var-annotated]
        clients = [threading.Thread(target=_hammer, args=(s.target, "sentiment", stop, outcomes)) for _ in range(8)]
        for t in clients:
            t.start()
        time.sleep(0.5)
        shutil.copytree(tiny_bundle, root / "sentiment" / "2")
        _tc(s).load_model("sentiment")
        time.sleep(0.5)
        stop.set()
        for t in clients:
            t.join(30)
        assert outcomes and all(o == "ok" for o in outcomes), [o for o in outcomes if o != "ok"][:5]
        assert _tc(s).get_model_metadata("sentiment").versions == ["2"] and _version(s, "sentiment") == "2"
        # version 1 finished its calls and was closed: out of the index's UNLOADING state, its workers stopped
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _state(s, "sentiment", "1") == "UNLOADING":
            time.sleep(0.05)
        assert old.closed and _state(s, "sentiment", "1") == "UNAVAILABLE"
        assert not any(t.is_alive() for t in old.batcher._threads)


def test_a_bundle_that_fails_to_load_leaves_the_serving_version(tmp_path: Path, tiny_bundle: Path) -> None:
    root = _repo(tmp_path, tiny_bundle, {"sentiment": [1], "topic": None})
    with _serve(root, model_control="explicit") as s:
        bad = root / "sentiment" / "2"
        shutil.copytree(tiny_bundle, bad)
        model = bad / "model.onnx"
        model.write_bytes(model.read_bytes()[:-1] + b"\0")  # same size, another checksum
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match=r"version 2: .*model\.onnx does not match its SHA-256"):
            _tc(s).load_model("sentiment")
        assert _version(s, "sentiment") == "1"
        rows = _tc(s).get_model_repository_index(as_json=True)["models"]
        (failed,) = [m for m in rows if m["name"] == "sentiment" and m["version"] == "2"]
        assert failed["state"] == "UNAVAILABLE" and "SHA-256" in failed["reason"]
        # unloading one model leaves the other serving; the unloaded one is NOT_FOUND
        _tc(s).unload_model("topic")
        with Client(s.target, model="topic") as client, pytest.raises(NotFound, match="unknown model 'topic'"):
            client.classify(["fine"])
        with Client(s.target, model="sentiment") as client:
            assert len(client.classify(["fine"])) == 1
        _tc(s).load_model("topic")
        assert _version(s, "topic") == "1"


def test_changes_are_refused_with_their_reason(tmp_path: Path, tiny_bundle: Path) -> None:
    from tritonclient.utils import InferenceServerException

    root = _repo(tmp_path, tiny_bundle, {"a": None, "b": None})
    with _serve(root) as s, pytest.raises(InferenceServerException, match="--model-control none"):
        _tc(s).unload_model("a")
    with _serve(root, model_control="explicit", max_models=1) as s:
        assert [m.name for m in s.server.repository.serving()] == ["a"]  # type: ignore[union-attr]
        (b,) = [m for m in _tc(s).get_model_repository_index(as_json=True)["models"] if m["name"] == "b"]
        assert b["state"] == "UNAVAILABLE" and "over the budget of 1" in b["reason"]
        with pytest.raises(InferenceServerException, match="over the budget of 1 loaded versions"):
            _tc(s).load_model("b")
        with pytest.raises(InferenceServerException, match="no model 'c'"):
            _tc(s).load_model("c")


def test_poll_picks_up_a_new_version_and_a_removed_model(tmp_path: Path, tiny_bundle: Path) -> None:
    root = _repo(tmp_path, tiny_bundle, {"sentiment": [1], "topic": None})
    with _serve(root, model_control="poll", poll_s=0.2) as s:
        shutil.copytree(tiny_bundle, root / "sentiment" / "2")
        shutil.rmtree(root / "topic")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_version(s, "sentiment") != "2" or len(s.server.repository.names()) > 1):  # type: ignore[union-attr]
            time.sleep(0.2)
        assert _version(s, "sentiment") == "2"
        with Client(s.target, model="topic") as client, pytest.raises(NotFound):
            client.classify(["fine"])


def test_stopping_drains_every_model(tmp_path: Path, tiny_bundle: Path) -> None:
    root = _repo(tmp_path, tiny_bundle, {"a": None, "b": None})
    s = _serve(root)
    with s:
        stop, outcomes = threading.Event(), []  # type: ignore[var-annotated]
        # the client's own retries (2) take the calls grpc core cancels at its last instant (docs/decisions.md)
        clients = [threading.Thread(target=_hammer, args=(s.target, m, stop, outcomes, 2)) for m in ("a", "b") * 4]
        for t in clients:
            t.start()
        time.sleep(0.5)
        assert s.server is not None
        models = s.server.repository.serving()
        s.stop(10)
        stop.set()
        for t in clients:
            t.join(30)
    # a call is answered, or refused once the server no longer takes calls (UNAVAILABLE): none cut off or failed
    assert outcomes.count("ok") > 0
    assert all(o == "ok" or o.startswith("Unavailable") for o in outcomes), set(outcomes)
    assert len(models) == 2 and all(m.closed for m in models)
    with grpc.insecure_channel(s.target) as channel, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=0.5)

"""Texts past the window (serving/long_text.py) on the committed tiny bundle (a 64-token window): truncate or chunk,
through the Predictor, a real server over gRPC and HTTP, and `baton score`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import ServerThread

from baton.errors import BundleError, InputError
from baton.serving import Predictor
from baton.serving.client import Client, ClientError
from baton.serving.config import ServeConfig
from baton.serving.long_text import ChunkCombine, LongText, LongTextSpec
from baton.serving.tasks.classification import Chunks, softmax

# Evidence spread over the text: a negative opening, then praise far past the first window.
LONG = "the first hour was dull and slow . " * 6 + "but then it became a wonderful , moving , great film . " * 30
SHORT = "a fine film"


def _chunk(predictor: Predictor) -> LongTextSpec:
    """The bundle's own rule (its stride), set to chunk."""
    return predictor.engine.bundle.manifest.long_text.choose("chunk", None)


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor.load(tiny_bundle, device="cpu", variant="fp32", threads=1)


def test_the_manifest_rule_is_validated_and_a_caller_may_choose_another() -> None:
    assert LongTextSpec.parse(None, 64) == LongTextSpec()  # bundles before it: truncate
    spec = LongTextSpec.parse({"mode": "chunk", "combine": "max", "stride": 8, "max_chunks": 4}, 64)
    assert (spec.mode, spec.combine, spec.stride, spec.max_chunks) == (LongText.CHUNK, ChunkCombine.MAX, 8, 4)
    for bad in ({"mode": "summarize"}, {"stride": 64}, {"max_chunks": 10_000}, {"stride": True}, {"other": 1}, []):
        with pytest.raises(BundleError, match="long_text"):
            LongTextSpec.parse(bad, 64)
    assert spec.choose("truncate", None).mode is LongText.TRUNCATE and spec.choose(None, None) == spec
    with pytest.raises(InputError, match="long_text must be one of truncate, chunk"):
        spec.choose("chunky", None)
    with pytest.raises(InputError, match="chunk_combine must be one of mean, max"):
        spec.choose(None, "median")


def test_a_chunked_text_is_the_mean_of_its_windows_each_run_alone(predictor: Predictor) -> None:
    engine = predictor.engine
    (item,) = engine.tokenize([LONG], None, _chunk(predictor))
    assert isinstance(item, Chunks) and item.rows >= 4 and not item.truncated
    windows = engine.task._windows
    assert windows is not None
    alone = [softmax(engine.run(engine.collate([windows.row(item.ids[w.start : w.end])])))[0] for w in item.spans]
    (answer,) = predictor.predict([LONG], long_text="chunk")
    expected = np.mean(alone, axis=0)
    assert [answer.scores[label] for label in predictor.labels] == pytest.approx(expected.tolist(), abs=1e-5)
    assert not answer.truncated
    (cut,) = predictor.predict([LONG])  # the bundle's default: truncate, the first window only
    assert cut.truncated and cut.scores[cut.label] == pytest.approx(float(alone[0].max()), abs=1e-5)
    (peak,) = predictor.predict([LONG], long_text="chunk", chunk_combine="max")
    best = np.max(alone, axis=0)
    assert [peak.scores[label] for label in predictor.labels] == pytest.approx((best / best.sum()).tolist(), abs=1e-5)


def test_a_short_text_scores_the_same_either_way_and_past_max_chunks_is_truncated(predictor: Predictor) -> None:
    (a,) = predictor.predict([SHORT])
    (b,) = predictor.predict([SHORT], long_text="chunk")
    assert a.label == b.label and a.scores == pytest.approx(b.scores, abs=1e-6) and not b.truncated
    engine = predictor.engine
    (item,) = engine.tokenize([LONG], None, replace(_chunk(predictor), max_chunks=2))
    assert item.rows == 2 and item.truncated


def test_many_long_texts_batch_by_rows_not_by_texts(predictor: Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
    """32 documents of several windows each do not make one batch of hundreds of rows; answers keep input order."""
    sizes: list[int] = []
    real = predictor.engine.run

    def counting(encoded, wide=True):  # type: ignore[no-untyped-def]
        sizes.append(int(encoded.inputs["input_ids"].shape[0]))
        return real(encoded, wide)

    monkeypatch.setattr(predictor.engine, "run", counting)
    texts = [LONG, SHORT] * 16
    answers = predictor.predict(texts, long_text="chunk")
    assert max(sizes) <= predictor.batch_size  # runs hold at most batch_size rows, not 32 documents' windows
    alone = predictor.predict([LONG], long_text="chunk")[0]
    assert all(a.scores == pytest.approx(alone.scores, abs=1e-5) for a in answers[::2])
    # one document of more windows than batch_size runs in slices: memory follows the batch size, not its length
    sizes.clear()
    predictor.batch_size = 2
    try:
        sliced = predictor.predict([LONG], long_text="chunk")[0]
    finally:
        predictor.batch_size = 32
    assert max(sizes) == 2 and len(sizes) >= 3
    assert sliced.scores == pytest.approx(alone.scores, abs=1e-5)


def test_pairs_and_entity_models_refuse_chunking(predictor: Predictor) -> None:
    with pytest.raises(InputError, match="a text pair is never chunked"):
        predictor.engine.task.tokenize(["a"], ["b"], LongTextSpec(mode=LongText.CHUNK))
    with pytest.raises(InputError, match="long_text must be one of"):
        predictor.predict([SHORT], long_text="everything")


def test_a_server_chunks_per_request_over_grpc_and_http(tiny_bundle: Path, predictor: Predictor) -> None:
    import urllib.error
    import urllib.request

    expected = predictor.predict([LONG, SHORT], long_text="chunk")
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1)) as s:
        assert s.server is not None
        with Client(s.target) as client:
            assert (client.model_info().long_text, client.model_info().chunk_combine) == ("truncate", "mean")
            got = client.classify_response([LONG, SHORT], long_text="chunk")
            assert [r.label for r in got.results] == [p.label for p in expected]
            assert not got.results[0].truncated
            default = client.classify([LONG])
            assert default[0].truncated  # the bundle's rule when the request names none
            with pytest.raises(ClientError, match="long_text must be one of truncate, chunk"):
                client.classify([LONG], long_text="all of it")
        body = {"texts": [LONG], "long_text": "chunk", "raw_scores": True}
        request = urllib.request.Request(
            f"http://127.0.0.1:{s.server.http_port}/v1/classify",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            row = json.loads(r.read())["results"][0]
        assert row["label"] == expected[0].label and row["score"] == pytest.approx(expected[0].score, abs=1e-5)
        # raw scores of a chunked text: logits whose softmax gives its combined scores back
        assert softmax(np.asarray(row["logits"])).max() == pytest.approx(expected[0].score, abs=1e-5)
        body = {"texts": [LONG], "chunk_combine": 3}
        request = urllib.request.Request(
            f"http://127.0.0.1:{s.server.http_port}/v1/classify",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400 and b"must be strings" in refused.value.read()


def test_the_bundle_default_and_baton_score(tiny_bundle: Path, tmp_path: Path, predictor: Predictor) -> None:
    """A bundle whose manifest says chunk scores long texts in chunks by default; `baton score --long-text` chooses
    per job and refuses a bad value in one line."""
    chunked = tmp_path / "chunked"
    shutil.copytree(tiny_bundle, chunked)
    manifest = json.loads((chunked / "bundle.json").read_text())
    manifest["long_text"] = _chunk(predictor).to_manifest()
    (chunked / "bundle.json").write_text(json.dumps(manifest))
    by_default = Predictor.load(chunked, device="cpu", variant="fp32", threads=1).predict([LONG])[0]
    assert by_default.scores == pytest.approx(predictor.predict([LONG], long_text="chunk")[0].scores, abs=1e-6)
    rows = tmp_path / "in.jsonl"
    rows.write_text("".join(json.dumps({"text": t}) + "\n" for t in (LONG, SHORT)))
    base = [sys.executable, "-m", "baton", "score", str(tiny_bundle), "--input", str(rows), "--variant", "fp32"]
    done = subprocess.run(
        [*base, "--output", str(tmp_path / "o.jsonl"), "--long-text", "chunk", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    expected = predictor.predict([LONG, SHORT], long_text="chunk")
    assert [o["label"] for o in out] == [p.label for p in expected] and out[0]["truncated"] is False
    bad = subprocess.run(
        [*base, "--output", str(tmp_path / "p.jsonl"), "--long-text", "most"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--long-text" in bad.stderr and "Traceback" not in bad.stderr


def test_a_request_past_its_token_budget_is_refused_and_others_are_served(tiny_bundle: Path) -> None:
    """Chunked documents cost a row per window: a request whose windows pass --max-request-tokens is refused
    before it is queued, naming the limit; a request within it, before and after, is answered."""
    config = ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1, max_request_tokens=500)
    with ServerThread(config) as s, Client(s.target) as client:
        assert client.classify([SHORT])[0].label
        assert client.classify([LONG])[0].truncated  # truncated: one window of 64, within the budget
        with pytest.raises(ClientError, match=r"needs \d+ tokens of model work .* limit is 500 .*max-request-tokens"):
            client.classify([LONG], long_text="chunk")
        assert client.classify([SHORT, SHORT])[0].label
        assert s.server is not None
        assert s.server.repository.resolve(None).batcher.pending == 0  # nothing of the refused request is left

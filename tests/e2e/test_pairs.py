"""Sentence-pair models are served as trained: the manifest declares the pair input, and every path encodes
`[CLS] A [SEP] B [SEP]` with the pair's token types — Predictor, CLI, gRPC domain API and KServe v2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_helpers import ServerThread
from support import REVIEWS, write_jsonl

from baton.errors import InputError
from baton.serving import Predictor, load_bundle
from baton.serving.client import Client, InvalidInput
from baton.serving.config import ServeConfig
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc


def _pair_rows(split: str) -> list[dict[str, str]]:
    """Does the second text name the review's sentiment? Learnable only from the pair."""
    rows = []
    for i, line in enumerate((REVIEWS / f"{split}.jsonl").read_text().splitlines()):
        row = json.loads(line)
        other = "negative" if row["label"] == "positive" else "positive"
        claim = row["label"] if i % 2 else other
        rows.append({"text": row["text"], "claim": f"this review is {claim}", "label": "yes" if i % 2 else "no"})
    return rows


@pytest.fixture(scope="module")
def pair_bundle(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from baton.export import ExportConfig, export_bundle
    from baton.training import TrainConfig, run_training

    root = tmp_path_factory.mktemp("pairs")
    train = write_jsonl(root / "train.jsonl", _pair_rows("train")[:300])
    val = write_jsonl(root / "val.jsonl", _pair_rows("validation"))
    run_training(
        TrainConfig(
            model=str(tiny_model_dir),
            train_file=str(train),
            validation_file=str(val),
            text_pair_column="claim",
            output_dir=str(root / "run"),
            epochs=1,
            learning_rate=3e-3,
            patience=0,
            max_length=48,
            baseline=False,
        )
    )
    out = root / "bundle"
    # One epoch of a tiny model learns little (it need not: these tests are about how pairs travel, and the parity
    # gates still check fp32 against torch), so the trivial-baseline refusal is waived.
    export_bundle(
        ExportConfig(
            run_dir=str(root / "run"), output=str(out), quantize="none", parity_samples=64, allow_untrained=True
        )
    )
    return out


def _torch_logits(bundle: Path, texts: list[str], pairs: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = bundle.parent / "run" / "model"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        enc = tok(texts, pairs, padding=True, truncation=True, max_length=48, return_tensors="pt")
        return model(**enc).logits.numpy()  # type: ignore[no-any-return]


TEXTS = ["great value, works fine", "broke after a week", "meh", "the plot was slow but the ending saved it"]
PAIRS = ["this review is positive", "this review is positive", "this review is negative", "this review is negative"]


def test_manifest_declares_the_pair_and_the_predictor_matches_torch(pair_bundle: Path) -> None:
    bundle = load_bundle(pair_bundle)
    assert bundle.manifest.inputs == ("text", "text_pair") and "token_type_ids" in bundle.manifest.input_names
    predictor = Predictor.load(pair_bundle, device="cpu", variant="fp32")
    assert predictor.pairs
    got = predictor.logits(TEXTS, PAIRS)
    assert np.abs(got - _torch_logits(pair_bundle, TEXTS, PAIRS)).max() <= 1e-3
    # The pair reaches the graph as a second segment: [SEP] between, token types 1 on the pair.
    encoded = predictor.engine.preprocess(TEXTS[:1], PAIRS[:1]).inputs
    single = predictor.engine.encoder.tokenize(TEXTS[:1])[0]
    assert encoded["token_type_ids"][0].max() == 1 and encoded["input_ids"].shape[1] > len(single)
    with pytest.raises(InputError, match="trained on text pairs"):
        predictor.predict(TEXTS)
    with pytest.raises(InputError, match="4 texts but 3 text_pairs"):
        predictor.predict(TEXTS, pairs=PAIRS[:3])


def test_single_text_models_refuse_pairs(tiny_bundle: Path) -> None:
    with pytest.raises(InputError, match="takes single texts"):
        Predictor.load(tiny_bundle, device="cpu").predict(["a"], pairs=["b"])


def test_grpc_and_kserve_serve_pairs_as_trained(pair_bundle: Path) -> None:
    expected = Predictor.load(pair_bundle, device="cpu", variant="fp32").predict(TEXTS, pairs=PAIRS)
    with ServerThread(ServeConfig(bundle=str(pair_bundle), variant="fp32", threads=1)) as s:
        with Client(s.target) as client:
            assert list(client.model_info().inputs) == ["text", "text_pair"]
            got = client.classify(TEXTS, pairs=PAIRS)
            assert [r.label for r in got] == [p.label for p in expected]
            assert np.allclose([r.score for r in got], [p.score for p in expected], atol=1e-5)
            with pytest.raises(InvalidInput, match="trained on text pairs: send text_pairs"):
                client.classify(TEXTS)
            with pytest.raises(InvalidInput, match="4 texts but 1 text_pairs"):
                client.classify(TEXTS, pairs=PAIRS[:1])
        with grpc.insecure_channel(s.target) as channel:
            stub = kpb_grpc.GRPCInferenceServiceStub(channel)

            def tensor(name: str, values: list[str]) -> kpb.ModelInferRequest.InferInputTensor:
                contents = kpb.InferTensorContents(bytes_contents=[v.encode() for v in values])
                return kpb.ModelInferRequest.InferInputTensor(
                    name=name, datatype="BYTES", shape=[len(values)], contents=contents
                )

            name = load_bundle(pair_bundle).name
            meta = stub.ModelMetadata(kpb.ModelMetadataRequest(name=name), timeout=10)
            assert [i.name for i in meta.inputs] == ["text", "text_pair"]
            request = kpb.ModelInferRequest(
                model_name=name, inputs=[tensor("text", TEXTS), tensor("text_pair", PAIRS)], outputs=[]
            )
            response = stub.ModelInfer(request, timeout=30)
            labels = [x.decode() for x in _decode_bytes(response.raw_output_contents[0])]
            assert labels == [p.label for p in expected]
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelInfer(kpb.ModelInferRequest(model_name=name, inputs=[tensor("text", TEXTS)]), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "text and text_pair" in (info.value.details() or "")


def _decode_bytes(raw: bytes) -> list[bytes]:
    from baton.serving.kserve_codec import decode_bytes_raw

    return decode_bytes_raw(raw)


def test_cli_predict_and_evaluate_pairs(pair_bundle: Path, tmp_path: Path) -> None:
    def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "baton", "-q", *args], capture_output=True, input=stdin, timeout=300, cwd=tmp_path
        )

    expected = Predictor.load(pair_bundle, device="cpu").predict(TEXTS[:2], pairs=PAIRS[:2])
    args = cli("predict", str(pair_bundle), TEXTS[0], TEXTS[1], "--text-pair", PAIRS[0], "--text-pair", PAIRS[1])
    assert args.returncode == 0, args.stderr
    rows = [json.loads(x) for x in args.stdout.decode().splitlines()]
    assert [(r["text_pair"], r["label"]) for r in rows] == [(PAIRS[i], expected[i].label) for i in range(2)]
    stdin = "".join(f"{t}\t{p}\n" for t, p in zip(TEXTS[:2], PAIRS[:2], strict=True)).encode()
    tabbed = cli("predict", str(pair_bundle), stdin=stdin)
    assert tabbed.returncode == 0, tabbed.stderr
    assert [json.loads(x)["label"] for x in tabbed.stdout.decode().splitlines()] == [p.label for p in expected]
    no_tab = cli("predict", str(pair_bundle), stdin=b"one text only\n")
    assert no_tab.returncode == 2 and b"standard input: line 1 has no tab" in no_tab.stderr
    unpaired = cli("predict", str(pair_bundle), "one text, no pair")  # issue 29: named the gRPC field text_pairs
    assert unpaired.returncode == 2 and b"--text-pair:" in unpaired.stderr and b"text_pairs" not in unpaired.stderr
    data = write_jsonl(tmp_path / "pairs.jsonl", _pair_rows("test"))
    ev = cli("evaluate", str(pair_bundle), "--input", str(data), "--text-pair-column", "claim")
    assert ev.returncode == 0 and b"fp32: accuracy" in ev.stdout, ev.stderr
    missing = cli("evaluate", str(pair_bundle), "--input", str(data))
    assert missing.returncode == 2 and b"--text-pair-column" in missing.stderr


def test_score_reads_the_pair_column(pair_bundle: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from baton.errors import ConfigError
    from baton.tools.score import Columns, plan_job, run_score

    data = write_jsonl(tmp_path / "pairs.jsonl", _pair_rows("test")[:20])
    run_score(plan_job(pair_bundle, str(data), tmp_path / "out.parquet", None, columns=Columns(text_pair="claim")))
    rows = _pair_rows("test")[:20]
    expected = Predictor.load(pair_bundle).predict([r["text"] for r in rows], pairs=[r["claim"] for r in rows])
    assert pq.read_table(tmp_path / "out.parquet").column("label").to_pylist() == [p.label for p in expected]
    with pytest.raises(ConfigError, match="sentence-pair model: name the second text's column with --text-pair"):
        run_score(plan_job(pair_bundle, str(data), tmp_path / "o2.parquet", None, columns=Columns()))


@pytest.mark.parametrize("protocol", ["baton", "kserve"])
def test_bench_takes_pairs(pair_bundle: Path, tmp_path: Path, protocol: str) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", _pair_rows("test"))

    def bench(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "baton", "-q", "bench", *args, "--input", str(data), "--text-pair-column", "claim"]
        return subprocess.run([*cmd, "--quick"], capture_output=True, text=True, timeout=600, cwd=tmp_path)

    if protocol == "baton":
        inproc = bench("inprocess", str(pair_bundle), "--batch-sizes", "1,4", "--output", "i.json")
        assert inproc.returncode == 0, inproc.stderr
        assert all(r["texts_per_s"] > 0 for r in json.loads((tmp_path / "i.json").read_text())["results"])
    serve = bench("serve", str(pair_bundle), "--concurrency", "1,2", "--protocol", protocol, "--output", "s.json")
    assert serve.returncode == 0, serve.stderr
    rows = json.loads((tmp_path / "s.json").read_text())["grpc"]["results"]
    assert all(r["answered"] > 0 and not r["errors"] for r in rows), rows  # a pair model refuses single texts

"""Export with real Optimum and onnxruntime: gates, bundle format, atomic writes, tamper detection."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import FEW_TEXTS, REVIEWS

from baton.errors import BundleError, ExportError, GateError
from baton.export import ExportConfig, GateThresholds, export_bundle, fixed_int8
from baton.export import onnx as steps
from baton.export.config import Int8Scales, Optimize, QuantPreset
from baton.serving import Predictor, load_bundle
from baton.serving.bundle import SCHEMA_VERSION, sha256_of


def test_bundle_manifest_and_gates(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["task"] == "text-classification"
    assert manifest["max_length"] == 64
    assert set(manifest["input_names"]) >= {"input_ids", "attention_mask"}
    variants = {e["variant"] for e in manifest["files"].values() if "variant" in e}
    assert variants == {"fp32", "int8"}
    for name, entry in manifest["files"].items():
        assert sha256_of(tiny_bundle / name) == entry["sha256"]
    parity = manifest["parity"]
    assert parity["samples"] == 150
    assert parity["fp32_vs_torch"]["passed"] and parity["fp32_vs_torch"]["max_abs_logit_diff"] <= 1e-3
    assert parity["int8_vs_fp32"]["confident_agreement"] >= 0.99 and parity["int8_vs_fp32"]["passed"]
    assert parity["int8_vs_fp32"]["recipe"] in steps.INT8_RECIPES
    assert manifest["training_metrics"]["validation"]["accuracy"] >= 0.8
    tok = json.loads((tiny_bundle / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"] is None  # the runtime sets both from the manifest
    assert manifest["inputs"] == ["text"] and manifest["tokenizer"]["max_length"] == 64


def _torch_argmax(run: Path, texts: list[str]) -> list[int]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        return model(**enc).logits.argmax(-1).tolist()  # type: ignore[no-any-return]


def test_predictor_matches_pytorch_argmax(tiny_run: Path, tiny_bundle: Path) -> None:
    texts = [json.loads(x)["text"] for x in (REVIEWS / "test.jsonl").read_text().splitlines()]
    expected = _torch_argmax(tiny_run, texts)
    predictor = Predictor.load(tiny_bundle, device="cpu", variant="fp32")
    got = [predictor.labels.index(p.label) for p in predictor.predict(texts)]
    assert got == expected
    int8 = Predictor.load(tiny_bundle, device="cpu")
    assert int8.engine.variant == "int8"  # auto on CPU picks int8
    agree = np.mean([int8.labels.index(p.label) == e for p, e in zip(int8.predict(texts), expected, strict=True)])
    assert agree >= 0.97


def test_predictor_edge_cases(tiny_bundle: Path) -> None:
    predictor = Predictor.load(tiny_bundle, device="cpu", variant="fp32", batch_size=4)
    assert predictor.predict([]) == []
    out = predictor.predict(["", "fine", "word " * 500, "good " * 100000], top_k=1)
    assert [p.truncated for p in out] == [False, False, True, True]
    assert [p.empty for p in out] == [True, False, False, False]  # a blank text is flagged, not labelled
    assert out[0].label == "" and out[0].top_k == [] and set(out[0].scores.values()) == {0.0}
    assert all(len(p.top_k) == 1 and abs(sum(p.scores.values()) - 1) < 1e-5 for p in out[1:])
    with pytest.raises(TypeError):
        predictor.predict("a single string")  # type: ignore[arg-type]


def test_the_predictor_runs_batches_side_by_side_with_the_same_answers(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two workers, a call of many batches runs them on the narrow session in the Predictor's threads, and
    answers exactly as one worker does with the same batches; a call of one batch runs wide in the caller."""
    texts = [json.loads(x)["text"] for x in (REVIEWS / "validation.jsonl").read_text().splitlines()][:100]
    one = Predictor.load(tiny_bundle, device="cpu", variant="int8", batch_size=8, workers=1)
    two = Predictor.load(tiny_bundle, device="cpu", variant="int8", batch_size=8, workers=2)
    assert (one.engine.workers, two.engine.workers) == (1, 2)
    calls: list[tuple[bool, str]] = []
    run = two.engine.run

    def recording(encoded: Any, wide: bool = True) -> Any:
        calls.append((wide, threading.current_thread().name))
        return run(encoded, wide)

    monkeypatch.setattr(two.engine, "run", recording)
    for a, b in zip(two.predict(texts), one.predict(texts), strict=True):
        assert a.label == b.label and max(abs(a.scores[k] - b.scores[k]) for k in a.scores) <= 1e-6
    assert len(calls) == 13 and all(not wide and name.startswith("baton-predict") for wide, name in calls)
    calls.clear()
    two.predict(texts[:3])
    assert calls == [(True, threading.current_thread().name)]


def test_batched_and_alone_give_the_same_scores(tiny_bundle: Path) -> None:
    predictor = Predictor.load(tiny_bundle, device="cpu", variant="fp32", batch_size=32)
    texts = [json.loads(x)["text"] for x in (REVIEWS / "validation.jsonl").read_text().splitlines()][:40]
    together = predictor.predict(texts)
    alone = [predictor.predict([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label
        assert max(abs(a.scores[k] - b.scores[k]) for k in a.scores) <= 1e-5


def test_fixed_int8_gives_a_text_the_same_answer_in_any_batch(tiny_bundle: Path) -> None:
    """The default int8 fixes its activation scales at export, so a text scores the same alone, in a length-sorted
    batch and in a shuffled one; the export measured and required exactly that, and recorded it."""
    q = json.loads((tiny_bundle / "bundle.json").read_text())["parity"]["int8_vs_fp32"]
    assert q["scales"] == "fixed" and q["calibration"]["source"] == "training split"
    assert q["calibration"]["texts"] > 0
    assert q["batch_effect"]["flips"] == 0 and q["batch_effect"]["invariant"] is True
    predictor = Predictor.load(tiny_bundle, device="cpu", variant="int8", batch_size=32)
    texts = [json.loads(x)["text"] for x in (REVIEWS / "validation.jsonl").read_text().splitlines()]
    together = predictor.predict(texts)
    alone = [predictor.predict([t])[0] for t in texts]
    shuffled = list(range(len(texts)))
    np.random.default_rng(0).shuffle(shuffled)
    in_random = {}
    for start in range(0, len(texts), 16):
        rows = shuffled[start : start + 16]
        in_random.update(zip(rows, predictor.predict([texts[j] for j in rows]), strict=True))
    for i, (a, b) in enumerate(zip(together, alone, strict=True)):
        c = in_random[i]
        assert a.label == b.label == c.label
        assert max(abs(a.scores[k] - b.scores[k]) for k in a.scores) <= 1e-5
        assert max(abs(c.scores[k] - b.scores[k]) for k in a.scores) <= 1e-5


@pytest.fixture(scope="module")
def dynamic_bundle(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported with `--int8-scales dynamic` (per-batch activation scales, the scheme before)."""
    out = tmp_path_factory.mktemp("dynamic") / "bundle"
    export_bundle(ExportConfig(run_dir=str(tiny_run), output=str(out), int8_scales=Int8Scales.DYNAMIC))
    return out


def test_dynamic_int8_batched_and_alone_differ_as_the_export_measured(dynamic_bundle: Path) -> None:
    """`--int8-scales dynamic` scales activations per batch, so a text's int8 scores move with its batch-mates. The
    export gates int8 both in sorted batches of 32 and alone, and records how many decisions differ between the two.
    Served through the Predictor, the same texts in the same batchings differ exactly as recorded: the recorded
    bound is the served truth, not a figure of another code path."""
    q = json.loads((dynamic_bundle / "bundle.json").read_text())["parity"]["int8_vs_fp32"]
    effect = q["batch_effect"]
    assert q["scales"] == "dynamic" and effect["required_invariant"] is False
    predictor = Predictor.load(dynamic_bundle, device="cpu", variant="int8", batch_size=32)
    texts = [json.loads(x)["text"] for x in (REVIEWS / "validation.jsonl").read_text().splitlines()]
    assert effect["decisions"] == len(texts)  # the run's validation split, every text of it
    together = predictor.predict(texts)
    alone = [predictor.predict([t])[0] for t in texts]
    shifts = [max(abs(a.scores[k] - b.scores[k]) for k in a.scores) for a, b in zip(together, alone, strict=True)]
    # The effect is real: dynamic int8 is not claimed to be batch-independent. Its size depends on the CPU's kernels
    # (1e-4 here, 9e-5 on CI's machine for this tiny model), so the test asks only that it exists.
    assert max(shifts) > 0
    flipped = [b for a, b in zip(together, alone, strict=True) if a.label != b.label]
    assert len(flipped) == effect["flips"]
    top2 = [sorted(b.scores.values())[-2:] for b in flipped]  # confident alone: a top-2 margin at the gate's bound
    assert sum(hi - lo >= effect["confident_margin"] for lo, hi in top2) == effect["confident_flips"]


def test_tampered_partial_and_wrong_schema_bundles_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    with (copy / "model.int8.onnx").open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"model\.int8\.onnx does not match its SHA-256"):
        load_bundle(copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"file tokenizer\.json is missing"):
        load_bundle(copy, verify=False)
    shutil.rmtree(copy)
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    manifest["schema_version"] = 99
    (copy / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema_version 99 is not supported"):
        load_bundle(copy)
    (copy / "bundle.json").unlink()
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="no 'fp16' variant"):
        Predictor.load(tiny_bundle, device="cpu", variant="fp16")


def test_failed_gate_refuses_the_export_and_writes_nothing(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    strict = GateThresholds(max_abs_logit_diff=1e-12)  # no real export is this exact: the gate must trip
    with pytest.raises(GateError, match=r"fp32 ONNX vs PyTorch max \|Δlogit\|"):
        export_bundle(
            ExportConfig(run_dir=str(tiny_run), output=str(out), gates=strict, parity_samples=32, allow_fallback=True)
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp folder left behind


def test_existing_bundle_is_kept_unless_overwrite(tiny_run: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        export_bundle(ExportConfig(run_dir=str(tiny_run), output=str(tiny_bundle)))
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    before = (out / "bundle.json").read_text()
    with pytest.raises(GateError):
        export_bundle(
            ExportConfig(
                run_dir=str(tiny_run),
                output=str(out),
                overwrite=True,
                parity_samples=16,
                gates=GateThresholds(max_abs_logit_diff=1e-12),
            )
        )
    assert (out / "bundle.json").read_text() == before  # the old bundle is untouched by a failed export
    load_bundle(out)


def test_export_refuses_run_without_model_and_unknown_architecture(tiny_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(ExportError, match="holds no trained model"):
        export_bundle(ExportConfig(run_dir=str(empty), output=str(tmp_path / "b")))
    weird = tmp_path / "weird"
    shutil.copytree(tiny_run, weird)
    config = json.loads((weird / "model/config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]
    (weird / "model/config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="unsupported architecture for export"):
        export_bundle(ExportConfig(run_dir=str(weird), output=str(tmp_path / "b2")))
    (weird / "train_args.json").unlink()  # was a FileNotFoundError traceback: the run is read in one place now
    with pytest.raises(ExportError, match=r"is not a finished run \(no train_args.json\)"):
        export_bundle(ExportConfig(run_dir=str(weird), output=str(tmp_path / "b3")))


def test_serving_import_and_predict_do_not_load_torch(tiny_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from baton.serving import Predictor\n"
        f"p = Predictor.load({str(tiny_bundle)!r}, device='cpu')\n"
        "p.predict(['hello world'])\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'datasets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_export_evaluate_predict(tiny_run: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "baton", "-q", *args], capture_output=True, input=stdin, timeout=300, cwd=tmp_path
        )

    proc = cli("predict", str(tiny_bundle), "-", stdin=b"good one\nbad one\n\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [r["text"] for r in rows] == ["good one", "bad one", ""]
    bad = cli("predict", str(tiny_bundle), stdin=b"ok\n\xff\xfe\n")
    assert bad.returncode == 2 and b"line 2 is not valid UTF-8" in bad.stderr and b"Traceback" not in bad.stderr
    proc = cli("evaluate", str(tiny_bundle), "--input", str(REVIEWS / "test.jsonl"), "--output", "ev")
    assert proc.returncode == 0, proc.stderr
    assert b"fp32: accuracy" in proc.stdout and b"int8: accuracy" in proc.stdout
    assert (tmp_path / "ev/report.md").is_file() and (tmp_path / "ev/confusion_matrix_int8.png").is_file()
    proc = cli("export", str(tiny_run), "--output", "b", "--parity-samples", "64", "--allow-unjudged-int8")
    assert proc.returncode == 0, proc.stderr
    assert b"int8" in proc.stdout and b"parity (64 samples)" in proc.stdout
    missing = cli("export", str(tmp_path / "nope"), "--output", "b2")
    assert missing.returncode == 2 and b"holds no trained model" in missing.stderr


@pytest.mark.parametrize("graph", ["plain", "fused"])
def test_int8_recipes_keep_the_ffn_matmuls_in_fp32(tiny_run: Path, tmp_path: Path, graph: str) -> None:
    onnx_dir = steps.export_fp32(tiny_run / "model", tmp_path, "text-classification", None)
    model = onnx_dir / "model.onnx"
    if graph == "fused":  # the O2 fusions keep the MatMul names the recipes select by
        model, kind = steps.quantizable_graph(steps.optimize_graph(onnx_dir, Optimize.O2), model)
        assert kind == "fused"
    assert steps.int8_exclusions(model, "full") == []
    down = steps.int8_exclusions(model, "keep-ffn-down-fp32")
    both = steps.int8_exclusions(model, "keep-ffn-fp32")
    assert len(down) == 2 and len(both) == 4  # two layers: one down- and one up-projection each
    assert all("/output/dense" in n for n in down)


def test_int8_falls_back_to_the_plain_graph_when_shapes_cannot_be_inferred(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    def unknown_op(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no shape inference for op Foo")

    monkeypatch.setattr(SymbolicShapeInference, "infer_shapes", unknown_op)
    cfg = ExportConfig(
        run_dir=str(tiny_run),
        output=str(tmp_path / "b"),
        parity_samples=64,
        gates=FEW_TEXTS,
        int8_scales=Int8Scales.DYNAMIC,  # fixed scales read the fused graph's weights: no shape inference
    )
    result = export_bundle(cfg)
    assert result.parity["int8_vs_fp32"]["graph"] == "plain" and result.parity["int8_vs_fp32"]["passed"]
    assert not any(n.op_type == "QAttention" for n in onnx.load(str(tmp_path / "b/model.int8.onnx")).graph.node)


def test_ffn_matmul_names_of_other_architectures() -> None:
    distil = [f"/distilbert/transformer/layer.{i}/{part}/MatMul" for i in (0, 1) for part in ("ffn/lin1", "ffn/lin2")]
    roberta = [
        "/roberta/encoder/layer.0/attention/output/dense/MatMul",
        "/roberta/encoder/layer.0/intermediate/dense/MatMul",
        "/roberta/encoder/layer.0/output/dense/MatMul",
    ]
    assert steps._ffn_matmuls(distil) == (distil[1::2], distil[0::2])
    assert steps._ffn_matmuls(roberta) == ([roberta[2]], [roberta[1]])


@pytest.mark.parametrize("model_type", ["distilbert", "roberta"])
def test_fused_int8_for_other_encoders(tmp_path: Path, model_type: str) -> None:
    """Tiny random DistilBERT / RoBERTa: the fused graph types, quantizes to QAttention with dynamic and with fixed
    scales, and runs like fp32."""
    import onnx
    import onnxruntime as ort
    from transformers import AutoConfig, AutoModelForSequenceClassification

    sizes = (
        {"dim": 64, "hidden_dim": 128, "n_layers": 2, "n_heads": 4}
        if model_type == "distilbert"
        else {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
    )
    config = AutoConfig.for_model(model_type, vocab_size=1000, max_position_embeddings=130, num_labels=3, **sizes)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "m")
    onnx_dir = steps.export_fp32(tmp_path / "m", tmp_path, "text-classification", None)
    fused = steps.optimize_graph(onnx_dir, Optimize.O2)
    source, kind = steps.quantizable_graph(fused, onnx_dir / "model.onnx")
    assert kind == "fused"
    int8 = steps.quantize_int8(source, QuantPreset.AVX512_VNNI, steps.int8_exclusions(source, "keep-ffn-down-fp32"))
    graph = onnx.load(str(int8)).graph
    assert any(n.op_type == "QAttention" for n in graph.node)
    assert sum(n.op_type == "MatMul" for n in graph.node) == 2  # the two FFN down-projections kept in fp32
    ids = np.random.default_rng(0).integers(5, 900, (2, 9))
    fp32 = ort.InferenceSession(str(fused))
    feeds = {i.name: ids if i.name == "input_ids" else np.ones_like(ids) for i in fp32.get_inputs()}
    names = fixed_int8.quantized_inputs(onnx.load(str(fused)))
    fixed = fixed_int8.quantize_fixed(fused, tmp_path / "fixed.onnx", fixed_int8.calibrate(fused, [feeds], names))
    assert any(n.op_type == "QAttention" for n in onnx.load(str(fixed)).graph.node)
    for model in (int8, fixed):
        out = ort.InferenceSession(str(model)).run(None, feeds)[0]
        assert out.shape == (2, 3) and np.abs(out - fp32.run(None, feeds)[0]).max() < 0.05


@pytest.mark.parametrize(
    ("scales", "matmul"), [(Int8Scales.FIXED, "MatMulIntegerToFloat"), (Int8Scales.DYNAMIC, "MatMulInteger")]
)
def test_int8_quantizes_the_fused_graph(tiny_run: Path, tmp_path: Path, scales: Int8Scales, matmul: str) -> None:
    """The O2 graph (fused Attention) is what gets quantized, not the plain export: QAttention in the int8 file."""
    import onnx

    result = export_bundle(
        ExportConfig(
            run_dir=str(tiny_run), output=str(tmp_path / "b"), parity_samples=64, gates=FEW_TEXTS, int8_scales=scales
        )
    )
    q = result.parity["int8_vs_fp32"]
    assert q["graph"] == "fused" and q["passed"] and q["scales"] == scales.value
    ops = {n.op_type for n in onnx.load(str(tmp_path / "b/model.int8.onnx")).graph.node}
    assert "QAttention" in ops and matmul in ops and "MatMul" not in ops


def _runtime_ops(model: Path, tmp_path: Path, session: Any) -> dict[str, int]:
    """Op counts of the graph onnxruntime actually runs (after its own fusions at load)."""
    import collections

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"runtime-{model.name}")
    session(model, options)
    return dict(collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node))


def test_cpu_bundles_run_add_and_layer_norm_not_skip_layer_norm(
    tiny_run: Path, tiny_bundle: Path, dynamic_bundle: Path, tmp_path: Path
) -> None:
    """CPU exports leave the residual Add + LayerNormalization unfused, and baton's CPU sessions keep it that way."""
    import onnx
    import onnxruntime as ort

    from baton._ort import new_session

    layers = json.loads((tiny_run / "model/config.json").read_text())["num_hidden_layers"]
    for name in ("model.onnx", "model.int8.onnx"):
        ops = [n.op_type for n in onnx.load(str(tiny_bundle / name)).graph.node]
        assert "SkipLayerNormalization" not in ops
        assert ops.count("LayerNormalization") == 2 * layers + 1  # two per layer, one after the embeddings
        assert _runtime_ops(tiny_bundle / name, tmp_path, new_session).get("SkipLayerNormalization", 0) == 0
    # Without the disabled fusion onnxruntime fuses a dynamic int8 graph back at load (once the bias Adds are folded
    # into DynamicQuantizeMatMul), which is why every CPU session (serving and the parity gates alike) goes through
    # new_session.
    dynamic = dynamic_bundle / "model.int8.onnx"
    assert _runtime_ops(dynamic, tmp_path, new_session).get("SkipLayerNormalization", 0) == 0
    plain = _runtime_ops(dynamic, tmp_path, lambda m, o: ort.InferenceSession(str(m), o))
    assert plain.get("SkipLayerNormalization", 0) == 2 * layers


def test_int8_gate_failure_refuses_or_falls_back(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baton.export.exporter as exporter

    calls: list[int] = []

    def poor_int8_agreement(*args: object) -> tuple[float, float]:  # only the int8 gate asks for it
        calls.append(1)
        return 0.5, 1.0

    monkeypatch.setattr(exporter.parity, "confident_agreement", poor_int8_agreement)
    with pytest.raises(GateError, match="no int8 recipe passed"):
        export_bundle(
            ExportConfig(run_dir=str(tiny_run), output=str(tmp_path / "a"), parity_samples=32, gates=FEW_TEXTS)
        )
    assert not (tmp_path / "a").exists()
    assert len(calls) == 2 * len(steps.INT8_RECIPES)  # every recipe was tried and judged, in batches and alone
    calls.clear()
    result = export_bundle(
        ExportConfig(
            run_dir=str(tiny_run), output=str(tmp_path / "b"), parity_samples=32, gates=FEW_TEXTS, allow_fallback=True
        )
    )
    assert set(result.bundle.models) == {"fp32"}
    manifest = json.loads((tmp_path / "b/bundle.json").read_text())
    attempts = manifest["parity"]["int8_vs_fp32"]["attempts"]
    assert [a["recipe"] for a in attempts] == list(steps.INT8_RECIPES)
    assert "int8 dropped" in manifest["parity"]["fallback"]
    assert result.fallback_reason is not None


def test_int8_must_pass_alone_as_well_as_in_batches(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe whose batched answers agree but whose answers alone do not (the batch effect at its worst) fails."""
    import baton.export.exporter as exporter

    real = exporter.parity.alone_logits

    def reversed_alone(*args: object) -> list:
        return [-x for x in real(*args)]  # type: ignore[arg-type]

    monkeypatch.setattr(exporter.parity, "alone_logits", reversed_alone)
    with pytest.raises(GateError, match=r"in batches and 0\.\d+ alone"):
        export_bundle(
            ExportConfig(run_dir=str(tiny_run), output=str(tmp_path / "a"), parity_samples=32, gates=FEW_TEXTS)
        )
    result = export_bundle(
        ExportConfig(
            run_dir=str(tiny_run), output=str(tmp_path / "b"), parity_samples=32, gates=FEW_TEXTS, allow_fallback=True
        )
    )
    attempts = result.parity["int8_vs_fp32"]["attempts"]
    # (on 32 texts one flipped sure decision is 3 points: the batched figures vary by a flip between machines)
    assert all(not a["alone"]["passed"] for a in attempts) and any(a["confident_agreement"] >= 0.99 for a in attempts)
    assert all(a["batch_effect"]["flips"] == a["batch_effect"]["decisions"] for a in attempts)


def test_cuda_bundle_has_fp16_and_no_int8(tiny_run: Path, tmp_path: Path) -> None:
    """Built here without a GPU: structure and gates only; the CUDA provider itself is checked on a GPU machine."""
    import onnx

    result = export_bundle(
        ExportConfig(run_dir=str(tiny_run), output=str(tmp_path / "b"), device="cuda", parity_samples=32)
    )
    assert set(result.bundle.models) == {"fp32", "fp16"}
    assert result.bundle.models["fp16"].provider == "cuda"
    fp16 = result.parity["fp16_vs_fp32"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():  # a GPU machine: the gate ran and is recorded
        assert fp16["measured"] is True and fp16["measured_on"] == "cuda" and "passed" in fp16
    else:  # here: the fp16 gate says plainly that it was not measured
        assert fp16["measured"] is False and "not measured" in fp16["why"]
    ops = {n.op_type for n in onnx.load(str(tmp_path / "b/model.onnx")).graph.node}
    assert "SkipLayerNormalization" in ops  # GPU exports keep Optimum's default fusions (CPU ones drop this one)
    predictor = Predictor.load(tmp_path / "b", device="cpu")
    assert predictor.engine.variant == "fp32"  # on CPU the fp32 model is preferred over fp16
    assert len(predictor.predict(["fine"])) == 1


def test_int8_is_not_passed_on_too_little_evidence(tiny_run: Path, tmp_path: Path) -> None:
    """Issue 29: on 150 texts or fewer, or when fp32 was sure of no decision at all, the int8 gate printed a pass.
    Below the evidence floor (100 sure decisions by default) the export says so and ships the safer variant, fp32
    alone, recording why; int8 ships unjudged only by choice (recorded)."""
    safe = export_bundle(ExportConfig(run_dir=str(tiny_run), output=str(tmp_path / "a"), parity_samples=32))
    assert set(safe.bundle.models) == {"fp32"}
    assert "not enough evidence to judge int8: 32 decisions where fp32 is sure" in (safe.fallback_reason or "")
    recorded = json.loads((tmp_path / "a/bundle.json").read_text())["parity"]
    assert recorded["int8_vs_fp32"]["judged"] is False and "not enough evidence" in recorded["fallback"]
    unjudged = export_bundle(
        ExportConfig(run_dir=str(tiny_run), output=str(tmp_path / "b"), parity_samples=32, allow_unjudged=True)
    )
    q = json.loads((tmp_path / "b/bundle.json").read_text())["parity"]["int8_vs_fp32"]
    assert "int8" in unjudged.bundle.models and q["judged"] is False and q["shipped_unjudged"] is True
    assert q["evidence"] == 32 and q["passed"] is False


def test_the_bundle_says_how_it_reads_long_texts(tiny_run: Path, tiny_ner_run: Path, tmp_path: Path) -> None:
    """`--long-text chunk` is the classifier bundle's default, in its manifest and its model info; an entity model
    always reads windows, so asking it is refused."""
    from baton.export.config import Quantize
    from baton.serving.long_text import ChunkCombine, LongText

    cfg = ExportConfig(
        run_dir=str(tiny_run),
        output=str(tmp_path / "b"),
        quantize=Quantize.NONE,
        long_text=LongText.CHUNK,
        chunk_combine=ChunkCombine.MAX,
    )
    export_bundle(cfg)
    spec = load_bundle(tmp_path / "b").manifest.long_text
    assert (spec.mode, spec.combine) == (LongText.CHUNK, ChunkCombine.MAX)
    with pytest.raises(ExportError, match="--long-text: an entity model always reads a long text in windows"):
        export_bundle(ExportConfig(run_dir=str(tiny_ner_run), output=str(tmp_path / "n"), long_text=LongText.CHUNK))
    assert not (tmp_path / "n").exists()

"""End to end with the real packaged models on real data: 1,000 SST-2 sentences, one epoch, then export and serve;
and MiniLM on a CoNLL-2003 slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SHARED_DATA, write_jsonl

SST2 = SHARED_DATA / "sst2_sentence"


# Validation accuracy floors; measured here on this slice: MiniLM 0.789, MPNet-base 0.911. The floors leave room
# for seeds and hardware.
_FLOORS = {"minilm": 0.75, "mpnet": 0.85}


@pytest.mark.slow
@pytest.mark.skipif(not (SST2 / "train.jsonl").is_file(), reason="../shared/data/sst2_sentence is not present")
@pytest.mark.parametrize("model", list(_FLOORS))
def test_packaged_model_on_sst2_slice(tmp_path: Path, model: str) -> None:
    """Each packaged choice (MPNet only when its parts are installed: `make model-mpnet`), real data, one epoch."""
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training
    from baton.training.models import CHOICES

    if not CHOICES[model].installed():
        pytest.skip(f"{model} is not installed: {CHOICES[model].install}")
    rows = [json.loads(x) for x in (SST2 / "train.jsonl").read_text().splitlines()]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:1000])
    result = run_training(
        TrainConfig(
            train_file=str(train),
            validation_file=str(SST2 / "validation.jsonl"),
            output_dir=str(tmp_path / "run"),
            model=model,
            epochs=1,
            baseline=False,
        )
    )
    accuracy = result.metrics["validation"]["accuracy"]
    assert result.metrics["validation"]["samples"] == 872
    assert accuracy >= _FLOORS[model], accuracy

    bundle = export_bundle(
        ExportConfig(run_dir=str(tmp_path / "run"), output=str(tmp_path / "bundle"), parity_samples=256)
    )
    assert bundle.parity["fp32_vs_torch"]["passed"] and bundle.parity["int8_vs_fp32"]["passed"]
    validation = [json.loads(x) for x in (SST2 / "validation.jsonl").read_text().splitlines()]
    predictor = Predictor.load(tmp_path / "bundle", device="cpu")
    predictions = predictor.predict([r["text"] for r in validation])
    served_accuracy = sum(p.label == r["label"] for p, r in zip(predictions, validation, strict=True)) / len(validation)
    assert served_accuracy >= accuracy - 0.02


# 16 SST-2 sentences (the first 8 of each label in the file), no flags: the default takes the few-shot path.
# Measured here on the whole validation split (872 sentences): 0.664; always answering the majority scores 0.509.
# The floor leaves room for hardware and library versions, and is still well above chance.
MINILM_16_FLOOR = 0.60


@pytest.mark.slow
@pytest.mark.skipif(not (SST2 / "train.jsonl").is_file(), reason="../shared/data/sst2_sentence is not present")
def test_sixteen_labelled_sentences_with_no_flags(tmp_path: Path) -> None:
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training

    rows = [json.loads(x) for x in (SST2 / "train.jsonl").read_text().splitlines()]
    sample = [r for label in ("negative", "positive") for r in [r for r in rows if r["label"] == label][:8]]
    train = write_jsonl(tmp_path / "train.jsonl", sample)
    run = tmp_path / "run"
    result = run_training(
        TrainConfig(train_file=str(train), validation_file=str(SST2 / "validation.jsonl"), output_dir=str(run))
    )
    assert json.loads((run / "train_args.json").read_text())["few_shot"] is True
    accuracy = result.metrics["validation"]["accuracy"]
    assert accuracy >= MINILM_16_FLOOR, accuracy
    assert result.metrics["trivial_baseline"]["beaten"] is True

    bundle = export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "bundle"), parity_samples=256))
    assert bundle.parity["fp32_vs_torch"]["passed"]
    # A model this unsure (few-shot on 16 texts: fp32 sure of none of its decisions, measured) cannot have its int8
    # judged: the export ships fp32 alone and says why (issue 29), or int8 when the gate could judge and passed it.
    q = bundle.parity["int8_vs_fp32"]
    assert q["passed"] or (not q["judged"] and set(bundle.bundle.models) == {"fp32"}), q
    validation = [json.loads(x) for x in (SST2 / "validation.jsonl").read_text().splitlines()]
    predictions = Predictor.load(tmp_path / "bundle", device="cpu").predict([r["text"] for r in validation])
    served_accuracy = sum(p.label == r["label"] for p, r in zip(predictions, validation, strict=True)) / len(validation)
    assert served_accuracy >= accuracy - 0.02


CONLL = SHARED_DATA / "conll2003"
F1_FLOOR = 0.78  # measured 0.833 (int8 runtime 0.834) on this machine; the floor leaves room for seeds and hardware


@pytest.mark.slow
@pytest.mark.skipif(not (CONLL / "train.jsonl").is_file(), reason="../shared/data/conll2003 is not present")
def test_minilm_entities_on_a_conll_slice(tmp_path: Path) -> None:
    """2,000 CoNLL-2003 sentences, two epochs: measured validation entity F1 0.833 on the first 500 validation
    sentences; the runtime (int8, its own windows, aggregation and offsets) must score the same sentences alike."""
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training
    from baton.training.ner_data import joined_text
    from baton.training.ner_metrics import span_metrics

    rows = [json.loads(x) for x in (CONLL / "train.jsonl").read_text().splitlines()]
    validation = [json.loads(x) for x in (CONLL / "validation.jsonl").read_text().splitlines()][:500]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:2000])
    val = write_jsonl(tmp_path / "val.jsonl", validation)
    result = run_training(
        TrainConfig(train_file=str(train), validation_file=str(val), output_dir=str(tmp_path / "run"), epochs=2)
    )
    f1 = result.metrics["validation"]["entity_f1"]
    print(f"measured validation entity F1 {f1:.4f}")
    assert f1 >= F1_FLOOR, f1

    bundle = export_bundle(ExportConfig(run_dir=str(tmp_path / "run"), output=str(tmp_path / "bundle")))
    assert bundle.parity["fp32_vs_torch"]["passed"]
    predictor = Predictor.load(tmp_path / "bundle", device="cpu")
    pairs = [joined_text(r["tokens"], r["ner_tags"]) for r in validation]
    texts, gold = [t for t, _ in pairs], [g for _, g in pairs]
    answers = predictor.predict(texts)
    served = span_metrics(gold, [{(e.label, e.start, e.end) for e in a.entities} for a in answers])["entity_f1"]
    print(f"served (int8 runtime) entity F1 {served:.4f}")
    assert served >= f1 - 0.01, (served, f1)

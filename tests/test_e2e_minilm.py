"""End to end with the real MiniLM on real data: 1,000 SST-2 sentences, one epoch, then export and serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, write_jsonl

SST2 = SHARED_DATA / "sst2_sentence"


@pytest.mark.slow
@pytest.mark.skipif(not (SST2 / "train.jsonl").is_file(), reason="../shared/data/sst2_sentence is not present")
def test_minilm_on_sst2_slice(tmp_path: Path) -> None:
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training

    rows = [json.loads(x) for x in (SST2 / "train.jsonl").read_text().splitlines()]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:1000])
    result = run_training(
        TrainConfig(
            train_file=str(train),
            validation_file=str(SST2 / "validation.jsonl"),
            output_dir=str(tmp_path / "run"),
            epochs=1,
            baseline=False,
        )
    )
    accuracy = result.metrics["validation"]["accuracy"]
    assert result.metrics["validation"]["samples"] == 872
    assert accuracy >= 0.75, accuracy

    bundle = export_bundle(
        ExportConfig(run_dir=str(tmp_path / "run"), output=str(tmp_path / "bundle"), parity_samples=256)
    )
    assert bundle.parity["fp32_vs_torch"]["passed"] and bundle.parity["int8_vs_fp32"]["passed"]
    validation = [json.loads(x) for x in (SST2 / "validation.jsonl").read_text().splitlines()]
    predictor = Predictor.load(tmp_path / "bundle", device="cpu")
    predictions = predictor.predict([r["text"] for r in validation])
    int8_accuracy = sum(p.label == r["label"] for p, r in zip(predictions, validation, strict=True)) / len(validation)
    assert int8_accuracy >= accuracy - 0.02

"""`baton learning-curve`: the verdict, the stratified subsets, and real runs on tiny data for both tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from support import NER, REVIEWS

from baton.errors import ConfigError
from baton.training import TrainConfig
from baton.training.curve import MIN_GAIN, CurveConfig, CurvePoint, _sample, run_curve, verdict


def test_the_verdict_reads_the_last_step_against_the_noise() -> None:
    assert verdict([CurvePoint(50, (0.60, 0.62)), CurvePoint(100, (0.70, 0.72))])[0] is True
    assert verdict([CurvePoint(50, (0.70, 0.72)), CurvePoint(100, (0.705, 0.725))])[0] is False  # +0.005 < MIN_GAIN
    noisy = [CurvePoint(50, (0.60, 0.80)), CurvePoint(100, (0.68, 0.76))]  # +0.02 but seeds spread 0.1
    assert verdict(noisy)[0] is False and "spread over seeds" in verdict(noisy)[1]
    assert verdict([CurvePoint(50, (0.5,))]) == (False, "one size only: no slope to read")
    # only the two largest sizes count, whatever the order given
    rising = [CurvePoint(400, (0.80,)), CurvePoint(100, (0.79,)), CurvePoint(200, (0.80 - 2 * MIN_GAIN,))]
    assert verdict(rising)[0] is True


def test_subsets_are_stratified_seeded_and_nested_in_the_rows() -> None:
    rows = [{"label": "a"}] * 80 + [{"label": "b"}] * 15 + [{"label": "c"}] * 5
    rows = [dict(r, i=i) for i, r in enumerate(rows)]
    sample = _sample(rows, 20, seed=1, key=lambda r: r["label"])
    assert Counter(r["label"] for r in sample) == {"a": 16, "b": 3, "c": 1}
    assert _sample(rows, 20, seed=1, key=lambda r: r["label"]) == sample
    assert _sample(rows, 20, seed=2, key=lambda r: r["label"]) != sample
    tiny = _sample(rows, 3, seed=0, key=lambda r: r["label"])
    assert len(tiny) == 3 and {r["label"] for r in tiny} == {"a", "b", "c"}  # every class keeps one row


def test_bad_sizes_are_one_line(tmp_path: Path) -> None:
    train = TrainConfig(train_file=str(REVIEWS / "train.jsonl"), output_dir=str(tmp_path / "c"))
    with pytest.raises(ConfigError, match="--sizes must be comma-separated integers"):
        CurveConfig(train=train, sizes="10,ten")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exceed the 540 training rows left after validation"):
        run_curve(CurveConfig(train=train, sizes=(10, 5000), seeds=1))  # 600 rows, 10 % held out
    assert not (tmp_path / "c").exists()  # refused before anything is written


def test_classification_curve_through_the_cli(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "curve"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "baton",
            "-q",
            "learning-curve",
            "--train-file",
            str(REVIEWS / "train.jsonl"),
            "--validation-file",
            str(REVIEWS / "validation.jsonl"),
            "--model",
            str(tiny_model_dir),
            "--sizes",
            "16,40",
            "--seeds",
            "2",
            "--max-length",
            "64",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = json.loads((out / "curve.json").read_text())
    assert curve["metric"] == "accuracy" and [p["size"] for p in curve["points"]] == [16, 40]
    assert all(len(p["scores"]) == 2 and 0 <= p["mean"] <= 1 for p in curve["points"])
    assert curve["verdict"] in proc.stdout and (out / "curve.png").stat().st_size > 0
    assert "| 40 |" in (out / "curve.md").read_text()
    assert not (out / "runs").exists()  # the points' run directories are removed


def test_entity_curve_holds_out_validation_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = TrainConfig(
        model=str(tiny_model_dir),
        train_file=str(NER / "train.jsonl"),
        output_dir=str(tmp_path / "curve"),
        epochs=2,
        learning_rate=3e-3,
        max_length=64,
    )
    curve = run_curve(CurveConfig(train=train, sizes=(30, 60), seeds=1, keep_runs=True))
    assert curve["task"] == "token-classification" and curve["metric"] == "entity_f1"
    held = [json.loads(x) for x in Path(curve["validation"]).read_text().splitlines()]
    assert len(held) == 40  # 10 % of the 400 sentences, the same rows for every point
    for size in (30, 60):
        args = json.loads((tmp_path / "curve" / "runs" / f"n{size}-s42" / "train_args.json").read_text())
        assert args["sizes"]["train"] == size and args["sizes"]["validation"] == 40

"""`baton tune`: real Trainer.hyperparameter_search trials on Optuna in-process and on a real local Ray Tune."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REVIEWS

from baton.errors import ConfigError, OutputDirError
from baton.training.config import TrainConfig
from baton.training.search_space import Param, SearchSpace, load_space
from baton.training.tune import TuneConfig, run_tune

pytestmark = pytest.mark.timeout(900)

SPACE = SearchSpace(
    (
        Param("learning_rate", "loguniform", 1e-4, 5e-3),
        Param("epochs", "int", 1, 2),
        Param("batch_size", "choice", values=(8, 16)),
    )
)


def _train(tiny_model_dir: Path, out: Path, data: Path = REVIEWS, **extra: object) -> TrainConfig:
    """The tiny model on a shipped demo folder (`data`: its train.jsonl and validation.jsonl)."""
    return TrainConfig(
        **{"max_train_samples": 96, **extra},  # type: ignore[arg-type]
        model=str(tiny_model_dir),
        train_file=str(data / "train.jsonl"),
        validation_file=str(data / "validation.jsonl"),
        max_length=32,
        output_dir=str(out),
    )


def test_optuna_search_writes_a_leaderboard_and_an_exportable_best_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    result = run_tune(TuneConfig(train=_train(tiny_model_dir, out), trials=3, space=SPACE))
    summary = json.loads((out / "tune.json").read_text())
    assert summary == result.summary and summary["backend"] == "optuna" and summary["trials_run"] == 3
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"rank", "trial", "state", "accuracy", "learning_rate", "epochs", "batch_size", "seconds"}
    scores = [float(r["accuracy"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    for r in rows:
        assert (
            1e-4 <= float(r["learning_rate"]) <= 5e-3 and r["epochs"] in ("1", "2") and r["batch_size"] in ("8", "16")
        )
    assert (out / "leaderboard.md").read_text().count("\n") == 5 and (out / "search.png").stat().st_size > 0
    assert not (out / "trials").exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    best = summary["best"]
    assert best["objective"] == pytest.approx(scores[0]) and str(best["trial"]) == rows[0]["trial"]
    train_args = json.loads((out / "best" / "train_args.json").read_text())["config"]
    assert train_args["learning_rate"] == pytest.approx(best["params"]["learning_rate"])
    assert train_args["epochs"] == best["params"]["epochs"] and train_args["batch_size"] == best["params"]["batch_size"]
    assert (
        summary["best_run"]["validation"]["accuracy"]
        == json.loads((out / "best" / "metrics.json").read_text())["validation"]["accuracy"]
    )

    from baton.export import ExportConfig, export_bundle

    bundle = tmp_path / "bundle"
    export_bundle(ExportConfig(run_dir=str(out / "best"), output=str(bundle), quantize="none", allow_untrained=True))
    assert (bundle / "bundle.json").is_file()

    # A second search into the same folder needs --overwrite; the first result stays until then.
    with pytest.raises(OutputDirError, match="not empty; pass --overwrite"):
        run_tune(TuneConfig(train=_train(tiny_model_dir, out), trials=1, space=SPACE))
    assert (out / "tune.json").is_file()


def test_entity_recognition_is_tuned_on_entity_f1(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    train = _train(tiny_model_dir, out, REVIEWS.parent / "ner", max_train_samples=None, stride=8)
    space = SearchSpace((Param("learning_rate", "loguniform", 1e-3, 5e-3), Param("epochs", "int", 1, 2)))
    summary = run_tune(TuneConfig(train=train, trials=2, space=space)).summary
    assert summary["metric"] == "validation entity_f1 (best epoch)" and summary["trials_run"] == 2
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert set(rows[0]) == {"rank", "trial", "state", "entity_f1", "learning_rate", "epochs", "seconds"}
    assert all(r["state"] == "complete" and 0.0 <= float(r["entity_f1"]) <= 1.0 for r in rows)
    best = json.loads((out / "best" / "train_args.json").read_text())
    assert best["task"] == "token-classification"
    assert best["config"]["learning_rate"] == pytest.approx(summary["best"]["params"]["learning_rate"])
    assert "entity_f1" in summary["best_run"]["validation"]


def test_search_space_yaml_and_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "space.yaml"
    good.write_text(
        "learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-3}\nepochs: {type: int, low: 1, high: 3}\n"
    )
    space = load_space(good)
    assert [p.name for p in space.params] == ["learning_rate", "epochs"]
    cases = {
        "": "empty; give at least one parameter",
        "dropout: {type: uniform, low: 0, high: 0.5}\n": "'dropout' is not a parameter baton tunes",
        "learning_rate: {type: loguniform, low: 0, high: 1}\n": "loguniform needs low > 0",
        "epochs: {type: int, low: 3, high: 2}\n": "low must be below high",
        "batch_size: {type: choice, values: []}\n": "a choice needs a non-empty list",
        "batch_size: {type: choice, vals: [8]}\n": "unknown key\\(s\\) vals",
        "[1, 2]\n": "expected a mapping",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_space(bad)


def test_tune_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "baton", "tune", "--train-file", str(REVIEWS / "train.jsonl"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    (tmp_path / "space.yaml").write_text("momentum: {type: uniform, low: 0, high: 1}\n")
    cases = [
        ((), "--validation-file: tune scores every trial on a validation split"),
        (("--validation-file", str(REVIEWS / "validation.jsonl"), "--trials", "0"), "--trials must be >= 1"),
        (("--validation-file", str(REVIEWS / "validation.jsonl"), "--backend", "grid"), "--backend must be one of"),
        (("--validation-file", str(REVIEWS / "validation.jsonl"), "--space", "space.yaml"), "'momentum' is not a"),
    ]
    for args, message in cases:
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().startswith("error: ") and message in proc.stderr, proc.stderr


@pytest.mark.ray
def test_ray_tune_backend_runs_two_trials_on_a_local_ray(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray.tune")
    out = tmp_path / "tune"
    small = SearchSpace((Param("learning_rate", "loguniform", 1e-4, 5e-3), Param("epochs", "int", 1, 2)))
    result = run_tune(TuneConfig(train=_train(tiny_model_dir, out), trials=2, space=small, backend="ray"))
    assert result.summary["backend"] == "ray" and result.summary["trials_run"] == 2
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(rows) == 2 and all(r["state"] in ("complete", "pruned") for r in rows)
    assert (out / "best" / "model" / "config.json").is_file()

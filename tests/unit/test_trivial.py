"""A model must beat the best constant answer to count as trained; multi-label thresholds are tuned on validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import write_jsonl

from baton.errors import ConfigError, ExportError
from baton.export import ExportConfig, export_bundle
from baton.training import TrainConfig, run_training
from baton.training.trivial import (
    MARGIN,
    beats_baseline,
    required_margin,
    top_answer_share,
    trivial_baseline,
    tune_threshold,
)


def test_tune_threshold_finds_the_best_micro_f1() -> None:
    probs = np.array([[0.30, 0.10], [0.35, 0.05], [0.20, 0.40], [0.10, 0.02]])
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    threshold, f1 = tune_threshold(probs, truth)
    assert f1 == 1.0 and 0.2 < threshold <= 0.3  # at 0.5 nothing is predicted: micro-F1 0
    assert tune_threshold(np.zeros((3, 2)), np.zeros((3, 2))) == (0.5, 0.0)  # nothing to find: stays at 0.5


def test_the_numpy_micro_f1_is_sklearn_s() -> None:
    from sklearn.metrics import f1_score

    from baton.training.trivial import _micro_f1

    rng = np.random.default_rng(0)
    truth = (rng.random((300, 7)) < 0.1).astype(int)
    for threshold in (0.2, 0.6, 0.95, 1.1):  # 1.1: nothing predicted
        pred = (rng.random((300, 7)) >= threshold).astype(int)
        assert _micro_f1(truth, pred) == pytest.approx(f1_score(truth, pred, average="micro", zero_division=0))


def test_trivial_baselines_by_hand() -> None:
    # validation's majority, not train's: the constant that scores best where the model is judged
    single = trivial_baseline(np.array([1, 1, 0, 0, 1]), multi_label=False)
    assert single["answer"] == [1] and single["metric"] == "accuracy" and single["value"] == 0.6
    assert single["margin"] == pytest.approx(1.645 * np.sqrt(0.6 * 0.4 / 5))
    val = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1]])
    multi = trivial_baseline(val, multi_label=True)
    # label 0 alone: micro-F1 2*3/(2*3+1+3) = 0.6; adding label 1: 2*5/(2*5+3+1) = 0.714; adding 2: 2*6/(12+6) lower
    assert multi["answer"] == [0, 1] and multi["value"] == pytest.approx(10 / 14)
    assert not beats_baseline({"micro_f1": multi["value"]}, multi)
    assert not beats_baseline({"micro_f1": 0.99}, multi)  # 4 rows cannot show that any model is better
    assert beats_baseline({"micro_f1": 0.99}, {**multi, "margin": MARGIN})


def test_a_model_below_validation_s_constant_is_not_beaten() -> None:
    """The case found in issue 28: train's majority is 'positive', validation's is 'negative' (58 %). The model
    scores 0.44. The old baseline (train's majority scored on validation, 0.42) called it beaten."""
    positive, negative = 1, 0
    val = np.array([negative] * 174 + [positive] * 126)  # 300 rows, 58 % negative
    baseline = trivial_baseline(val, multi_label=False)
    assert baseline["answer"] == [negative] and baseline["value"] == pytest.approx(0.58)
    assert not beats_baseline({"accuracy": 0.44}, baseline)
    assert not beats_baseline({"accuracy": 0.60}, baseline)  # 2 points up on 300 rows is noise
    assert beats_baseline({"accuracy": 0.70}, baseline)


def test_the_margin_follows_the_validation_size() -> None:
    assert required_margin(0.5, 10_000_000) == MARGIN  # never below the floor
    assert required_margin(0.51, 872) == pytest.approx(0.0284, abs=1e-3)
    assert required_margin(0.5, 40) > 0.12
    assert required_margin(0.5, 40) > required_margin(0.5, 400) > required_margin(0.5, 4000)


def test_top_answer_share_counts_whole_answers() -> None:
    assert top_answer_share(np.array([1, 1, 1, 0])) == 0.75
    assert top_answer_share(np.array([[1, 0], [1, 0], [1, 1], [0, 0]])) == 0.5  # label sets, not labels
    assert top_answer_share(np.array([], dtype=int)) == 0.0


def test_a_model_that_learned_nothing_is_flagged_and_not_exported(tiny_model_dir: Path, tmp_path: Path) -> None:
    # Every text is the same: whatever it learns, the model answers one constant, so it cannot beat the best one.
    rows = [{"text": "the same words every time", "label": "a" if i % 10 < 7 else "b"} for i in range(60)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    run = tmp_path / "run"
    cfg = TrainConfig(
        model=str(tiny_model_dir), train_file=str(train), output_dir=str(run), epochs=1, patience=0, baseline=False
    )
    result = run_training(cfg)
    trivial = result.metrics["trivial_baseline"]
    assert trivial["metric"] == "accuracy" and trivial["beaten"] is False
    assert "NOT BEATEN" in (run / "report.md").read_text()
    with pytest.raises(ExportError, match="does not beat the trivial baseline"):
        export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "b"), quantize="none"))
    assert not (tmp_path / "b").exists()
    export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "b"), quantize="none", allow_untrained=True))
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "-q", "export", str(run), "--output", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "--allow-untrained" in proc.stderr


def test_the_baseline_is_validation_s_majority_and_export_refuses(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Train's majority is 'positive', validation's is 'negative': the constant to beat is 'negative'."""
    texts = ["the same words every time"]
    train_rows = [{"text": texts[0], "label": "positive" if i % 10 < 7 else "negative"} for i in range(60)]
    val_rows = [{"text": texts[0], "label": "negative" if i % 10 < 7 else "positive"} for i in range(40)]
    run = tmp_path / "run"
    cfg = TrainConfig(
        model=str(tiny_model_dir),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", train_rows)),
        validation_file=str(write_jsonl(tmp_path / "val.jsonl", val_rows)),
        output_dir=str(run),
        epochs=1,
        patience=0,
        baseline=False,
    )
    metrics = run_training(cfg).metrics
    trivial = metrics["trivial_baseline"]
    negative = json.loads((run / "train_args.json").read_text())["labels"].index("negative")
    assert trivial["answer"] == [negative] and trivial["value"] == pytest.approx(0.7)
    assert trivial["beaten"] is False and trivial["top_answer_share"] == 1.0
    assert metrics["validation"]["top_answer_share"] == 1.0
    with pytest.raises(ExportError, match="does not beat the trivial baseline"):
        export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "b"), quantize="none"))


def test_multi_label_runs_serve_the_threshold_they_tuned(tiny_model_dir: Path, tmp_path: Path) -> None:
    from support import REVIEWS

    rows = []
    for line in (REVIEWS / "train.jsonl").read_text().splitlines()[:200]:
        row = json.loads(line)
        extra = ["long"] if len(row["text"]) > 60 else []
        rows.append({"text": row["text"], "labels": [row["label"], *extra]})
    data = write_jsonl(tmp_path / "ml.jsonl", rows)
    run = tmp_path / "run"
    result = run_training(
        TrainConfig(
            model=str(tiny_model_dir),
            train_file=str(data),
            label_column="labels",
            output_dir=str(run),
            epochs=2,
            learning_rate=3e-3,
            patience=0,
            baseline=False,
        )
    )
    tuned = result.metrics["decision_threshold"]
    assert result.metrics["validation"]["threshold"] == tuned
    assert json.loads((run / "train_args.json").read_text())["threshold"] == tuned
    bundle = export_bundle(
        ExportConfig(run_dir=str(run), output=str(tmp_path / "b"), quantize="none", allow_untrained=True)
    ).bundle
    assert bundle.manifest.threshold == tuned and bundle.manifest.raw["parity"]["threshold"] == tuned
    # Multi-label answers lead with their labels: `label` is the best label at the threshold, or "" when none
    # clears it, never a label the model decided against (issue 29: {"label": "neutral", "labels": []}).
    from baton.serving import Predictor

    texts = [json.loads(line)["text"] for line in (REVIEWS / "test.jsonl").read_text().splitlines()]
    answers = Predictor.load(bundle, "cpu", "fp32").predict(texts)
    for answer in answers:
        assert answer.labels is not None
        if answer.labels:
            assert answer.label == answer.labels[0] and answer.score >= tuned
        else:
            assert answer.label == "" and answer.score == 0.0
        assert all(answer.scores[name] >= tuned for name in answer.labels)
    assert any(a.labels for a in answers)


def test_pos_weights_and_prior_bias_by_hand() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from baton.training.multilabel import MAX_POS_WEIGHT, init_bias_to_prior, pos_weights

    rows = np.array([[1, 0, 0]] * 100 + [[0, 1, 0]] * 1 + [[0, 0, 0]] * 1899)  # 100, 1 and 0 positives in 2,000
    weights = pos_weights(rows)
    assert weights[0] == pytest.approx(np.sqrt(1900 / 100))  # under the cap
    assert weights[1] == MAX_POS_WEIGHT and weights[2] == MAX_POS_WEIGHT  # capped, also with no positive
    model = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, num_labels=3)
    )
    init_bias_to_prior(model, rows)
    prior = 1 / (1 + np.exp(-model.classifier.bias.detach().numpy()))
    assert prior[0] == pytest.approx(100 / 2000, rel=1e-3) and prior[2] == pytest.approx(1e-4, rel=1e-2)


@pytest.mark.parametrize("loss", ["weighted", "plain"])
def test_the_multi_label_loss_setting_changes_the_recipe(tiny_model_dir: Path, tmp_path: Path, loss: str) -> None:
    """`weighted` starts the output bias at the labels' log-odds; `plain` leaves transformers' zero bias."""
    from safetensors.numpy import load_file

    rows = [{"text": f"text {i}", "labels": ["a"] if i % 4 else ["a", "b"]} for i in range(40)]
    data = write_jsonl(tmp_path / "ml.jsonl", rows)
    run = tmp_path / loss
    cfg = TrainConfig(
        model=str(tiny_model_dir),
        train_file=str(data),
        label_column="labels",
        output_dir=str(run),
        epochs=1,
        learning_rate=1e-9,  # nothing moves: the bias stays where the recipe put it
        patience=0,
        baseline=False,
        multi_label_loss=loss,
    )
    run_training(cfg)
    bias = load_file(str(run / "model/model.safetensors"))["classifier.bias"]
    train_prior = np.array([36 / 40, 10 / 40])  # stratified 10 % held out: the train split keeps about these shares
    if loss == "weighted":
        assert np.all(bias[1] < -0.5) and abs(1 / (1 + np.exp(-bias[1])) - train_prior[1]) < 0.1
    else:
        assert np.abs(bias).max() < 1e-6
    with pytest.raises(ConfigError, match="--multi-label-loss must be weighted or plain"):
        TrainConfig(train_file=str(data), multi_label_loss="focal")

"""Training on the tiny model with the real Trainer: outputs, tasks, formats."""

from __future__ import annotations

import json
from pathlib import Path

from support import REVIEWS, write_jsonl

from baton.training import TrainConfig, run_training


def test_finished_run_has_the_contracted_outputs(tiny_run: Path) -> None:
    for name in (
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "metrics.json",
        "train_args.json",
        "report.md",
        "training_curves.png",
        "confusion_matrix_validation.png",
        "confusion_matrix_test.png",
    ):
        assert (tiny_run / name).is_file(), name
    assert not (tiny_run / "checkpoints").exists()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for split in ("validation", "test"):
        m = metrics[split]
        assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(m)
        assert m["samples"] == 150
        assert sum(map(sum, m["confusion_matrix"])) == 150
        assert set(m["per_class"]) == {"negative", "positive"}
    # the tiny model learns the easy demo task well beyond its untrained head
    assert metrics["validation"]["accuracy"] >= 0.8
    assert metrics["validation"]["accuracy"] > metrics["baseline"]["validation"]["accuracy"]
    config = json.loads((tiny_run / "model/config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["problem_type"] == "single_label_classification"
    report = (tiny_run / "report.md").read_text()
    assert "untrained head" in report and "confusion matrix" in report


def test_reported_accuracy_matches_an_independent_prediction(tiny_run: Path) -> None:
    """metrics.json must agree with predictions recomputed in dataset order (guards the group_by_length trap: scored
    against labels in the wrong order, accuracy falls toward chance). On a CPU with native bf16 the run evaluates
    under bf16 autocast (`--bf16 auto`), and a text whose two fp32 logits lie within bf16's rounding may go either
    way: one did in a clean-clone run (fp32 margin 0.089). Only such near-ties may differ."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_run / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_run / "model").eval()
    rows = [json.loads(x) for x in (REVIEWS / "validation.jsonl").read_text().splitlines()]
    with torch.no_grad():
        enc = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
        logits = model(**enc).logits
    pred = logits.argmax(-1).tolist()
    top2 = logits.topk(2, dim=-1).values
    near_ties = int(((top2[:, 0] - top2[:, 1]) < 0.25).sum())  # bf16 keeps ~3 digits of logits of size ~5
    acc = sum(model.config.id2label[p] == r["label"] for p, r in zip(pred, rows, strict=True)) / len(rows)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    bf16 = metrics["training"].get("bf16", False)
    allowed = near_ties / len(rows) if bf16 else 0.0
    assert abs(metrics["validation"]["accuracy"] - acc) <= allowed + 1e-9


def _quick(tiny_model_dir: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model=str(tiny_model_dir),
        output_dir=str(out),
        epochs=1,
        batch_size=16,
        learning_rate=1e-3,
        patience=0,
        max_length=32,
        baseline=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_multi_label_uses_sigmoid_metrics(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = []
    for i in range(60):
        labels = [["joy"], ["anger"], ["joy", "surprise"], ["surprise"]][i % 4]
        rows.append(
            {"text": f"review number {i} is great" if "joy" in labels else f"awful thing {i}", "labels": labels}
        )
    data = write_jsonl(tmp_path / "ml.jsonl", rows)
    result = run_training(_quick(tiny_model_dir, tmp_path / "run", train_file=str(data), label_column="labels"))
    m = result.metrics["validation"]
    assert {"micro_f1", "macro_f1", "accuracy"} <= set(m) and "confusion_matrix" not in m
    assert set(m["per_class"]) == {"anger", "joy", "surprise"}
    config = json.loads((tmp_path / "run/model/config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    args = json.loads((tmp_path / "run/train_args.json").read_text())
    assert "stratified" not in args["validation_source"]  # multi-label: random split


def test_sentence_pairs_from_csv_with_int_labels(tiny_model_dir: Path, tmp_path: Path) -> None:
    lines = ["premise,hypothesis,label"]
    for i in range(50):
        lines.append(f"the cat sat {i},the cat sat {i},1" if i % 2 else f"the cat sat {i},a dog ran {i},0")
    data = tmp_path / "pairs.csv"
    data.write_text("\n".join(lines) + "\n")
    result = run_training(
        _quick(
            tiny_model_dir, tmp_path / "run", train_file=str(data), text_column="premise", text_pair_column="hypothesis"
        )
    )
    assert set(result.metrics["validation"]["per_class"]) == {"0", "1"}
    args = json.loads((tmp_path / "run/train_args.json").read_text())
    assert args["text_pair_column"] == "hypothesis"
    assert args["sizes"]["validation"] == 5 and "stratified" in args["validation_source"]


def test_parquet_input_and_max_train_samples(tiny_model_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    rows = [json.loads(x) for x in (REVIEWS / "train.jsonl").read_text().splitlines()]
    data = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(data)
    result = run_training(_quick(tiny_model_dir, tmp_path / "run", train_file=str(data), max_train_samples=40))
    assert result.metrics["training"]["train_samples"] == 40

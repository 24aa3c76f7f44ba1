"""`baton distill`: the student keeps evenly spread teacher layers, trains on soft labels, and exports like any run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baton.errors import ConfigError
from baton.training.distill import DistillConfig, _Distill, kept_layers, run_distillation


def test_kept_layers_are_evenly_spread() -> None:
    assert kept_layers(6, 3) == [0, 2, 4]
    assert kept_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert kept_layers(2, 1) == [0]
    with pytest.raises(ConfigError, match=r"--layers must be in \[1, 5\]"):
        kept_layers(6, 6)


def test_the_student_starts_as_the_teacher_s_kept_layers(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "teacher")
    teacher = BertForSequenceClassification.from_pretrained(tmp_path / "teacher")
    recipe = _Distill(tmp_path / "teacher", DistillConfig(run_dir="r", output_dir="x", layers=2), 4, [])
    student = recipe.build_model(str(tmp_path / "teacher"), None)
    assert student.config.num_hidden_layers == 2 and recipe.keep == [0, 2]
    t, s = teacher.state_dict(), student.state_dict()
    for key in s:
        source = key.replace(".layer.1.", ".layer.2.")  # student layer 1 is teacher layer 2
        assert torch.equal(s[key], t[source]), key
    assert any(".layer.1." in k for k in s) and not any(".layer.2." in k for k in s)


def test_distil_then_export(tiny_run: Path, tmp_path: Path) -> None:
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor

    result = run_distillation(
        DistillConfig(run_dir=str(tiny_run), output_dir=str(tmp_path / "student"), layers=1, epochs=2)
    )
    args = json.loads((tmp_path / "student" / "train_args.json").read_text())
    assert args["distilled_from"]["kept_layers"] == [0] and args["distilled_from"]["teacher_layers"] == 2
    assert json.loads((tmp_path / "student" / "model" / "config.json").read_text())["num_hidden_layers"] == 1
    assert result.metrics["validation"]["accuracy"] > result.metrics["trivial_baseline"]["value"]
    export_bundle(ExportConfig(run_dir=str(tmp_path / "student"), output=str(tmp_path / "b"), allow_fallback=True))
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    # the bundle is the trained student: its gates, on the same validation rows, score what training scored
    assert manifest["parity"]["accuracy"]["fp32"] == pytest.approx(result.metrics["validation"]["accuracy"])
    predictions = Predictor.load(tmp_path / "b", device="cpu").predict(["great battery", "broke after a week"])
    assert {p.label for p in predictions} <= set(manifest["labels"])


def test_bad_distillations_are_one_line(tiny_run: Path, tiny_ner_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--layers must be in \[1, 1\]"):
        run_distillation(DistillConfig(run_dir=str(tiny_run), output_dir=str(tmp_path / "s"), layers=2))
    with pytest.raises(ConfigError, match="token-classification run: `baton distill` distils classifiers"):
        run_distillation(DistillConfig(run_dir=str(tiny_ner_run), output_dir=str(tmp_path / "s"), layers=1))
    with pytest.raises(ConfigError, match="--alpha must be in"):
        DistillConfig(run_dir="r", output_dir="o", alpha=1.5)
    # a few-shot or pooled run's head sits outside the model: a student built from it would start with no head
    import shutil

    pooled = tmp_path / "pooled"
    shutil.copytree(tiny_run, pooled)
    (pooled / "model" / "head.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"needs a teacher with its own classification head: train it with --no"):
        run_distillation(DistillConfig(run_dir=str(pooled), output_dir=str(tmp_path / "s"), layers=1))


REVIEWS = Path(__file__).resolve().parents[2] / "examples" / "reviews"


def test_unlabelled_texts_join_the_training_rows(tiny_run: Path, tmp_path: Path) -> None:
    texts = [json.loads(x)["text"] for x in (REVIEWS / "test.jsonl").read_text().splitlines()]
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("\n".join(texts) + "\n\n")  # a blank line is no document
    result = run_distillation(
        DistillConfig(
            run_dir=str(tiny_run),
            output_dir=str(tmp_path / "student"),
            layers=1,
            epochs=1,
            unlabeled_file=str(unlabeled),
        )
    )
    labelled = len((REVIEWS / "train.jsonl").read_text().splitlines())
    assert result.metrics["training"]["train_samples"] == labelled + len(texts)
    record = json.loads((tmp_path / "student" / "train_args.json").read_text())["distilled_from"]
    assert record["unlabeled_texts"] == len(texts) and record["unlabeled_file"] == str(unlabeled)


def test_an_unlabelled_batch_learns_from_the_teacher_alone(tmp_path: Path) -> None:
    """The loss of a batch without labels is the soft term alone: finite, and zero once the student is the teacher."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "teacher")
    recipe = _Distill(tmp_path / "teacher", DistillConfig(run_dir="r", output_dir="x", layers=1), 2, [])
    student = recipe.build_model(str(tmp_path / "teacher"), None)
    compute_loss = recipe.trainer_class(Trainer).compute_loss
    ids = torch.randint(1, 50, (4, 7))
    unlabelled = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.full((4,), -100)}
    loss = compute_loss(None, student, dict(unlabelled))
    assert torch.isfinite(loss) and loss.item() > 0
    labelled = {**unlabelled, "labels": torch.tensor([0, 1, 0, 1])}
    assert compute_loss(None, student, dict(labelled)).item() > loss.item()  # the hard term adds to it
    recipe.teacher = student  # a student that is its teacher has nothing left to learn from unlabelled text
    assert compute_loss(None, student, dict(unlabelled)).item() == pytest.approx(0.0, abs=1e-6)


def test_bad_unlabelled_files_are_one_line_and_leave_the_old_run(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    from baton.errors import DataError

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)  # a finished run that --overwrite would replace
    with pytest.raises(DataError, match="--unlabeled-file: file not found"):
        run_distillation(
            DistillConfig(
                run_dir=str(tiny_run), output_dir=str(old), layers=1, overwrite=True, unlabeled_file="nope.txt"
            )
        )
    assert (old / "metrics.json").is_file() and (old / "model").is_dir()  # checked before anything was removed
    with pytest.raises(DataError, match=r"no column 'body' \(--unlabeled-text-column\)"):
        run_distillation(
            DistillConfig(
                run_dir=str(tiny_run),
                output_dir=str(tmp_path / "s"),
                layers=1,
                unlabeled_file=str(REVIEWS / "test.jsonl"),
                unlabeled_text_column="body",
            )
        )
    assert not (tmp_path / "s").exists()

"""Each warning of a run fires when its rule says, and names a fix (training/advice.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import REVIEWS, write_jsonl

from baton.errors import ExportError
from baton.training.advice import WIDE_INTERVAL, AdviceCode, advise, wilson_interval
from baton.training.schedule import plan_schedule
from baton.training.trivial import trivial_baseline


def _advise(**overrides: object) -> list:
    kwargs: dict = {
        "schedule": plan_schedule(2000),
        "validation": {"accuracy": 0.9, "top_answer_share": 0.5},
        "validation_rows": 2000,
        "baseline": {"metric": "accuracy", "value": 0.5, "margin": 0.02, "beaten": True, "judgeable": True},
        "dropped": {},
        "smallest_class": 500,
        "few_shot": False,
        "metric": "accuracy",
    }
    kwargs.update(overrides)
    found = advise(**kwargs)
    assert all(a.fix and a.message for a in found)
    return found


def _codes(**overrides: object) -> set[AdviceCode]:
    return {a.code for a in _advise(**overrides)}


def test_a_healthy_run_gets_no_warning() -> None:
    assert _codes() == set()


def test_each_rule_fires_on_its_own() -> None:
    assert _codes(schedule=plan_schedule(2000, epochs=1.0)) == {AdviceCode.FEW_STEPS}  # 125 steps
    assert _codes(validation_rows=60) == {AdviceCode.SMALL_VALIDATION}
    assert _codes(dropped={"--validation-file v.jsonl: unseen labels": 3}) == {AdviceCode.UNSEEN_LABELS}
    assert _codes(baseline={"metric": "accuracy", "value": 0.9, "margin": 0.02, "beaten": False}) == {
        AdviceCode.UNTRAINED
    }
    assert _codes(validation={"accuracy": 0.9, "top_answer_share": 0.97}) == {AdviceCode.ONE_ANSWER}
    assert _codes(smallest_class=5) == {AdviceCode.FEW_PER_CLASS}
    assert _codes(smallest_class=5, few_shot=True) == set()  # the few-shot path is the fix it would name
    assert _codes(schedule=plan_schedule(2000, epochs=1.0), few_shot=True) == set()  # pairs, not fine-tuning steps


def test_the_interval_is_wilson_s_and_named_in_the_message() -> None:
    low, high = wilson_interval(0.8, 100)
    assert low == pytest.approx(0.7112, abs=1e-3) and high == pytest.approx(0.8667, abs=1e-3)
    found = _advise(validation={"accuracy": 0.8}, validation_rows=100, baseline=None, smallest_class=None)
    assert [a.code for a in found] == [AdviceCode.SMALL_VALIDATION]
    assert "[0.711, 0.867]" in found[0].message and max(0.8 - low, high - 0.8) > WIDE_INTERVAL


def test_a_split_too_small_to_judge_says_so() -> None:
    baseline = trivial_baseline([0, 1], multi_label=False)
    baseline.update(beaten=False, judgeable=False)
    (advice,) = _advise(validation={}, validation_rows=2, baseline=baseline, few_shot=True, smallest_class=None)
    assert "too few to show that any model beats" in advice.message and "--validation-file" in advice.fix


def test_sixteen_rows_and_no_validation_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    """8 per class, no validation file: the few-shot path trains; the 2-row split cannot judge it, and the run and
    export say so and what to do (issue 28: "a 2-row validation split, 2 optimizer steps, no warning")."""
    from baton.export import ExportConfig, export_bundle
    from baton.training import TrainConfig, run_training

    rows = [json.loads(x) for x in (REVIEWS / "train.jsonl").read_text().splitlines()]
    sample = [r for label in ("negative", "positive") for r in [r for r in rows if r["label"] == label][:8]]
    run = tmp_path / "run"
    metrics = run_training(
        TrainConfig(
            model=str(tiny_model_dir),
            train_file=str(write_jsonl(tmp_path / "t.jsonl", sample)),
            output_dir=str(run),
            max_length=64,
        )
    ).metrics
    assert json.loads((run / "train_args.json").read_text())["few_shot"] is True
    codes = {w["code"] for w in metrics["warnings"]}
    assert {"small-validation", "untrained"} <= codes
    assert metrics["trivial_baseline"]["judgeable"] is False
    with pytest.raises(ExportError, match=r"too small to show .* --validation-file .* --allow-untrained"):
        export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "b"), quantize="none"))

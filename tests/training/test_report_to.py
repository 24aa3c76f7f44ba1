"""`--report-to` hands the run's curves to Trainer's integrations; off by default; a missing one is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REVIEWS, train_tiny

from baton.errors import ConfigError
from baton.training import TrainConfig


def test_tensorboard_gets_event_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers.integrations")
    from transformers.integrations import is_tensorboard_available

    if not is_tensorboard_available():
        pytest.skip("neither tensorboard nor tensorboardX is installed")
    run = tmp_path / "run"
    train_tiny(tiny_model_dir, REVIEWS, run, epochs=1, max_train_samples=64, few_shot=False, report_to="tensorboard")
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_off_by_default_writes_no_logs(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_tiny(tiny_model_dir, REVIEWS, run, epochs=1, max_train_samples=64, few_shot=False)
    assert not (run / "logs").exists()


def test_a_bad_or_missing_integration_is_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers.integrations import is_mlflow_available

    with pytest.raises(ConfigError, match="--report-to must be one of none, tensorboard, mlflow"):
        TrainConfig(train_file="x.jsonl", report_to="wandb")
    if is_mlflow_available():
        pytest.skip("mlflow is installed here")
    with pytest.raises(ConfigError, match="pip install mlflow"):
        train_tiny(tiny_model_dir, REVIEWS, tmp_path / "r", epochs=1, max_train_samples=64, report_to="mlflow")

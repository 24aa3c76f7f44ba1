"""The training console: a progress bar and a line per evaluation on the terminal, the rest in RUN/train.log; a
wrong column fails before torch is imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support import REVIEWS

from baton.training.console import evaluation_line

_EVAL_LINE = re.compile(r"epoch \d+\.\d\d step \d+: loss (\d+\.\d{4}|n/a), accuracy \d\.\d{4}")


def _train(*args: str, cwd: Path, block: str | None = None) -> subprocess.CompletedProcess[str]:
    pre = f"import sys; sys.modules[{block!r}] = None; " if block else "import sys; "
    code = pre + "from baton.cli import main; main(sys.argv[1:])"
    # CI=true: transformers then propagates its log lines to the root logger; they must still stay off the terminal
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "CI": "true"}
    return subprocess.run(
        [sys.executable, "-c", code, "train", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def test_the_terminal_shows_a_bar_and_evaluation_lines(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--model", str(tiny_model_dir), "--train-file", str(REVIEWS / "train.jsonl")]
    args += ["--validation-file", str(REVIEWS / "validation.jsonl"), "--output", str(run), "--epochs", "2"]
    args += ["--max-train-samples", "96", "--no-few-shot", "--learning-rate", "3e-3", "--max-length", "64"]
    proc = _train(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    terminal = proc.stdout + proc.stderr
    assert len(_EVAL_LINE.findall(terminal)) == 2  # one line per evaluation (once an epoch here)
    assert "training:" in terminal and ("step/s" in terminal or "s/step" in terminal)  # the progress bar
    assert "You should probably TRAIN" not in terminal and "{'loss'" not in terminal
    assert "Map:" not in terminal and "tokenizing train" not in terminal  # datasets' bars
    log = (run / "train.log").read_text()
    assert "You should probably TRAIN" in log and '"loss":' in log and '"eval_accuracy":' in log
    # a second run that is refused (no --overwrite) keeps the finished run's log
    refused = _train(*args, cwd=tmp_path)
    assert refused.returncode == 2 and "already holds a finished run" in refused.stderr
    assert (run / "train.log").read_text() == log


def test_a_wrong_column_fails_before_torch_is_imported(tmp_path: Path) -> None:
    proc = _train("--train-file", str(REVIEWS / "train.jsonl"), "--text-column", "body", cwd=tmp_path, block="torch")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"error: --train-file {REVIEWS / 'train.jsonl'}: no column 'body' (--text-column); columns found: text, label"
    )


def test_the_evaluation_line() -> None:
    assert evaluation_line(2.0, 40, 0.51234, "accuracy", 0.8) == "epoch 2.00 step 40: loss 0.5123, accuracy 0.8000"
    assert evaluation_line(None, 0, None, "entity_f1", None) == "epoch 0.00 step 0: loss n/a, entity_f1 n/a"

"""`baton compare RUN...`: one table and overlaid curves for finished runs, no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import REVIEWS, train_tiny


def test_two_runs_side_by_side(tiny_model_dir: Path, tiny_run: Path, tmp_path: Path) -> None:
    other = tmp_path / "short"
    train_tiny(tiny_model_dir, REVIEWS, other, epochs=1, max_train_samples=64, few_shot=False)
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "-q", "compare", str(tiny_run), str(other), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = (out / "compare.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| base model |" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| run", "| short"]  # tiny_run's folder is named "run"
    short = next(line for line in text.splitlines() if line.startswith("| short "))
    accuracy = json.loads((other / "metrics.json").read_text())["validation"]["accuracy"]
    assert f"{accuracy:.4f}" in short and "| 64 |" in short and "batch 16, lr 0.003, 1 epoch(s)" in short
    assert (out / "curves.png").stat().st_size > 0 and "![curves](curves.png)" in text
    assert proc.stdout.strip() == text.strip()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "compare", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "is not a finished run: no train_args.json" in proc.stderr
    assert "Traceback" not in proc.stderr

"""`torchrun --nproc_per_node=2 -m baton train` on CPU (gloo): finishes, writes the run once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import REVIEWS


def test_torchrun_two_cpu_processes(tiny_model_dir: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun is installed with torch"
    out = tmp_path / "run"
    cmd = [
        torchrun,
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "baton",
        "-q",
        "train",
        "--model",
        str(tiny_model_dir),
        "--train-file",
        str(REVIEWS / "train.jsonl"),
        "--validation-file",
        str(REVIEWS / "validation.jsonl"),
        "--max-train-samples",
        "128",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--output",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["world_size"] == 2
    assert metrics["validation"]["samples"] == 150  # gathered across ranks without duplicates
    assert proc.stdout.count("run written to") == 2  # both ranks finish; only rank 0 writes files
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [
            "model",
            "metrics.json",
            "train_args.json",
            "report.md",
            "training_curves.png",
            "confusion_matrix_validation.png",
            "log_history.json",
            "train.log",
        ]
    )

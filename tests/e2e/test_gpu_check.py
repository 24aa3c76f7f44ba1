"""scripts/gpu_check.py, the one call that checks every CUDA path, run here on the CPU provider: the same steps and
the same `baton` commands (export, bench serve, bench inprocess), so a lent GPU never meets a flag that is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.py"


def _check(out: Path, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), *args], capture_output=True, text=True, timeout=600)
    return proc.returncode, json.loads((out / "gpu_check.json").read_text())


def test_every_step_runs_on_the_cpu_provider(tiny_run: Path, tmp_path: Path) -> None:
    rc, summary = _check(tmp_path / "out", "--device", "cpu", "--run", str(tiny_run), "--quick")
    failed = [(s["step"], s.get("log_tail", s.get("skipped"))) for s in summary["steps"] if s["rc"] != 0]
    assert rc == 0 and summary["passed"], failed
    assert [s["step"] for s in summary["steps"]] == ["env", "export", "serve", "inprocess"]
    figures = summary["figures"]
    assert figures["serve"]["variant"] == "int8"
    assert [level["concurrency"] for level in figures["serve"]["levels"]] == [1, 8]
    assert all(level["texts_per_s"] > 0 and not level["errors"] for level in figures["serve"]["levels"])
    assert [row["batch_size"] for row in figures["inprocess"]] == [1, 8, 32, 64]
    assert all(row["ratio"] > 0 for row in figures["inprocess"])
    assert figures["fp16_gate"] is None  # a CPU export makes no fp16 variant
    assert figures["int8_gate"]["passed"] is True


def test_without_a_gpu_the_cuda_check_fails_and_says_so(tmp_path: Path) -> None:
    rc, summary = _check(tmp_path / "out", "--device", "cuda", "--run", str(tmp_path / "no-run"))
    assert rc == 1 and summary["passed"] is False
    assert summary["cuda_provider"] is False  # the CPU build of onnxruntime, as installed by make test
    skipped = {s["step"]: s.get("skipped") for s in summary["steps"] if s["rc"] is None}
    assert set(skipped) == {"export", "serve", "inprocess"}
    assert all("no trained run" in why for why in skipped.values())


def test_the_steps_time_limits_fit_the_promised_eight_minutes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sum(module.LIMITS.values()) < 8 * 60  # README and gpu_check.sh: under 8 minutes after the install

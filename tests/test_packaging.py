"""A non-editable install holds baton.training/export/serving (and stubs), and no generic top-level modules."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, REVIEWS


def test_wheel_layout_and_imports(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("baton-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"baton"}
    for expected in (
        "baton/training/trainer.py",
        "baton/export/exporter.py",
        "baton/serving/server.py",
        "baton/serving/v1/classifier_pb2.py",
        "baton/serving/kserve/grpc_service_pb2_grpc.py",
    ):
        assert expected in names
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    code = (
        "import baton.training, baton.export, baton.serving, baton.cli, baton.serving.server\n"
        "print(baton.training.__file__); print(baton.serving.__file__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(target)) for line in proc.stdout.splitlines())


def _cli_without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`baton ARGS` in a fresh interpreter where `import MODULE` fails, as in an install without its extra."""
    code = f"import sys; sys.modules[{module!r}] = None; from baton.cli import main; main(sys.argv[1:])"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_missing_extra_is_one_line_naming_the_extra(tiny_model_dir: Path, tiny_run: Path, tmp_path: Path) -> None:
    train = _cli_without(
        "torch", "train", "--model", str(tiny_model_dir), "--train-file", str(REVIEWS / "train.jsonl"), cwd=tmp_path
    )
    assert train.returncode == 2, train.stderr
    assert train.stderr.strip() == (
        "error: this needs the Python package 'torch', which is not installed: pip install 'baton[train]'"
    )
    export = _cli_without("torch", "export", str(tiny_run), "--output", str(tmp_path / "b"), cwd=tmp_path)
    assert (
        export.returncode == 2 and "pip install 'baton[export]'" in export.stderr and "Traceback" not in export.stderr
    )
    assert not (tmp_path / "b").exists()
    serve = _cli_without("grpc", "predict", "--server", "127.0.0.1:1", "hello", cwd=tmp_path)
    assert serve.returncode == 2 and "pip install 'baton[serve]'" in serve.stderr and "Traceback" not in serve.stderr


def test_the_client_is_exported_lazily() -> None:
    """`from baton.serving import Client` works (as documented), and the embedded runtime alone needs no grpc."""
    code = (
        "import sys\n"
        "import baton.serving\n"
        "assert 'grpc' not in sys.modules, 'baton.serving imported grpc'\n"
        "from baton.serving import AsyncClient, Client, ClientError, TLSConfig\n"
        "from baton.serving.client import Client as Direct\n"
        "assert Client is Direct and 'grpc' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


_DEFAULTS = {
    "train": {"text", "label", "runs/latest", "3", "16", "1e-4", "128", "42", "2", "auto"},
    "serve": {"127.0.0.1", "50051", "9464", "8192", "8", "4096", "256", "20000", "1 MiB", "10", "no limit"},
}


@pytest.mark.parametrize("command", sorted(_DEFAULTS))
def test_help_shows_the_defaults(command: str) -> None:
    """typer's rich help reads `[text]` as markup and drops it (it showed "Text column ."): defaults are written as
    "(default: X)" and must all appear; no help string may use square brackets."""
    import re

    from baton import cli

    assert re.findall(r'help="[^"]*\[', Path(cli.__file__).read_text(encoding="utf-8")) == []
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "baton", command, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    shown = set(re.findall(r"\(default: ([^)]+)\)", proc.stdout))
    assert _DEFAULTS[command] <= shown, _DEFAULTS[command] - shown

"""A non-editable install holds baton.training/export/serving (and stubs), and no generic top-level modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, REVIEWS

from baton.training import schedule


def _clean_copy(dest: Path) -> Path:
    """The files git tracks, as a fresh clone has them: no build/, no egg-info, no editable leftovers."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


# Imports every module of the installed baton.serving and baton.tools (and the other roots), then proves where
# they came from: the venv's own site-packages, with no editable finder on sys.meta_path.
_IMPORT_ALL = """
import importlib, pkgutil, sys
import baton
roots = ["baton", "baton.training", "baton.export", "baton.serving", "baton.tools"]
names = []
for root in roots:
    pkg = importlib.import_module(root)
    names.append(root)
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, root + ".")]
for name in names:
    importlib.import_module(name)
editable = [type(f).__name__ for f in sys.meta_path if "editable" in type(f).__name__.lower()]
assert not editable, editable
print(baton.__file__)
print(len(names))
print("\\n".join(names))
"""


def test_wheel_from_a_clean_copy_installs_every_package(tmp_path: Path) -> None:
    """A wheel built from a clean copy, installed into a fresh venv that has no editable install of baton, imports
    every module of every package. Dependencies come from the test's own environment through a plain path entry
    (a `.pth` line that is a directory is added to sys.path, but the `.pth` files inside it are not run, so the
    editable finder of the checkout never loads)."""
    src = _clean_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("baton-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"baton"}
    packages_in_tree = {
        str(init.parent.relative_to(REPO))
        for root in ("baton", "training", "export", "serving", "tools")
        for init in (REPO / root).rglob("__init__.py")
        if ".venv" not in init.parts
    }
    mapped = {root: f"baton/{root}" for root in ("training", "export", "serving", "tools")}
    for folder in packages_in_tree:
        head, _, rest = folder.partition("/")
        installed = mapped.get(head, head) + (f"/{rest}" if rest else "")
        assert f"{installed}/__init__.py" in names, f"{folder} is missing from the wheel"
    assert "baton/serving/py.typed" in names and "baton/serving/v1/classifier_pb2.pyi" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = _site_packages(python)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    (site / "baton_test_deps.pth").write_text(str(_site_packages(Path(sys.executable))) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(
        [str(python), "-I", "-c", _IMPORT_ALL], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    first, count, *imported = proc.stdout.splitlines()
    assert first.startswith(str(site)), first
    assert "baton.serving.tasks.classification" in imported and "baton.tools.score.job" in imported
    assert int(count) == len(imported) > 40


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
    "train": {
        "text",
        "label",
        "runs/latest",
        "128",
        "42",
        "auto",
        f"{schedule.LEARNING_RATE:g}",
        f"auto, from the training set's size: {schedule.EPOCHS:g}, or enough for {schedule.MIN_STEPS} optimizer steps",
    },
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

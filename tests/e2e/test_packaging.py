"""A non-editable install holds baton.training/export/serving (and stubs), and no generic top-level modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import REPO, REVIEWS


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
from importlib import resources
page = resources.files("baton.serving.http").joinpath("static")
missing = [n for n in ("index.html", "page.js", "page.css", "LICENSE.txt") if not page.joinpath(n).is_file()]
assert not missing, f"the wheel lacks the page's files: {missing}"
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


def _help(*command: str) -> str:
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "baton", *command, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", ["train", "serve", "export", "adapt", "tune", "learning-curve", "distill"])
def test_help_shows_each_default_once_from_its_config_class(command: str) -> None:
    """The defaults a command's help shows are read from its config class (baton/cli/_options.py, CONFIGS), not
    written again in help strings: every option with a config default shows exactly that default as
    "(default: X)"; no flag shows a type; typer's own "[default: X]" is off. typer's rich help reads `[text]` as
    markup and drops it, so no help string may use square brackets."""
    import dataclasses
    import re
    from importlib import import_module

    from baton.cli import _options

    for module in ("training", "serving", "exporting", "inference", "bench"):
        source = Path(import_module(f"baton.cli.{module}").__file__ or "").read_text(encoding="utf-8")
        assert re.findall(r'help="[^"]*\[', source) == []
    shown = _help(command)
    assert "[default:" not in shown
    assert [line for line in shown.splitlines() if " <bool> " in line and "--help" not in line] == []
    rows = {m.group(1): m.group(2) for m in re.finditer(r"(--[a-z0-9-]+)\b[^\n]*?\(default: ([^)]+)\)", shown)}
    checked = 0
    for ref in _options.CONFIGS[command]:
        module, name = ref.split(":")
        for f in dataclasses.fields(getattr(import_module(module), name)):
            flag = "--" + f.name.replace("_", "-")
            if f.default in (None, dataclasses.MISSING) or not re.search(rf"{flag}\b", shown):
                continue
            if isinstance(f.default, bool):
                continue  # a flag: off unless given
            value = f.default.value if hasattr(f.default, "value") else f.default
            expected = f"{value:g}" if isinstance(value, float) else str(value)
            assert rows.get(flag) == expected, (flag, rows.get(flag), expected)
            checked += 1
    assert checked >= 3


def test_old_flag_names_still_work_for_one_release(tmp_path: Path) -> None:
    """--output-dir, --data, --file and --target became --output, --input and --server; the old names are hidden
    aliases that warn, and the new ones are what the help lists."""
    from baton.cli._options import rename_aliases

    args, warnings = rename_aliases(["evaluate", "B", "--data=x.jsonl", "--output-dir", "o", "--", "--data"])
    assert args == ["evaluate", "B", "--input=x.jsonl", "--output", "o", "--", "--data"]
    assert len(warnings) == 2 and "--data is now --input" in warnings[0]
    assert rename_aliases(["train", "--data", "x"])[0] == ["train", "--data", "x"]  # not an alias of train's
    assert "--output-dir" not in _help("train") and "--output" in _help("train")
    missing = str(tmp_path / "missing.jsonl")
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "learning-curve", "--train-file", missing, "--output-dir", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--output-dir is now --output" in proc.stderr
    assert "not found" in proc.stderr and "No such option" not in proc.stderr, proc.stderr


@pytest.mark.timeout(600)
def test_the_serving_stage_tests_run_without_the_training_stack() -> None:
    """The runtime is torch-free by contract: its server and batcher tests pass with torch, transformers, optimum,
    datasets and scikit-learn impossible to import (tests/conftest.py, BATON_TESTS_WITHOUT_TORCH), on the
    committed bundle."""
    env = {**os.environ, "BATON_TESTS_WITHOUT_TORCH": "1"}
    files = [str(REPO / "tests" / "serving" / name) for name in ("test_server.py", "test_batching.py")]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *files],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1]

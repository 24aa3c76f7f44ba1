"""Shared fixtures: a tiny random BERT with its own WordPiece tokenizer, and a trained run of it."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from support import NER, REVIEWS, build_tiny_model, train_tiny

_OWN_CACHE: list[str] = []


# BATON_TESTS_WITHOUT_TORCH=1: the training stack cannot be imported, as on a serving machine
# (tests/e2e/test_packaging.py runs the serving stage so, on the committed bundle).
_TRAINING_STACK = ("torch", "transformers", "optimum", "datasets", "sklearn")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("BATON_TESTS_WITHOUT_TORCH") == "1":
        for name in _TRAINING_STACK:
            sys.modules[name] = None  # type: ignore[assignment]
    # Keep the datasets cache out of $HOME and never reach for the Hub in tests.
    if "HF_DATASETS_CACHE" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="baton-ds-cache-"))
        os.environ["HF_DATASETS_CACHE"] = _OWN_CACHE[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _OWN_CACHE:  # the session's own cache only (a few MB a run, left behind before)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `baton train` run of the tiny model on the demo reviews (trained enough to be confident)."""
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train_tiny(tiny_model_dir, REVIEWS, out, test_file=str(REVIEWS / "test.jsonl"))
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported with real Optimum and quantized to int8 (gates must pass)."""
    from baton.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    export_bundle(ExportConfig(run_dir=str(tiny_run), output=str(out)))
    return out


@pytest.fixture(scope="session")
def tiny_ner_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished entity-recognition run of the tiny model on the shipped NER demo sentences."""
    out = tmp_path_factory.mktemp("tiny-ner-run") / "run"
    train_tiny(tiny_model_dir, NER, out, stride=8)
    return out


@pytest.fixture(scope="session")
def tiny_ner_bundle(tiny_ner_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from baton.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("tiny-ner-bundle") / "bundle"
    export_bundle(ExportConfig(run_dir=str(tiny_ner_run), output=str(out), allow_fallback=True))
    return out

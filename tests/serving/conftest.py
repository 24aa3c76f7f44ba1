"""The serving stage runs on the committed tiny bundle (tests/data/tiny-bundle), so its tests need no torch: each
session gets its own copy, which tests may damage freely."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import COMMITTED_BUNDLE


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("committed-bundle") / "bundle"
    shutil.copytree(COMMITTED_BUNDLE, out)
    return out

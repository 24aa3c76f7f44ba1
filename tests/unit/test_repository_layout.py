"""A model repository's folder rules and version policies (serving/repository/layout.py, policy.py): pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.errors import ConfigError
from baton.serving.repository import VersionPolicy, scan


def _bundle(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "bundle.json").write_text("{}")
    return path


def test_a_bundle_is_a_one_model_repository(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "reviews")
    layout = scan(root, "sentiment")
    assert layout.single and layout.models == {"sentiment": {1: root}} and not layout.skipped


def test_models_are_bundles_or_numbered_versions_and_the_rest_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    topic = _bundle(root / "topic")
    v1, v12 = _bundle(root / "sentiment" / "1"), _bundle(root / "sentiment" / "12")
    (root / "sentiment" / "3").mkdir()  # no bundle.json
    _bundle(root / "sentiment" / "01")  # a leading zero is not a version
    (root / "empty").mkdir()
    _bundle(root / ".hidden")
    _bundle(root / "bad name")
    (root / "notes.txt").write_text("x")
    (root / "link").symlink_to(topic)
    _bundle(root / "Topic")  # sorted before "topic": that one is the duplicate
    topic_upper = root / "Topic"
    layout = scan(root)
    assert not layout.single
    assert layout.models == {"Topic": {1: topic_upper}, "sentiment": {1: v1, 12: v12}}
    skipped = "\n".join(layout.skipped)
    for name in (
        "sentiment/3: no bundle.json",
        "sentiment/01: not a version folder",
        "empty: neither",
        "bad name:",
        "notes.txt: not a folder",
        "link: not a folder",
        "topic: the same name as a model already found",
    ):
        assert name in skipped, name
    assert ".hidden" not in skipped


@pytest.mark.parametrize(
    ("text", "available", "chosen"),
    [
        ("latest", [1, 3, 2], [3]),
        ("latest:2", [1, 3, 2], [2, 3]),
        ("all", [2, 1], [1, 2]),
        ("specific:1,3", [1, 2], [1]),
        ("specific:5", [1, 2], []),
    ],
)
def test_version_policies_choose_as_triton_does(text: str, available: list[int], chosen: list[int]) -> None:
    policy = VersionPolicy.parse(text)
    assert policy.select(available) == chosen
    assert VersionPolicy.parse(str(policy)) == policy


@pytest.mark.parametrize("text", ["newest", "latest:0", "specific:", "specific:a", "all:2", "specific:0"])
def test_a_bad_version_policy_names_the_flag(text: str) -> None:
    with pytest.raises(ConfigError, match="--version-policy must be"):
        VersionPolicy.parse(text)

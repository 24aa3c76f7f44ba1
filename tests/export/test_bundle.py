"""Sealed bundles: the manifest is validated, every path stays inside the bundle, every file read is verified."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baton.errors import BundleError
from baton.serving import Predictor, load_bundle
from baton.serving.bundle import sha256_of
from baton.serving.engine import Engine


def _copy(tiny_bundle: Path, tmp_path: Path, edit: Callable[[dict[str, Any], Path], None]) -> Path:
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    edit(manifest, copy)
    (copy / "bundle.json").write_text(json.dumps(manifest))
    return copy


def _outside_file(tmp_path: Path, tiny_bundle: Path) -> Path:
    outside = tmp_path / "outside.json"
    shutil.copy2(tiny_bundle / "tokenizer.json", outside)
    return outside


def _rename_tokenizer(manifest: dict[str, Any], name: str) -> None:
    manifest["files"][name] = manifest["files"].pop("tokenizer.json")
    manifest["tokenizer"]["file"] = name


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m, root: _rename_tokenizer(m, "../outside.json"), "must be a plain file name inside the bundle"),
        (lambda m, root: _rename_tokenizer(m, "/etc/passwd"), "must be a plain file name inside the bundle"),
        (lambda m, root: _rename_tokenizer(m, ".hidden"), "must be a plain file name inside the bundle"),
        (lambda m, root: m["tokenizer"].update(file="other.json"), "which 'files' does not list"),
        (lambda m, root: m["files"]["tokenizer.json"].pop("sha256"), "'files.tokenizer.json.sha256' is missing"),
        (lambda m, root: m.update(files=["model.onnx"]), "'files' must be dict"),
        (lambda m, root: m.update(max_length="abc"), "'max_length' must be int"),
        (lambda m, root: m.update(max_length=10**9), "'max_length' must be in"),
        (lambda m, root: m["tokenizer"].pop("pad_id"), "'tokenizer.pad_id' is missing"),
        (lambda m, root: m.update(labels=[]), "'labels' must hold 1 to"),
        (lambda m, root: m.update(labels=["a", "a"]), "'labels' must be distinct"),
        (lambda m, root: m.update(inputs=["text", "image"]), "'inputs' must be"),
        (lambda m, root: m.update(input_names=["input_ids", "pixel_values"]), "'input_names' must include"),
        (lambda m, root: m.update(threshold=1.5), "'threshold' must be in"),
        (lambda m, root: m.update(threshold=True), "'threshold' must be"),
        (lambda m, root: m.update(name="evil\n\x1b[31mred"), "'name' must be 1 to 256 printable characters"),
        (lambda m, root: m["files"]["model.onnx"].update(bytes=1), "bundle.json records 1"),
        (lambda m, root: m.update(card="NOTES.md"), "names NOTES.md, which 'files' does not list as a plain file"),
        (lambda m, root: m.update(card="model.onnx"), "names model.onnx, which 'files' does not list as a plain"),
        (lambda m, root: m.update(card="../README.md"), "'card' must be a plain file name inside the bundle"),
        (lambda m, root: m["files"]["README.md"].update(bytes=10**6), "README.md has 1000000 bytes"),
    ],
)
def test_malformed_manifests_are_one_bundle_error(
    tiny_bundle: Path, tmp_path: Path, edit: Callable[[dict[str, Any], Path], None], message: str
) -> None:
    copy = _copy(tiny_bundle, tmp_path, edit)
    _outside_file(tmp_path, tiny_bundle)
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_bundle(copy)


def test_symlinks_out_of_the_bundle_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    outside = _outside_file(tmp_path, tiny_bundle)
    copy = _copy(tiny_bundle, tmp_path, lambda m, root: None)
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").symlink_to(outside)
    with pytest.raises(BundleError, match=r"tokenizer\.json is not a regular file inside the bundle"):
        load_bundle(copy)


def test_the_tokenizer_is_verified_even_without_model_checksums(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path, lambda m, root: None)
    text = (copy / "tokenizer.json").read_text()
    (copy / "tokenizer.json").write_text(text.replace('"[UNK]"', '"[UNX]"', 1))  # same size, other content
    assert (copy / "tokenizer.json").stat().st_size == (tiny_bundle / "tokenizer.json").stat().st_size
    with pytest.raises(BundleError, match=r"tokenizer\.json does not match its SHA-256"):
        load_bundle(copy, verify=False)


def test_a_label_count_that_does_not_match_the_graph_is_refused_at_load(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path, lambda m, root: m.update(labels=["negative", "positive", "neutral"]))
    bundle = load_bundle(copy)  # the manifest alone is well-formed
    with pytest.raises(BundleError, match=r"returns logits of shape .*, 2\], the manifest lists 3 labels per text"):
        Engine(bundle, "fp32")


def test_an_oversized_or_non_json_manifest_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path, lambda m, root: None)
    (copy / "bundle.json").write_bytes(b"[" * 100_000)
    with pytest.raises(BundleError, match="is not valid JSON"):
        load_bundle(copy)
    (copy / "bundle.json").write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(BundleError, match="at most"):
        load_bundle(copy)


def test_cli_names_the_bundle_problem_in_one_line(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_bundle, tmp_path, lambda m, root: m.update(max_length="abc"))
    for args in (
        ["predict", str(copy), "hello"],
        ["serve", str(copy), "--port", "0", "--metrics-port", "0", "--http-port", "0"],
    ):
        proc = subprocess.run([sys.executable, "-m", "baton", "-q", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"error: bundle {copy}: bundle.json: 'max_length' must be int (got str)"
        ]


def test_a_valid_bundle_loads_and_its_files_match(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    assert bundle.manifest.inputs == ("text",) and not bundle.manifest.pairs
    for entry in bundle.manifest.files.values():
        assert sha256_of(tiny_bundle / entry.name) == entry.sha256
    assert Predictor.load(tiny_bundle, device="cpu").predict(["fine"])[0].label in bundle.labels


def test_every_bundle_carries_its_model_card_sealed(tiny_bundle: Path, tmp_path: Path) -> None:
    """Issue 30: `baton export` writes README.md in the model-card style, listed and checksummed in the manifest."""
    bundle = load_bundle(tiny_bundle)
    assert bundle.manifest.card == "README.md" and bundle.card == tiny_bundle / "README.md"
    card = (tiny_bundle / "README.md").read_text()
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    int8 = manifest["parity"]["int8_vs_fp32"]
    assert card.startswith("---\nlibrary_name: baton\npipeline_tag: text-classification\n")
    assert f"# {manifest['name']}\n" in card and "**Labels (2 labels):** negative, positive" in card
    from support import REVIEWS

    rows = len((REVIEWS / "train.jsonl").read_text().splitlines())
    assert f"| training rows | {rows} |" in card
    assert f"| int8 | {manifest['parity']['accuracy']['int8']:.4g} |" in card
    assert f"{int8['batch_effect']['flips']} of {int8['batch_effect']['decisions']} decisions changed" in card
    assert "## Intended use and limits" in card
    (tmp_path / "b").mkdir()
    tampered = tmp_path / "b" / "bundle"
    shutil.copytree(tiny_bundle, tampered)
    (tampered / "README.md").write_text(card.replace("Do not use it alone", "Do not use it ALONE"))
    with pytest.raises(BundleError, match=r"file README\.md does not match its SHA-256"):
        load_bundle(tampered)


def test_the_committed_test_bundle_is_what_the_export_makes_today(tiny_bundle: Path) -> None:
    """The serving stage's tests run on tests/data/tiny-bundle (no torch). A change to what export writes must
    reach it: rerun `python tests/make_tiny_bundle.py` when this fails."""
    from support import COMMITTED_BUNDLE

    committed = json.loads((COMMITTED_BUNDLE / "bundle.json").read_text())
    fresh = json.loads((tiny_bundle / "bundle.json").read_text())

    def shape(m: dict[str, Any]) -> dict[str, Any]:
        keys = ("schema_version", "task", "problem_type", "labels", "inputs", "input_names", "max_length")
        return {
            **{k: m.get(k) for k in keys},
            "tokenizer": sorted(m["tokenizer"]),
            "files": {name: sorted(entry) for name, entry in m["files"].items()},
            "parity": sorted(m["parity"]),
            "top": sorted(m),
        }

    assert shape(committed) == shape(fresh)
    assert load_bundle(COMMITTED_BUNDLE).checksum  # and it loads, every file verified


def _reseal(bundle: Path, name: str) -> None:
    """Record `name`'s present size and SHA-256 in the manifest, as an attacker who rewrites both would."""
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["files"][name].update(bytes=(bundle / name).stat().st_size, sha256=sha256_of(bundle / name))
    (bundle / "bundle.json").write_text(json.dumps(manifest))


def test_onnx_external_data_cannot_get_around_the_seal(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 29: a model whose initializers live in a file the manifest does not list loaded, and rewriting that
    file changed answers with bundle.json untouched. The model now loads from its verified bytes with no external
    data at all, even from inside the bundle's folder."""
    import onnx

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    locations = ("weights.bin", "tokenizer.json")  # an unlisted file, and a listed one that holds no weights
    for location in locations:
        staged = tmp_path / location.replace(".", "-")
        staged.mkdir()
        model = onnx.load(str(tiny_bundle / "model.onnx"))
        onnx.save_model(model, str(staged / "model.onnx"), save_as_external_data=True, location=location)
    for location in locations:
        staged = tmp_path / location.replace(".", "-")
        shutil.copy2(staged / "model.onnx", bundle / "model.onnx")
        if location == "weights.bin":
            shutil.copy2(staged / location, bundle / location)
        _reseal(bundle, "model.onnx")
        monkeypatch.chdir(bundle)  # where an unchecked relative path would resolve
        with pytest.raises(BundleError, match="onnxruntime cannot load its fp32 model"):
            Engine(load_bundle(bundle), "fp32", "cpu", threads=1)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all"])
def test_a_model_file_that_is_not_onnx_is_one_line_exit_2(tiny_bundle: Path, tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    for name in ("model.onnx", "model.int8.onnx"):
        (bundle / name).write_bytes(content)
        _reseal(bundle, name)
    proc = subprocess.run(
        [sys.executable, "-m", "baton", "predict", str(bundle), "fine"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "onnxruntime cannot load its" in line


def test_an_unreadable_manifest_is_one_bundle_error(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle.json the process may not read was a PermissionError traceback (issue 29); tests run as root, who
    reads any file, so the refusal is simulated at the read."""
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    real = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "bundle.json":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(BundleError, match=r"bundle.json cannot be read \(Permission denied\)"):
        load_bundle(bundle)

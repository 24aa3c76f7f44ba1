"""The model bundle: a self-describing folder loadable with onnxruntime and tokenizers alone.

    bundle.json        manifest (schema below), written last
    model.onnx         fp32 (graph-optimised) model           variant "fp32", provider CPU or CUDA
    model.int8.onnx    dynamic int8 model (CPU exports)       variant "int8", provider CPU
    model.fp16.onnx    fp16 model (`--device cuda` exports)   variant "fp16", provider CUDA
    tokenizer.json     the tokenizer, padding and truncation switched off (the manifest says how to set them)

Manifest keys: schema_version, name, task, problem_type, labels (id order), max_length, input_names,
base_model, tokenizer {file, max_length, truncation_side, padding, lowercase, pad_id, pad_token},
files {name: {sha256, bytes, variant?, provider?}}, training_metrics, parity, versions, created_at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton.errors import BundleError

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "Bundle",
    "ModelFile",
    "load_bundle",
    "sha256_of",
]

SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
VARIANTS = ("fp32", "fp16", "int8")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelFile:
    path: Path
    variant: str
    provider: str
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: every file present with the checksum its manifest records."""

    root: Path
    manifest: dict[str, Any]
    models: dict[str, ModelFile] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def multi_label(self) -> bool:
        return self.manifest["problem_type"] == "multi_label_classification"

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.manifest["tokenizer"]["file"]

    @property
    def checksum(self) -> str:
        """A checksum of the whole bundle: the manifest's own SHA-256."""
        return sha256_of(self.root / MANIFEST)


def load_bundle(root: str | Path, verify: bool = True) -> Bundle:
    """Read and verify a bundle; refuse a partial or tampered one with a message naming the file."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"bundle not found: {root}")
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a bundle (no {MANIFEST}): partial export, or a run directory?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path}: schema_version {version!r} is not supported by this baton (it reads {SCHEMA_VERSION})"
        )
    for key in ("name", "labels", "problem_type", "max_length", "tokenizer", "files", "input_names"):
        if key not in manifest:
            raise BundleError(f"{manifest_path}: missing key '{key}'")
    models: dict[str, ModelFile] = {}
    for name, entry in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise BundleError(f"bundle {root}: file {name} is missing")
        if verify and sha256_of(path) != entry["sha256"]:
            raise BundleError(f"bundle {root}: file {name} does not match its SHA-256 in {MANIFEST} (altered?)")
        if "variant" in entry:
            models[entry["variant"]] = ModelFile(path, entry["variant"], entry.get("provider", "cpu"), entry["sha256"])
    if not models:
        raise BundleError(f"{manifest_path}: lists no model file")
    return Bundle(root, manifest, models)

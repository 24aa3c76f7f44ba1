"""The model bundle: a self-describing folder loadable with onnxruntime and tokenizers alone.

    bundle.json        manifest (serving/manifest.py), written last
    model.onnx         fp32 (graph-optimised) model           variant "fp32", provider CPU or CUDA
    model.int8.onnx    int8 model (CPU exports; scales fixed) variant "int8", provider CPU
    model.fp16.onnx    fp16 model (`--device cuda` exports)   variant "fp16", provider CUDA
    tokenizer.json     the tokenizer as trained; the runtime sets padding and truncation from the manifest

Loading is sealed: the manifest is size-bounded and validated, every file it names must be a regular file directly
inside the bundle (no symlink, no `..`, no absolute path), and every file that will be read is checked against its
recorded size and SHA-256 — the tokenizer too — before anything parses it.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

from baton.errors import BundleError
from baton.serving.manifest import MANIFEST, MAX_MANIFEST_BYTES, SCHEMA_VERSION, FileEntry, Manifest

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "Bundle",
    "ModelFile",
    "load_bundle",
    "sha256_of",
]


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
    """A verified bundle: a validated manifest and every file present with its recorded checksum."""

    root: Path
    manifest: Manifest
    models: dict[str, ModelFile] = field(default_factory=dict)
    checksum: str = ""  # the manifest's own SHA-256: names the whole bundle

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    @property
    def multi_label(self) -> bool:
        return self.manifest.multi_label

    @property
    def max_length(self) -> int:
        return self.manifest.max_length

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.manifest.tokenizer.file

    @property
    def card(self) -> Path | None:
        """The model card (Markdown), checksummed like every file; None for a bundle exported without one."""
        return None if self.manifest.card is None else self.root / self.manifest.card


def _inside(root: Path, entry: FileEntry) -> Path:
    """The entry's path, refused unless it is a regular file (not a link) directly inside `root`."""
    path = root / entry.name
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BundleError(f"bundle {root}: file {entry.name} is missing") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise BundleError(f"bundle {root}: {entry.name} is not a regular file inside the bundle (a link?)")
    if path.resolve().parent != root.resolve():
        raise BundleError(f"bundle {root}: {entry.name} resolves outside the bundle")
    if info.st_size != entry.bytes:
        raise BundleError(
            f"bundle {root}: file {entry.name} has {info.st_size} bytes, {MANIFEST} records {entry.bytes} (altered?)"
        )
    return path


def _read_manifest(root: Path) -> tuple[Manifest, str]:
    path = root / MANIFEST
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BundleError(f"{root} is not a bundle (no {MANIFEST}): partial export, or a run directory?") from None
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{path} is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path} has {info.st_size} bytes (at most {MAX_MANIFEST_BYTES})")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{path} is not valid JSON: {str(exc)[:200]}") from exc
    try:
        manifest = Manifest.parse(data)
    except BundleError as exc:
        raise BundleError(f"bundle {root}: {exc}") from exc
    return manifest, hashlib.sha256(raw).hexdigest()


def load_bundle(root: str | Path, verify: bool = True) -> Bundle:
    """Read and verify a bundle; refuse a partial, tampered or malformed one with one line naming the cause.

    `verify=False` skips only the SHA-256 of the model files (sizes, paths and the tokenizer are still checked).
    """
    root = Path(root)
    if not root.is_dir():
        old = root.parent / f".{root.name}.old"
        if old.is_dir():
            raise BundleError(
                f"bundle not found: {root}; an interrupted export left the previous bundle at {old} "
                "(run the export again, or rename it back)"
            )
        raise BundleError(f"bundle not found: {root}")
    manifest, checksum = _read_manifest(root)
    models: dict[str, ModelFile] = {}
    for entry in manifest.files.values():
        path = _inside(root, entry)
        if (verify or entry.variant is None) and sha256_of(path) != entry.sha256:
            raise BundleError(f"bundle {root}: file {entry.name} does not match its SHA-256 in {MANIFEST} (altered?)")
        if entry.variant is not None:
            models[entry.variant] = ModelFile(path, entry.variant, entry.provider or "cpu", entry.sha256)
    return Bundle(root, manifest, models, checksum)

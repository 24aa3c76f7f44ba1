"""What a folder holds, read without loading anything. Rules:

- A folder with `bundle.json` is a bundle. `baton serve BUNDLE` is a repository of that one model, version 1, named
  `--model-name`, else as its manifest says (the folder's name if the manifest's name is not a valid name), so that
  the name every front reports is the name a call may give, wherever the bundle was copied to.
- Otherwise every subfolder is a model, named after the subfolder: either a bundle itself (version 1), or numbered
  version folders (`1/`, `2/`, ...; digits only, no leading zero) that are bundles, as in Triton.
- Names are 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with a dot (hidden folders,
  an interrupted export's `.name.export-*` work folder, are not models).
- Links are not followed: a repository's models live inside it.
- Two names that differ only in letter case are one name twice: the second is skipped (a client, a URL or a
  case-insensitive file system would not tell them apart).
- Anything else (a folder of neither kind, a version folder that is not a bundle, a file) is skipped with a reason;
  the rest of the repository is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from baton.errors import BatonError
from baton.serving.bundle import load_bundle
from baton.serving.manifest import MANIFEST

__all__ = ["Layout", "is_bundle", "scan"]

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")


def is_bundle(path: Path) -> bool:
    return not path.is_symlink() and (path / MANIFEST).is_file()


@dataclass(frozen=True)
class Layout:
    """Models found (name → version → bundle folder) and what was skipped (one line each)."""

    models: dict[str, dict[int, Path]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    single: bool = False  # the folder is itself a bundle


def _versions(folder: Path, skipped: list[str]) -> dict[int, Path]:
    if is_bundle(folder):
        return {1: folder}
    found: dict[int, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not _VERSION.fullmatch(entry.name) or entry.is_symlink() or not entry.is_dir():
            skipped.append(f"{entry}: not a version folder (a number, 1 or more)")
        elif not is_bundle(entry):
            skipped.append(f"{entry}: no {MANIFEST} (not a bundle)")
        else:
            found[int(entry.name)] = entry
    return found


def _manifest_name(bundle: Path) -> str:
    """A lone bundle's model name: its manifest's, when that is a valid name, else its folder's."""
    try:
        name = load_bundle(bundle, verify=False).name
    except BatonError:
        return bundle.name  # loading it will say what is wrong
    return name if _NAME.fullmatch(name) else bundle.name


def scan(root: Path, name: str | None = None) -> Layout:
    """The models under `root` (a bundle is one model called `name`, else as its manifest says)."""
    if is_bundle(root):
        return Layout({name or _manifest_name(root): {1: root}}, [], single=True)
    models: dict[str, dict[int, Path]] = {}
    skipped: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() or not entry.is_dir():
            skipped.append(f"{entry}: not a folder")
        elif not _NAME.fullmatch(entry.name):
            skipped.append(f"{entry}: a model's name is 1-128 letters, digits, '_', '.' or '-'")
        elif any(entry.name.lower() == other.lower() for other in models):
            skipped.append(f"{entry}: the same name as a model already found, in other letter case; rename one")
        else:
            versions = _versions(entry, skipped)
            if versions:
                models[entry.name] = versions
            else:
                skipped.append(f"{entry}: neither a bundle nor numbered version folders holding bundles")
    return Layout(models, skipped)

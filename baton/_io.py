"""Small file helpers that never leave a partial file behind as if it were complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["publish", "replace_dir", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish(tmp: Path, target: Path) -> None:
    """Make the closed, complete file `tmp` the file `target`: fsync it, give it the mode a new file would have
    (mkstemp's are 0600), and rename it over `target` in one step."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def replace_dir(staged: Path, target: Path) -> None:
    """Put the complete folder `staged` at `target`. An old `target` is moved aside first and deleted only after the
    new one is in place, so there is always a complete result under the name (or, for an instant, none)."""
    if not staged.is_dir():
        raise FileNotFoundError(f"staged folder {staged} is missing")
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()

"""Small file helpers that never leave a partial file behind as if it were complete."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["aside", "publish", "recover_replaced", "replace_dir", "write_json_atomic", "write_text_atomic"]

logger = logging.getLogger(__name__)


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


def aside(target: Path) -> Path:
    """Where `replace_dir` keeps the previous `target` while the new one moves in: `.NAME.old` beside it."""
    return target.parent / f".{target.name}.old"


def recover_replaced(target: Path) -> None:
    """A replace killed between its two renames left the old folder at `.NAME.old` and nothing at NAME: put it
    back. With NAME present, `.NAME.old` is the leftover of a finished replace and is deleted."""
    old = aside(target)
    if not old.exists():
        return
    if target.exists():
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    else:
        logger.warning("restoring %s from %s (a replace was interrupted between its renames)", target, old)
        old.rename(target)


def replace_dir(staged: Path, target: Path) -> None:
    """Put the complete folder `staged` at `target`. An old `target` is first renamed to `.NAME.old` and deleted only
    after the new one is in place, so there is always a complete result under the name or aside; if the process
    dies between the two renames, `recover_replaced` (called by the next replace) puts the old one back."""
    if not staged.exists():
        raise FileNotFoundError(f"staged folder {staged} is missing")
    recover_replaced(target)
    old = aside(target)
    if target.exists():
        target.rename(old)
    try:
        staged.rename(target)
    except BaseException:
        if old.exists():
            old.rename(target)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)

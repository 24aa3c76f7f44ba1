"""Which versions of a model serve, as Triton's version policies: `latest` (the highest), `latest:N` (the N highest),
`all`, `specific:N[,M...]` (those that exist). A call that names no version gets the highest version serving."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from baton.errors import ConfigError

__all__ = ["VersionPolicy"]


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"
    count: int = 1  # latest:N
    versions: tuple[int, ...] = ()  # specific

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        kind, _, rest = text.strip().partition(":")
        try:
            if kind == "all" and not rest:
                return cls("all")
            if kind == "latest":
                count = int(rest) if rest else 1
                if count < 1:
                    raise ValueError
                return cls("latest", count)
            if kind == "specific" and rest:
                versions = tuple(sorted({int(v) for v in rest.split(",")}))
                if min(versions) < 1:
                    raise ValueError
                return cls("specific", versions=versions)
        except ValueError:
            pass
        raise ConfigError(f"--version-policy must be latest, latest:N, all or specific:N[,M...] (got {text[:40]!r})")

    def select(self, available: Iterable[int]) -> list[int]:
        """The versions to serve among `available`, ascending."""
        versions = sorted(set(available))
        if self.kind == "all":
            return versions
        if self.kind == "latest":
            return versions[-self.count :]
        return [v for v in versions if v in self.versions]

    def __str__(self) -> str:
        if self.kind == "specific":
            return "specific:" + ",".join(map(str, self.versions))
        return self.kind if self.kind == "all" or self.count == 1 else f"latest:{self.count}"

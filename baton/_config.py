"""Building a frozen config dataclass from defaults, a YAML file, and flags (flags win)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from baton.errors import ConfigError

__all__ = ["choice", "load_config"]

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


def choice(kind: type[E], value: object, flag: str) -> E:
    """`value` as a member of the closed set `kind` (a flag's or YAML key's string), or a ConfigError naming `flag`
    and the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise ConfigError(f"{flag} must be one of {choices} (got {str(value)[:60]!r})") from None


def load_config(cls: type[T], config_file: str | Path | None, overrides: Mapping[str, Any]) -> T:
    """`cls(**values)` from the YAML file's keys (`-` or `_`) overlaid by `overrides` that are not None."""
    values: dict[str, Any] = {}
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"--config: file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config: {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config: {path} must hold a mapping of option: value")
        for key, value in loaded.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ConfigError(f"--config: unknown key '{key}' in {path} (known: {', '.join(sorted(known))})")
            values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc

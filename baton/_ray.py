"""Joining or starting Ray, for `baton score --engine ray` and `baton tune --backend ray`."""

from __future__ import annotations

import logging
import os
from typing import Any

from baton._optional import require
from baton.errors import ConfigError

__all__ = ["connect"]


def connect(address: str | None, **local: Any) -> bool:
    """Connect to the cluster at `address` (`auto`, `ray://host:10001`), or start a local one with `local` options
    (e.g. `num_cpus`). True if this call started Ray, so the caller shuts it down. No usage stats are sent."""
    ray = require("ray")
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **({} if address else local))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--address {address}: cannot connect to a Ray cluster: {exc}") from exc
    return True

"""Process accounting: latency percentiles, CPU time per process, the environment, server metrics."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import resource
import sys
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "cpu_by_thread",
    "cpu_of",
    "cpu_self",
    "environment",
    "memory_mib",
    "percentiles",
    "scrape",
    "server_view",
]

logger = logging.getLogger(__name__)


def percentiles(latencies_s: Sequence[float]) -> dict[str, float]:
    if not latencies_s:
        return {k: float("nan") for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")}
    arr = np.asarray(latencies_s) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p95_ms": float(np.percentile(arr, 95)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "mean_ms": float(arr.mean()),
    }


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds from a /proc `stat` file (a process's or a thread's); NaN where unreadable."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_of(pid: int) -> float:
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def memory_mib(pid: int) -> dict[str, float]:
    """A process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB (Linux; empty elsewhere)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_by_thread(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of `pid` (Linux; empty elsewhere). The main thread's id is `pid` itself."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return {}
    return {int(task.name): _stat_cpu(task / "stat") for task in tasks}


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("baton", "onnxruntime", "torch", "grpcio", "tokenizers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        **(extra or {}),
    }


def scrape(url: str | None) -> dict[str, float]:
    if not url:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("baton_batch_size_", "baton_queue_seconds_", "baton_batch_tokens_")) and " " in line:
            name, value = line.rsplit(" ", 1)
            if name.endswith(("_sum", "_count")):
                out[name] = float(value)
    return out


def server_view(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("baton_batch_size_count")
    items = delta("baton_queue_seconds_count")
    return {
        "mean_batch_size": delta("baton_batch_size_sum") / batches if batches else None,
        "mean_queue_ms": 1000 * delta("baton_queue_seconds_sum") / items if items else None,
    }

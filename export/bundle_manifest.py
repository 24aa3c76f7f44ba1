"""The manifest `baton export` writes: every field a reader needs, assembled in one place and parsed back before it
is written (serving/manifest.py is the schema)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from baton.export.tasks import export_task
from baton.serving.bundle import SCHEMA_VERSION, sha256_of
from baton.serving.manifest import INPUTS_PAIR, INPUTS_TEXT, Manifest
from baton.task import Task
from baton.training.rundir import TrainedRun

__all__ = ["build_manifest", "file_entry"]


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("baton", "onnxruntime", "onnx", "optimum-onnx", "optimum", "transformers", "torch", "tokenizers"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_entry(path: Path, **extra: str) -> dict[str, Any]:
    return {**extra, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def build_manifest(
    *,
    name: str,
    task: Task,
    run: TrainedRun,
    input_names: list[str],
    tok_meta: dict[str, Any],
    entries: dict[str, Any],
    report: dict[str, Any],
    started: float,
    card: str | None = None,
    long_text: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a bundle named `name` of `run`, checked by the parser every reader uses. `card` names the
    model card's file, which `entries` lists; `long_text` a classifier's default for texts past the window."""
    pairs = bool(run.train_args.get("text_pair_column"))
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "task": task.value,
        **export_task(task).manifest(run),
        "labels": run.labels,
        "threshold": run.threshold,
        "max_length": int(run.train_args["max_length"]),
        "inputs": list(INPUTS_PAIR if pairs else INPUTS_TEXT),
        "input_names": input_names,
        "base_model": run.train_args.get("base_model"),
        "tokenizer": tok_meta,
        "files": entries,
        "training_metrics": {k: run.metrics[k] for k in ("validation", "test") if k in run.metrics},
        "parity": report,
        "versions": _versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "export_seconds": round(time.perf_counter() - started, 1),
    }
    if card is not None:
        manifest["card"] = card
    if long_text is not None:
        manifest["long_text"] = long_text
    Manifest.parse(manifest)  # what we write must be what every reader accepts
    return manifest

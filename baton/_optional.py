"""Imports of optional dependencies that fail with the fix in the message."""

from __future__ import annotations

import importlib
from types import ModuleType

from baton.errors import BatonError

__all__ = ["missing_extra_message", "require"]

_EXTRA_OF = {
    "torch": "train",
    "transformers": "train",
    "datasets": "train",
    "sklearn": "train",
    "matplotlib": "train",
    "accelerate": "train",
    "pyarrow": "score",
    "ray": "ray",
    "optuna": "tune",
    "optimum": "export",
    "optimum.onnxruntime": "export",
    "grpc": "serve",
    "grpc_health": "serve",
    "grpc_reflection": "serve",
    "prometheus_client": "serve",
    "tritonclient": "bench",
}


def require(module: str) -> ModuleType:
    """Import `module`, or fail naming the baton extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BatonError(
            f"this needs the Python package '{module}', which is not installed: pip install 'baton[{_extra(module)}]'"
        ) from exc


def _extra(module: str) -> str:
    return _EXTRA_OF.get(module, _EXTRA_OF.get(module.split(".")[0], "dev"))


def missing_extra_message(exc: ModuleNotFoundError, command: str | None = None) -> str | None:
    """The one-line fix for an optional package missing at run time, or None if `exc` is not about one.

    `baton export` needs the `export` extra (which includes `train`) whatever module was missing first.
    """
    module = exc.name or ""
    if not module or module.split(".")[0] not in {m.split(".")[0] for m in _EXTRA_OF}:
        return None
    extra = "export" if command == "export" and _extra(module) == "train" else _extra(module)
    return f"this needs the Python package '{module}', which is not installed: pip install 'baton[{extra}]'"

"""Imports of optional dependencies that fail with the fix in the message."""

from __future__ import annotations

import importlib
from types import ModuleType

from baton.errors import BatonError

__all__ = ["require"]

_EXTRA_OF = {
    "torch": "train",
    "transformers": "train",
    "datasets": "train",
    "sklearn": "train",
    "matplotlib": "train",
    "accelerate": "train",
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
        extra = _EXTRA_OF.get(module.split(".")[0] if module not in _EXTRA_OF else module, "dev")
        raise BatonError(
            f"this needs the Python package '{module}', which is not installed: pip install 'baton[{extra}]'"
        ) from exc

"""Embedded runtime and gRPC serving. Importing this package never imports torch, transformers or optimum.

`Client`, `AsyncClient`, `TLSConfig` and `ClientError` are loaded on first use: they need grpc (the `serve` extra),
which the embedded `Predictor` does not.
"""

from typing import Any

from baton.serving.bundle import Bundle, load_bundle
from baton.serving.engine import Engine, Prediction
from baton.serving.predictor import Predictor

__all__ = [
    "AsyncClient",
    "Bundle",
    "Client",
    "ClientError",
    "Engine",
    "Prediction",
    "Predictor",
    "TLSConfig",
    "load_bundle",
]

_CLIENT_NAMES = ("AsyncClient", "Client", "ClientError", "TLSConfig")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from baton.serving import client

        return getattr(client, name)
    raise AttributeError(f"module 'baton.serving' has no attribute {name!r}")

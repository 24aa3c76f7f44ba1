"""Embedded runtime and gRPC serving. Importing this package never imports torch, transformers or optimum."""

from baton.serving.bundle import Bundle, load_bundle
from baton.serving.engine import Engine, Prediction
from baton.serving.predictor import Predictor

__all__ = ["Bundle", "Engine", "Prediction", "Predictor", "load_bundle"]

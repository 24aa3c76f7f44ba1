"""ONNX export via Optimum, int8 quantization, parity gates, and the model bundle: `baton export`."""

from baton.export.config import (
    ExportConfig,
    GateThresholds,
    Int8Scales,
    Optimize,
    Quantize,
    QuantPreset,
    detect_preset,
)
from baton.export.exporter import ExportResult, export_bundle

__all__ = [
    "ExportConfig",
    "ExportResult",
    "GateThresholds",
    "Int8Scales",
    "Optimize",
    "QuantPreset",
    "Quantize",
    "detect_preset",
    "export_bundle",
]

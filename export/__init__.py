"""ONNX export, quantization, parity gates and bundles."""

__all__: list[str] = []

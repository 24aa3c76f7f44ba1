"""baton: fine-tune a transformer, export it to ONNX, serve it fast."""

from baton.errors import BatonError

__version__ = "0.1.0"

__all__ = ["BatonError", "__version__"]

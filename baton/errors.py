"""The user-facing error hierarchy. The CLI prints these as one line; anything else is a bug."""

__all__ = [
    "BatonError",
    "BundleError",
    "ConfigError",
    "DataError",
    "ExportError",
    "GateError",
    "InputError",
    "ModelError",
    "OutputDirError",
]


class BatonError(Exception):
    """An error caused by the user's input or environment, with a message that says what to fix."""


class ConfigError(BatonError):
    """A flag or config-file value is invalid."""


class DataError(BatonError):
    """A data file is missing, unreadable, or lacks what the task needs."""


class ModelError(BatonError):
    """A base model or trained run cannot be found or loaded."""


class OutputDirError(BatonError):
    """The output directory is in a state that forbids the requested run."""


class ExportError(BatonError):
    """The model cannot be exported."""


class GateError(ExportError):
    """A parity gate failed: the exported model does not match its reference."""


class BundleError(BatonError):
    """A bundle is missing, partial, tampered with, or of an unknown schema version."""


class InputError(BatonError):
    """Texts given to a model do not match the inputs its manifest declares (e.g. a pair model without pairs)."""

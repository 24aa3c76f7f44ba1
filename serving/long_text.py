"""Texts longer than a classifier's window: truncate them, or score them in overlapping chunks and combine.

Rules (pure; the classification task applies them, docs/guide.md "Long texts"):
- `truncate` (the default, as before): the text is cut at `max_length` tokens and marked `truncated`.
- `chunk`: the whole text is tokenized without special tokens and cut into windows of `max_length` less the special
  tokens, neighbours sharing `stride` tokens (serving/windows.py); each window runs as one row of the same batch,
  and the text's probabilities are the windows' combined: `mean` (the default) or `max`, label by label. A text
  of one window scores exactly as under `truncate`. At most `max_chunks` windows per text (64 by default): beyond
  that the text is cut and marked `truncated`, so one document costs at most `max_chunks` rows, linear in its
  length up to there; a server also bounds a request's windows in all (`--max-request-tokens`).
- A text pair is never chunked (which text would be cut?): chunking a pair model's input is refused.

The bundle's manifest holds the default (`long_text`, set by `baton export --long-text`); a request, a Predictor
call or `baton score` may choose another mode or combination.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from baton.errors import BundleError, InputError

__all__ = ["DEFAULT_CHUNKS", "MAX_CHUNKS", "ChunkCombine", "LongText", "LongTextSpec", "combine", "requested"]

DEFAULT_CHUNKS = 64  # windows per text by default (128-token windows: about 6,000 tokens of text)
MAX_CHUNKS = 512  # what a manifest or a caller may ask at most (about 48,000 tokens)


class LongText(str, enum.Enum):
    TRUNCATE = "truncate"
    CHUNK = "chunk"


class ChunkCombine(str, enum.Enum):
    MEAN = "mean"  # evidence spread over the text: every window's vote counts
    MAX = "max"  # a label any one window is sure of (multi-label: "does it mention X anywhere")


def _parse(kind: type[enum.Enum], value: object, where: str, error: type[Exception]) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise error(f"{where} must be one of {choices} (got {str(value)[:40]!r})") from None


@dataclass(frozen=True)
class LongTextSpec:
    mode: LongText = LongText.TRUNCATE
    combine: ChunkCombine = ChunkCombine.MEAN
    stride: int = 32  # tokens shared by neighbouring windows
    max_chunks: int = DEFAULT_CHUNKS

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _parse(LongText, self.mode, "long_text", ValueError))
        object.__setattr__(self, "combine", _parse(ChunkCombine, self.combine, "chunk_combine", ValueError))
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.stride, self.max_chunks))
        if not ints or self.stride < 0 or not 1 <= self.max_chunks <= MAX_CHUNKS:
            raise ValueError(f"stride must be an integer >= 0 and max_chunks an integer from 1 to {MAX_CHUNKS}")

    @classmethod
    def parse(cls, data: object, max_length: int) -> LongTextSpec:
        """The manifest's `long_text` object (absent: truncate, as bundles before it)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping) or set(data) - {"mode", "combine", "stride", "max_chunks"}:
            raise BundleError("bundle.json: 'long_text' must be an object of mode, combine, stride and max_chunks")
        try:
            spec = cls(**data)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"bundle.json: 'long_text': {exc}") from None
        if spec.stride >= max_length:
            raise BundleError(f"bundle.json: 'long_text.stride' must be an integer below max_length ({max_length})")
        return spec

    def to_manifest(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "combine": self.combine.value,
            "stride": self.stride,
            "max_chunks": self.max_chunks,
        }

    def choose(self, mode: str | None, combine: str | None) -> LongTextSpec:
        """This default with a caller's choices (None or "": keep the default); InputError names a bad value."""
        spec = self
        if mode:
            spec = replace(spec, mode=_parse(LongText, mode, "long_text", InputError))
        if combine:
            spec = replace(spec, combine=_parse(ChunkCombine, combine, "chunk_combine", InputError))
        return spec


def combine(probs: np.ndarray, how: ChunkCombine) -> np.ndarray:
    """One text's probabilities from its windows' ([windows, labels]): their mean, or label by label their max."""
    return probs.mean(axis=0) if how is ChunkCombine.MEAN else probs.max(axis=0)  # type: ignore[no-any-return]


def requested(default: LongTextSpec | None, mode: str | None, combine: str | None) -> LongTextSpec | None:
    """A caller's rule for texts past the window over the model's `default` (None: not a classifier): None when the
    caller names none (the bundle's applies); InputError for a bad value or for an entity model."""
    if not mode and not combine:
        return None
    if default is None:
        raise InputError("long_text and chunk_combine are for classifiers: an entity model reads windows")
    return default.choose(mode, combine)

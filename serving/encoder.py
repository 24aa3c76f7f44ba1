"""Text → model inputs, exactly as the runtime does it: one class, used by the engine and by the export's gates.

The parity gates run through this same code on the staged bundle's own tokenizer.json, so what was verified is
what is served: the character pre-cut, truncation side, pair encoding, padding and the graph's input names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import BundleError
from baton.serving.manifest import TokenizerSpec
from baton.serving.windows import Window

__all__ = [
    "CHARS_PER_TOKEN_CAP",
    "Encoded",
    "TextEncoder",
    "Tokens",
    "WindowTokenizer",
    "Windowed",
    "encode_all",
    "length_sorted_chunks",
]

# Texts are cut to this many characters per allowed token before tokenizing, so a multi-megabyte input cannot
# stall the tokenizer; the cut is reported as truncation like any other. No tokenizer here makes a token of more
# than 24 characters' worth of text that would matter after the cut.
CHARS_PER_TOKEN_CAP = 24

# `encode_batch` hands texts to the tokenizers' own thread pool. Below this many texts a plain loop of `encode` is
# as fast or faster even on an idle machine (2 texts: 79 vs 156-168 us here; 16 texts: the pool wins, 0.50 vs
# 0.65 ms). On a busy one (a core per busy thread, as in a server running inference) the pool is never faster and
# up to 2.5x slower (16 texts: 1.5-1.7 ms vs 0.66-1.0 ms), and its threads take cycles from inference.
# docs/decisions.md, "The server tokenizes without the tokenizers' thread pool".
_POOL_FROM = 9


def encode_all(tokenizer: Any, inputs: Sequence[Any], pool: bool, **kwargs: Any) -> list[Any]:
    """Encode texts (or (text, pair) tuples) with `tokenizer`: in its thread pool when `pool` and there are enough
    of them to pay for it, else one after another in the calling thread."""
    if pool and len(inputs) >= _POOL_FROM:
        return list(tokenizer.encode_batch(list(inputs), **kwargs))
    return [
        tokenizer.encode(*item, **kwargs) if isinstance(item, tuple) else tokenizer.encode(item, **kwargs)
        for item in inputs
    ]


@dataclass(frozen=True)
class Tokens:
    """One text (or text pair), tokenized, unpadded."""

    ids: list[int]
    type_ids: list[int]
    truncated: bool
    blank: bool = False  # an empty or whitespace-only text (of a pair: the first)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def rows(self) -> int:
        """Model rows this item runs as (a text in windows runs as several)."""
        return 1


@dataclass(frozen=True)
class Windowed(Tokens):
    """A text that runs as several rows: its content tokens (no special tokens) and the windows over them, each
    window a row with `width` special tokens around it (entity windows, classification chunks)."""

    spans: list[Window] = field(default_factory=list)
    width: int = 0  # special tokens per window

    def __len__(self) -> int:  # the batcher's token budget counts every row
        return sum(w.end - w.start + self.width for w in self.spans)

    @property
    def rows(self) -> int:
        return len(self.spans)


@dataclass(frozen=True)
class Encoded:
    """A tokenized batch, padded to its longest member. Classification: one row per item. A task that runs an item
    as several rows (entity windows) sets `rows`, each item's [start, end) rows, and keeps its per-item state in
    `items`."""

    inputs: dict[str, np.ndarray]
    truncated: list[bool]
    rows: list[tuple[int, int]] | None = None
    items: Sequence[Any] = ()
    blank: Sequence[bool] = ()  # per item; () when none is blank

    def item_logits(self, logits: np.ndarray, index: int) -> np.ndarray:
        """The logits rows of item `index`."""
        if self.rows is None:
            return logits[index]  # type: ignore[no-any-return]
        start, end = self.rows[index]
        return logits[start:end]  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return len(self.truncated)

    @property
    def padded_tokens(self) -> int:
        ids = self.inputs["input_ids"]
        return int(ids.shape[0] * ids.shape[1])


def length_sorted_chunks(count: int, size: Callable[[int], int], chunk: int) -> list[list[int]]:
    """Indices 0..count-1 sorted by `size` (stable), cut into chunks of at most `chunk`: less padding per batch."""
    order = sorted(range(count), key=size)
    return [order[start : start + chunk] for start in range(0, count, chunk)]


class TextEncoder:
    """The bundle's tokenizer with the manifest's truncation, and `collate` to the graph's input names."""

    def __init__(
        self, tokenizer_file: Path, spec: TokenizerSpec, input_names: Sequence[str], pool: bool = True
    ) -> None:
        """`pool=False` never uses the tokenizers' thread pool (a server, whose cores run inference)."""
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
            raise BundleError(f"{tokenizer_file}: not a tokenizers file ({str(exc)[:200]})") from exc
        # Set both explicitly: tokenizer.json files often carry fixed padding (e.g. to 128) that costs ~4x.
        # Padding happens in `collate`, per batch, after the batcher has grouped texts by length.
        self._tokenizer.enable_truncation(spec.max_length, direction=spec.truncation_side, strategy="longest_first")
        self._tokenizer.no_padding()
        self.file = Path(tokenizer_file)
        self.pool = pool
        self.spec = spec
        self.input_names = tuple(input_names)
        self.max_length = spec.max_length
        self._pad_id = spec.pad_id
        self._left = spec.truncation_side == "left"
        self._input_names = tuple(input_names)
        self._char_cap = spec.max_length * CHARS_PER_TOKEN_CAP

    def _cut(self, text: str) -> str:
        """The pre-cut keeps the end of the text that truncation keeps."""
        if len(text) <= self._char_cap:
            return text
        return text[-self._char_cap :] if self._left else text[: self._char_cap]

    def tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Tokens]:
        """Tokenize without padding (the batcher pads per batch, after sorting by length)."""
        cut = [self._cut(t) for t in texts]
        if pairs is None:
            encodings = encode_all(self._tokenizer, cut, self.pool)
            was_cut = [len(c) < len(t) for c, t in zip(cut, texts, strict=True)]
        else:
            cut_pairs = [self._cut(p) for p in pairs]
            encodings = encode_all(self._tokenizer, list(zip(cut, cut_pairs, strict=True)), self.pool)
            was_cut = [
                len(c) < len(t) or len(cp) < len(p) for c, t, cp, p in zip(cut, texts, cut_pairs, pairs, strict=True)
            ]
        return [
            Tokens(e.ids, e.type_ids, bool(e.overflowing) or w, not t.strip())
            for e, w, t in zip(encodings, was_cut, texts, strict=True)
        ]

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        """Pad tokenized texts to the longest among them, with the inputs the graph takes."""
        width = max((len(t) for t in items), default=0)
        ids = np.full((len(items), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(items), width), dtype=np.int64)
        types = np.zeros((len(items), width), dtype=np.int64)
        for row, t in enumerate(items):
            ids[row, : len(t)] = t.ids
            mask[row, : len(t)] = 1
            types[row, : len(t)] = t.type_ids
        inputs = {"input_ids": ids}
        if "attention_mask" in self._input_names:
            inputs["attention_mask"] = mask
        if "token_type_ids" in self._input_names:
            inputs["token_type_ids"] = types
        blank = [t.blank for t in items]
        return Encoded(inputs, [t.truncated for t in items], blank=blank if any(blank) else ())


class WindowTokenizer:
    """The bundle's tokenizer without truncation or special tokens, for tasks that run a long text as windows
    (entity recognition, chunked classification), and the special tokens each window row gets back."""

    def __init__(self, encoder: TextEncoder) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(encoder.file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._pool = encoder.pool
        probe = self._tokenizer.encode("a")
        content = [i for i, m in enumerate(probe.special_tokens_mask) if not m]
        first, last = (content[0], content[-1]) if content else (len(probe.ids), len(probe.ids) - 1)
        self.prefix = list(probe.ids[:first])
        self.suffix = list(probe.ids[last + 1 :])
        self.specials = len(self.prefix) + len(self.suffix)
        self.budget = max(1, encoder.max_length - self.specials)  # content tokens per window

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """The texts' content tokens (ids and character offsets), uncut."""
        return encode_all(self._tokenizer, texts, self._pool, add_special_tokens=False)

    def row(self, ids: Sequence[int]) -> Tokens:
        """One window's model row: the special tokens around `ids`."""
        row = [*self.prefix, *ids, *self.suffix]
        return Tokens(row, [0] * len(row), False)

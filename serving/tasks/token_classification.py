"""Entity recognition at run time: windows over long texts, per-token tags, entities with character offsets.

Tokenize: the whole text is tokenized once, without special tokens and without truncation (character offsets
into the original string come from the tokenizer's alignment, so accents, emoji, CJK and repeated spaces keep
their places). A text longer than the window (`max_length` less the special tokens) runs as overlapping windows
`stride` tokens apart; each token is read from the window where it sits furthest from an edge (the overlap is split
at its middle). At most `MAX_WINDOWS` windows per text; beyond that the text is cut and marked `truncated`.

Aggregation, as in the Hugging Face token-classification pipeline:
  none     one entity per sub-token whose tag is not O, labelled with the full tag (B-PER)
  simple   tokens grouped by their IOB2 tags (baton.serving.iob); score = mean of the tokens' scores
  first    each word takes its first sub-token's tag and score; words grouped as above
  max      each word takes the tag and score of its most confident sub-token
  average  each word averages its sub-tokens' probabilities, then takes the best tag
A grouped entity's score is the mean of its tokens' (or words') scores, its text the original string's
`text[start:end]`; words of punctuation or symbols only at either edge are left out of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from baton.errors import InputError
from baton.serving.encoder import CHARS_PER_TOKEN_CAP, Encoded, TextEncoder, Tokens, Windowed, WindowTokenizer
from baton.serving.iob import iob_spans
from baton.serving.kserve_codec import Output, Tensor, encode_bytes_raw
from baton.serving.long_text import LongTextSpec
from baton.serving.manifest import Manifest
from baton.serving.tasks import check_aggregation
from baton.serving.tasks.classification import softmax
from baton.serving.windows import plan_windows
from baton.task import Task

__all__ = ["MAX_WINDOWS", "Entities", "Entity", "TokenClassification", "Windows", "aggregate", "regroup"]

MAX_WINDOWS = 64


@dataclass(frozen=True)
class Entity:
    label: str
    text: str
    start: int  # character offsets into the original text: text[start:end]
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "text": self.text, "start": self.start, "end": self.end, "score": self.score}


@dataclass(frozen=True)
class Entities:
    """The answer for one text."""

    entities: list[Entity]
    truncated: bool


@dataclass(frozen=True)
class Windows(Windowed):
    """One text in windows (encoder.Windowed), with its text and its tokens' character offsets."""

    text: str = ""
    offsets: list[tuple[int, int]] = field(default_factory=list)


def _group(
    tags: Sequence[str], scores: Sequence[float], starts: Sequence[int], ends: Sequence[int], text: str
) -> list[Entity]:
    out = []
    for kind, first, last in iob_spans(tags):
        # an entity neither starts nor ends with a word of punctuation or symbols only (an emoji after a name)
        a, b = first, last
        while a < b and not any(c.isalnum() for c in text[starts[a] : ends[a]]):
            a += 1
        while b > a and not any(c.isalnum() for c in text[starts[b - 1] : ends[b - 1]]):
            b -= 1
        if a == b:
            continue
        start, end = starts[a], ends[b - 1]
        out.append(Entity(kind, text[start:end], start, end, float(np.mean(scores[a:b]))))
    return out


_OPENING = set('([{"“«')  # split off the front of a word
_CLOSING = set(')]}",;:!?”»')  # split off its end; "." too, unless the word is an abbreviation or an initial


def _split_off(token: str, core: str, closing: bool) -> bool:
    if not closing:
        return token in _OPENING
    if token == ".":
        return len(core) > 3 and "." not in core  # "Paris." → Paris + "."; "U.S.", "Inc.", "P." stay whole
    return token in _CLOSING


def _words(text: str, offsets: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token indices grouped into words as the training data has them (CoNLL-style tokens): a run of tokens with
    no space between them, less opening brackets and quotes at its front and closing punctuation at its end, which
    are words of their own ("(Reuters)," is "(", "Reuters", ")", ","; "ex-England", "'s", "U.S." and "1996-08-22"
    stay one word each). On CoNLL validation text joined by spaces this gives back the file's words."""
    runs: list[list[int]] = []
    for i, (start, _) in enumerate(offsets):
        if runs and offsets[runs[-1][-1]][1] == start:
            runs[-1].append(i)
        else:
            runs.append([i])
    words: list[list[int]] = []
    for run in runs:
        pieces = [text[offsets[i][0] : offsets[i][1]] for i in run]
        lo, hi = 0, len(run)
        while hi - lo > 1 and _split_off(pieces[lo], "", closing=False):
            lo += 1
        while hi - lo > 1 and _split_off(pieces[hi - 1], "".join(pieces[lo : hi - 1]), closing=True):
            hi -= 1
        words += [[i] for i in run[:lo]] + [run[lo:hi]] + [[i] for i in run[hi:]]
    return words


def aggregate(probs: np.ndarray, item: Windows, labels: Sequence[str], strategy: str) -> list[Entity]:
    """Entities of one text from its per-token probabilities ([tokens, labels])."""
    check_aggregation(Task.ENTITIES, strategy)
    text, offsets = item.text, item.offsets
    if not len(probs):
        return []
    best = probs.argmax(axis=-1)
    if strategy == "none":
        return [
            Entity(labels[t], text[s:e], s, e, float(probs[i, t]))
            for i, (t, (s, e)) in enumerate(zip(best, offsets, strict=True))
            if labels[t] != "O"
        ]
    if strategy == "simple":
        tags = [labels[t] for t in best]
        scores = [float(probs[i, t]) for i, t in enumerate(best)]
        return _group(tags, scores, [o[0] for o in offsets], [o[1] for o in offsets], text)
    words = _words(text, offsets)
    tags, scores, starts, ends = [], [], [], []
    for members in words:
        if strategy == "first":
            row = probs[members[0]]
        elif strategy == "max":
            row = probs[max(members, key=lambda i: probs[i].max())]
        else:
            row = probs[members].mean(axis=0)
        tag = int(row.argmax())
        tags.append(labels[tag])
        scores.append(float(row[tag]))
        starts.append(offsets[members[0]][0])
        ends.append(offsets[members[-1]][1])
    return _group(tags, scores, starts, ends, text)


class TokenClassification:
    name = Task.ENTITIES
    takes_aggregation = True
    takes_pairs = False

    def __init__(self, labels: Sequence[str], encoder: TextEncoder, aggregation: str, stride: int) -> None:
        self.labels = list(labels)
        check_aggregation(self.name, aggregation)
        self.aggregation = aggregation
        self.encoder = encoder
        self._windows = WindowTokenizer(encoder)  # never truncates: windows do
        self.width = encoder.max_length
        self.budget = self._windows.budget
        self.stride = min(stride, self.budget // 2)
        self._char_cap = MAX_WINDOWS * self.budget * CHARS_PER_TOKEN_CAP

    @classmethod
    def from_manifest(cls, manifest: Manifest, encoder: TextEncoder) -> TokenClassification:
        return cls(manifest.labels, encoder, manifest.aggregation, manifest.stride)

    @staticmethod
    def outputs(labels: Sequence[str]) -> tuple[Output, ...]:
        """`entities`: one UTF-8 JSON document per text, `{"entities": [...], "truncated": false}`."""
        return (Output("entities", "BYTES", (-1,)),)

    @staticmethod
    def encode_outputs(answers: Sequence[Entities], wanted: Sequence[str], labels: Sequence[str]) -> list[Tensor]:
        docs = [
            json.dumps(TokenClassification.to_dict(a), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            for a in answers
        ]
        return [Tensor("entities", "BYTES", (len(answers),), encode_bytes_raw(docs))]

    @staticmethod
    def answer_bound(texts: int, chars: int, labels: Sequence[str]) -> int:
        """At worst every character is an entity of its own (aggregation `none` on one-character tokens), written
        as JSON with its label, offsets, score and text."""
        longest = max((len(label.encode()) for label in labels), default=0)
        return texts * 64 + chars * (80 + longest)

    @staticmethod
    def to_dict(answer: Entities) -> dict[str, Any]:
        return {"entities": [e.to_dict() for e in answer.entities], "truncated": answer.truncated}

    def check_logits(self, shape: Sequence[Any]) -> str | None:
        width = shape[-1] if shape else None
        if len(shape) != 3 or not isinstance(width, int) or width != len(self.labels):
            return f"returns logits of shape {list(shape)}, the manifest lists {len(self.labels)} tags per token"
        return None

    def tokenize(
        self, texts: Sequence[str], pairs: Sequence[str] | None, long_text: LongTextSpec | None = None
    ) -> list[Tokens]:
        if pairs is not None:
            raise InputError("an entity model takes single texts: send no text_pairs")
        if long_text is not None:
            raise InputError("an entity model always reads a long text in windows: send no long_text")
        cut = [t[: self._char_cap] for t in texts]
        out: list[Tokens] = []
        encodings = self._windows.encode(cut)
        for text, full, enc in zip(texts, cut, encodings, strict=True):
            n = len(enc.ids)
            limit = MAX_WINDOWS * (self.budget - self.stride) + self.stride
            truncated = len(full) < len(text) or n > limit
            n = min(n, limit)
            out.append(
                Windows(
                    ids=list(enc.ids[:n]),
                    type_ids=[0] * n,
                    truncated=truncated,
                    text=text,
                    offsets=[tuple(o) for o in enc.offsets[:n]],  # type: ignore[misc]
                    spans=plan_windows([1] * n, self.budget, self.stride),
                    width=self._windows.specials,
                )
            )
        return out

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        rows: list[Tokens] = []
        ranges: list[tuple[int, int]] = []
        for item in items:
            assert isinstance(item, Windows)
            first = len(rows)
            rows += [self._windows.row(item.ids[w.start : w.end]) for w in item.spans]
            ranges.append((first, len(rows)))
        batch = self.encoder.collate(rows)
        return Encoded(batch.inputs, [t.truncated for t in items], ranges, list(items))

    def empty_logits(self) -> np.ndarray:
        return np.zeros((0, 1, len(self.labels)), dtype=np.float32)

    def token_probs(self, logits: np.ndarray, item: Windows) -> np.ndarray:
        """[content tokens, labels] probabilities of one text from its windows' logits rows."""
        n = len(item.ids)
        probs = np.zeros((n, len(self.labels)), dtype=np.float32)
        skip = len(self._windows.prefix)
        for row, w in zip(logits, item.spans, strict=True):
            if w.own_end > w.own_start:
                probs[w.own_start : w.own_end] = softmax(row[skip + w.own_start - w.start : skip + w.own_end - w.start])
        return probs

    def postprocess(
        self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None, aggregation: str | None = None
    ) -> list[Entities]:
        strategy = aggregation or self.aggregation
        out = []
        for index, item in enumerate(encoded.items):
            probs = self.token_probs(encoded.item_logits(logits, index), item)
            out.append(Entities(aggregate(probs, item, self.labels, strategy), item.truncated))
        return out


def regroup(task: Any, answer: Entities, logits: np.ndarray, tokens: Tokens, aggregation: str | None) -> Entities:
    """An item's entities under `aggregation` when it differs from the bundle's default: regrouped from its own token
    probabilities, with no second model run (`task` is the engine's runtime task)."""
    if not aggregation or aggregation == task.aggregation:
        return answer
    item = cast("Windows", tokens)  # an entity model's items are windows
    probs = task.token_probs(logits, item)
    return Entities(aggregate(probs, item, task.labels, aggregation), answer.truncated)

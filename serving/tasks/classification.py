"""Text classification at run time: one row per text (or pair), softmax or sigmoid, labels and top-k. A text longer
than the window is truncated, or with `long_text` chunk scored in windows whose probabilities are combined
(serving/long_text.py has the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baton.errors import InputError
from baton.serving.encoder import CHARS_PER_TOKEN_CAP, Encoded, TextEncoder, Tokens, Windowed, WindowTokenizer
from baton.serving.kserve_codec import Output, Tensor, encode_bytes_raw, encode_fp32_raw
from baton.serving.long_text import ChunkCombine, LongText, LongTextSpec, combine
from baton.serving.manifest import Manifest
from baton.serving.tasks import check_aggregation
from baton.serving.windows import plan_windows
from baton.task import Task

__all__ = ["Chunks", "Classification", "Prediction", "sigmoid", "softmax", "text_logits"]


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    top_k: list[tuple[str, float]]
    truncated: bool
    # multi-label: every label at or above the threshold, best first; `label` is its first ("" for none)
    labels: list[str] | None = None
    empty: bool = False  # an empty or whitespace-only text: nothing to classify (label "", score 0, no scores)


@dataclass(frozen=True)
class Chunks(Windowed):
    """One text scored in windows (encoder.Windowed), and how its windows' scores combine."""

    combine: ChunkCombine = ChunkCombine.MEAN


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))  # type: ignore[no-any-return]


def text_logits(logits: np.ndarray, prediction: Prediction) -> list[float]:
    """One text's raw scores as a list: its logits row; for a text scored in chunks (one row per window), logits
    whose softmax (multi-label: sigmoid) gives back its combined scores."""
    if logits.ndim == 1:
        return logits.tolist()  # type: ignore[no-any-return]
    p = np.clip(np.asarray(list(prediction.scores.values()), dtype=np.float64), 1e-7, 1 - 1e-7)
    return (np.log(p / (1 - p)) if prediction.labels is not None else np.log(p)).tolist()  # type: ignore[no-any-return]


class Classification:
    name = Task.CLASSIFICATION
    takes_aggregation = False
    takes_pairs = True

    def __init__(
        self,
        labels: Sequence[str],
        encoder: TextEncoder,
        multi_label: bool,
        threshold: float,
        long_text: LongTextSpec | None = None,
    ) -> None:
        self.labels = list(labels)
        self.multi_label = multi_label
        self.threshold = threshold
        self.encoder = encoder
        self.long_text = long_text or LongTextSpec()
        self._windows: WindowTokenizer | None = None  # made on the first chunked call

    @classmethod
    def from_manifest(cls, manifest: Manifest, encoder: TextEncoder) -> Classification:
        return cls(manifest.labels, encoder, manifest.multi_label, manifest.threshold, manifest.long_text)

    @staticmethod
    def outputs(labels: Sequence[str]) -> tuple[Output, ...]:
        """`label` (the top label), `score` (its probability) and `scores` (every label's, in manifest order)."""
        return (
            Output("label", "BYTES", (-1,)),
            Output("score", "FP32", (-1,)),
            Output("scores", "FP32", (-1, len(labels))),
        )

    @staticmethod
    def encode_outputs(answers: Sequence[Prediction], wanted: Sequence[str], labels: Sequence[str]) -> list[Tensor]:
        n = len(answers)
        out = []
        for name in wanted:
            if name == "label":
                out.append(Tensor(name, "BYTES", (n,), encode_bytes_raw([a.label.encode() for a in answers])))
            elif name == "score":
                out.append(Tensor(name, "FP32", (n,), encode_fp32_raw(np.asarray([a.score for a in answers]))))
            else:
                probs = np.asarray([[a.scores[label] for label in labels] for a in answers], dtype=np.float32)
                out.append(Tensor(name, "FP32", (n, len(labels)), encode_fp32_raw(probs.reshape(n, len(labels)))))
        return out

    @staticmethod
    def answer_bound(texts: int, chars: int, labels: Sequence[str]) -> int:
        """Per text: the top label, every label with its score (top-k, `scores`, the multi-label set) and a logit
        each, whatever the text's length."""
        longest = max((len(label.encode()) for label in labels), default=0)
        return texts * (64 + len(labels) * (3 * longest + 48))

    @staticmethod
    def to_dict(answer: Prediction) -> dict[str, Any]:
        """label, score, truncated; top_k when asked for; labels (every label at the threshold) for multi-label."""
        row: dict[str, Any] = {"label": answer.label, "score": round(answer.score, 6), "truncated": answer.truncated}
        if answer.empty:
            row["empty"] = True
        if answer.labels is not None:
            row["labels"] = list(answer.labels)
        return row

    def check_logits(self, shape: Sequence[Any]) -> str | None:
        width = shape[-1] if shape else None
        if len(shape) != 2 or not isinstance(width, int) or width != len(self.labels):
            return f"returns logits of shape {list(shape)}, the manifest lists {len(self.labels)} labels per text"
        return None

    def tokenize(
        self, texts: Sequence[str], pairs: Sequence[str] | None, long_text: LongTextSpec | None = None
    ) -> list[Tokens]:
        spec = long_text or self.long_text
        if spec.mode is LongText.TRUNCATE:
            return self.encoder.tokenize(texts, pairs)
        if pairs is not None:
            raise InputError("long_text chunk: a text pair is never chunked; send long_text truncate")
        return self._chunks(texts, spec)

    def _chunks(self, texts: Sequence[str], spec: LongTextSpec) -> list[Tokens]:
        if self._windows is None:
            self._windows = WindowTokenizer(self.encoder)
        windows = self._windows
        stride = min(spec.stride, windows.budget // 2)
        limit = spec.max_chunks * (windows.budget - stride) + stride  # content tokens that fit max_chunks windows
        cut = [t[: limit * CHARS_PER_TOKEN_CAP] for t in texts]
        out: list[Tokens] = []
        for text, kept, enc in zip(texts, cut, windows.encode(cut), strict=True):
            n = min(len(enc.ids), limit)
            out.append(
                Chunks(
                    ids=list(enc.ids[:n]),
                    type_ids=[0] * n,
                    truncated=len(kept) < len(text) or len(enc.ids) > limit,
                    blank=not text.strip(),
                    spans=plan_windows([1] * n, windows.budget, stride),
                    width=windows.specials,
                    combine=spec.combine,
                )
            )
        return out

    def collate(self, items: Sequence[Tokens]) -> Encoded:
        if not any(isinstance(t, Chunks) for t in items):
            return self.encoder.collate(items)
        assert self._windows is not None  # chunks come from _chunks
        rows: list[Tokens] = []
        ranges: list[tuple[int, int]] = []
        for item in items:
            first = len(rows)
            if isinstance(item, Chunks):
                rows += [self._windows.row(item.ids[w.start : w.end]) for w in item.spans]
            else:
                rows.append(item)
            ranges.append((first, len(rows)))
        batch = self.encoder.collate(rows)
        blank = [t.blank for t in items]
        return Encoded(batch.inputs, [t.truncated for t in items], ranges, list(items), blank if any(blank) else ())

    def _item_probs(self, probs: np.ndarray, encoded: Encoded) -> np.ndarray:
        """One row of probabilities per item: a chunked text's windows combined."""
        if encoded.rows is None:
            return probs
        out = np.empty((encoded.size, probs.shape[-1]), dtype=probs.dtype)
        for index, (start, end) in enumerate(encoded.rows):
            item = encoded.items[index]
            if not isinstance(item, Chunks) or end - start == 1:
                out[index] = probs[start]
                continue
            row = combine(probs[start:end], item.combine)
            out[index] = row if self.multi_label else row / row.sum()  # a label's max over windows: renormalized
        return out

    def empty_logits(self) -> np.ndarray:
        return np.zeros((0, len(self.labels)), dtype=np.float32)

    def postprocess(
        self, logits: np.ndarray, encoded: Encoded, top_k: int | None = None, aggregation: str | None = None
    ) -> list[Prediction]:
        check_aggregation(self.name, aggregation)
        probs = self._item_probs(sigmoid(logits) if self.multi_label else softmax(logits), encoded)
        k = len(self.labels) if not top_k else min(top_k, len(self.labels))
        out: list[Prediction] = []
        blank = encoded.blank or [False] * len(encoded.truncated)
        for row, truncated, empty in zip(probs, encoded.truncated, blank, strict=True):
            if empty:  # the model would still answer something: say there was nothing to classify instead
                nothing = {label: 0.0 for label in self.labels}
                out.append(Prediction("", 0.0, nothing, [], False, [] if self.multi_label else None, empty=True))
                continue
            order = np.argsort(-row, kind="stable")
            best = int(order[0])
            chosen = [self.labels[i] for i in order if row[i] >= self.threshold] if self.multi_label else None
            # Multi-label answers lead with `labels`: `label` is the best of them, or "" (score 0) when no label
            # clears the threshold, never a label the model decided against (issue 29).
            lead, lead_score = ("", 0.0) if self.multi_label and not chosen else (self.labels[best], float(row[best]))
            out.append(
                Prediction(
                    label=lead,
                    score=lead_score,
                    scores={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                    top_k=[(self.labels[i], float(row[i])) for i in order[:k]],
                    truncated=truncated,
                    labels=chosen,
                )
            )
        return out

"""Words + tags → model rows: sub-word alignment from the fast tokenizer's word ids, and windows for long sentences.

Alignment: the tag goes on each word's first sub-token and -100 (ignored by the loss) on the rest; with
`label_all_tokens` every sub-token is tagged, the B- of a word turned into I- after its first sub-token.

Windows: a sentence whose sub-tokens do not fit in `max_length` (special tokens included) is split into windows of
whole words that overlap by about `stride` sub-tokens; nothing is cut silently. Every word is *owned* by exactly one
window, the one where it sits furthest from an edge (the overlap is split at its middle). Training rows tag every
word of a window; evaluation rows (`own_only`) tag only the words the window owns, so each word is scored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Window", "align_rows", "plan_windows"]


@dataclass(frozen=True)
class Window:
    start: int  # first word
    end: int  # one past the last word
    own_start: int  # words [own_start, own_end) are scored in this window
    own_end: int


def plan_windows(word_lengths: Sequence[int], budget: int, stride: int) -> list[Window]:
    """Windows of whole words with at most `budget` sub-tokens each (a single longer word gets a window of its
    own, cut), overlapping by about `stride` sub-tokens; ownership split at the middle of each overlap."""
    n = len(word_lengths)
    if sum(word_lengths) <= budget:
        return [Window(0, n, 0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (end == start or used + word_lengths[end] <= budget):
            used += word_lengths[end]
            end += 1
        spans.append((start, end))
        if end >= n:
            break
        back, overlap = end, 0  # step back over about `stride` sub-tokens, always moving forward
        while (
            stride > 0
            and back - 1 > start
            and (overlap == 0 or overlap + word_lengths[back - 1] <= stride)
            and overlap + word_lengths[back - 1] + word_lengths[end] <= budget  # the next window still moves on
        ):
            back -= 1
            overlap += word_lengths[back]
        start = max(back, start + 1)
    windows = []
    for i, (s, e) in enumerate(spans):
        own_s = s if i == 0 else (s + spans[i - 1][1] + 1) // 2
        own_e = e if i == len(spans) - 1 else (spans[i + 1][0] + e + 1) // 2
        windows.append(Window(s, e, own_s, own_e))
    return windows


def align_rows(
    tokenizer: Any,
    sentences: Sequence[tuple[Sequence[str], Sequence[int]]],
    max_length: int,
    stride: int,
    label_all_tokens: bool,
    own_only: bool,
    begin_to_inside: dict[int, int],
) -> tuple[dict[str, list[list[int]]], list[int]]:
    """Model rows for (words, tag ids) sentences. Returns (columns, sentence index of each row).

    `begin_to_inside` maps each B- tag id to its I- id (for `label_all_tokens`)."""
    special = tokenizer.num_special_tokens_to_add(pair=False)
    budget = max(1, max_length - special)
    counts = tokenizer([list(w) for w, _ in sentences], is_split_into_words=True, add_special_tokens=False)
    columns: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    use_types = "token_type_ids" in counts
    if use_types:
        columns["token_type_ids"] = []
    owner: list[int] = []
    for index, (words, tags) in enumerate(sentences):
        word_ids = counts.word_ids(index)
        lengths = [0] * len(words)
        for w in word_ids:
            if w is not None:
                lengths[w] += 1
        lengths = [max(1, c) for c in lengths]  # a word the tokenizer drops (e.g. a control char) still counts
        for win in plan_windows(lengths, budget, min(stride, budget // 2)):
            enc = tokenizer(
                list(words[win.start : win.end]),
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
            )
            labels = []
            previous = None
            for w in enc.word_ids():
                if w is None:
                    labels.append(-100)
                    continue
                word = win.start + w
                scored = not own_only or win.own_start <= word < win.own_end
                if not scored:
                    labels.append(-100)
                elif w != previous:
                    labels.append(tags[word])
                elif label_all_tokens and not own_only:
                    labels.append(begin_to_inside.get(tags[word], tags[word]))
                else:
                    labels.append(-100)
                previous = w
            columns["input_ids"].append(enc["input_ids"])
            columns["attention_mask"].append(enc["attention_mask"])
            if use_types:
                columns["token_type_ids"].append(enc["token_type_ids"])
            columns["labels"].append(labels)
            owner.append(index)
    return columns, owner

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
from typing import Any

from baton.serving.windows import Window, plan_windows

__all__ = ["align_rows"]


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
    # One pass over every sentence, special tokens included: most sentences fit and use this encoding as it is;
    # only a sentence over the budget is encoded again, window by window.
    whole = tokenizer([list(w) for w, _ in sentences], is_split_into_words=True)
    columns: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    use_types = "token_type_ids" in whole
    if use_types:
        columns["token_type_ids"] = []
    owner: list[int] = []

    def add(enc: Any, word_ids: list[int | None], tags: Sequence[int], win: Window, index: int) -> None:
        labels = []
        previous = None
        for w in word_ids:
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

    for index, (words, tags) in enumerate(sentences):
        word_ids = whole.word_ids(index)
        if len(word_ids) <= max_length:
            row = {k: whole[k][index] for k in columns if k != "labels"}
            add(row, word_ids, tags, Window(0, len(words), 0, len(words)), index)
            continue
        lengths = [0] * len(words)
        for w in word_ids:
            if w is not None:
                lengths[w] += 1
        lengths = [max(1, c) for c in lengths]  # a word the tokenizer drops (e.g. a control char) still counts
        for win in plan_windows(lengths, budget, min(stride, budget // 2)):
            enc = tokenizer(
                list(words[win.start : win.end]), is_split_into_words=True, truncation=True, max_length=max_length
            )
            add(enc, enc.word_ids(), tags, win, index)
    return columns, owner

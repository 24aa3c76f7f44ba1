"""Overlapping windows over a sequence too long for the model, with each position owned by exactly one window.

One planner for training (windows of whole words, `training/ner_align.py`) and for the runtime (windows of tokens,
every token a unit of length 1, `serving/tasks/token_classification.py`): the windows hold at most `budget` units,
neighbours share about `stride` units (at least one item, where the next window can still move on), and each
position is owned by the window where it sits furthest from an edge (an overlap is split at its middle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Window", "plan_windows"]


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

"""Batch assembly as a small pure function: which waiting items go into the next batch."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["select_window"]


def select_window(lengths: Sequence[int], anchor: int, max_tokens: int, max_size: int) -> tuple[int, int]:
    """Choose a contiguous window [lo, hi) of length-sorted items that contains `anchor` (the oldest item).

    `lengths` is sorted ascending. The window grows one neighbour at a time, taking whichever side adds less
    padding, while the padded size (longest × count) stays within `max_tokens` and the count within `max_size`.
    The anchor is always taken, even alone over budget, so no item can starve.
    """
    if not lengths:
        return 0, 0
    if not 0 <= anchor < len(lengths):
        raise IndexError("anchor out of range")
    lo, hi = anchor, anchor + 1
    longest = lengths[anchor]
    while hi - lo < max_size:
        left_ok = lo > 0 and longest * (hi - lo + 1) <= max_tokens
        right_ok = hi < len(lengths) and lengths[hi] * (hi - lo + 1) <= max_tokens
        if not (left_ok or right_ok):
            break
        left_waste = longest - lengths[lo - 1] if left_ok else None
        right_waste = (lengths[hi] - longest) * (hi - lo) if right_ok else None
        if right_waste is None or (left_waste is not None and left_waste <= right_waste):
            lo -= 1
        else:
            longest = lengths[hi]
            hi += 1
    return lo, hi

"""Batch assembly as small pure functions: which waiting items go into the next batch, and whether it runs wide."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["WIDE_POLICIES", "runs_wide", "select_window"]

# `baton serve --wide-batches`: when a batch may take every intra-op thread (see `runs_wide`).
WIDE_POLICIES = ("idle", "alone")


def select_window(
    lengths: Sequence[int], anchor: int, max_tokens: int, max_size: int, min_fill: float = 0.0
) -> tuple[int, int]:
    """Choose a contiguous window [lo, hi) of length-sorted items that contains `anchor` (the oldest item).

    `lengths` is sorted ascending. The window grows one neighbour at a time, taking whichever side adds less
    padding, while the padded size (longest × count) stays within `max_tokens`, the count within `max_size`, and
    the items' own tokens fill at least `min_fill` of the padded size (0: any padding). The anchor is always
    taken, even alone over budget, so no item can starve.
    """
    if not lengths:
        return 0, 0
    if not 0 <= anchor < len(lengths):
        raise IndexError("anchor out of range")
    lo, hi = anchor, anchor + 1
    longest = lengths[anchor]
    own = lengths[anchor]  # the window's tokens without padding
    while hi - lo < max_size:
        count = hi - lo + 1
        left_ok = lo > 0 and longest * count <= max_tokens and own + lengths[lo - 1] >= min_fill * longest * count
        right_ok = (
            hi < len(lengths)
            and lengths[hi] * count <= max_tokens
            and own + lengths[hi] >= min_fill * lengths[hi] * count
        )
        if not (left_ok or right_ok):
            break
        left_waste = longest - lengths[lo - 1] if left_ok else None
        right_waste = (lengths[hi] - longest) * (hi - lo) if right_ok else None
        if right_waste is None or (left_waste is not None and left_waste <= right_waste):
            lo -= 1
            own += lengths[lo]
        else:
            longest = lengths[hi]
            own += lengths[hi]
            hi += 1
    return lo, hi


def runs_wide(
    *, workers: int, running: int, left: int, min_second: int, arrived_while_running: int, policy: str
) -> bool:
    """Whether the batch just taken runs *wide* (every intra-op thread) rather than *narrow* (its worker's share).

    `running` counts the batches already running beside it, `left` the texts still waiting after it was taken,
    `arrived_while_running` the texts that joined the queue while some batch ran, since the previous batch was
    taken. The rules, in order:

    - one worker: wide (there is no second batch to leave room for);
    - another batch is running: narrow (two run at once, a core each);
    - texts are left waiting (at least `min_second`, or any when it is 0): narrow, so a second batch can start
      beside it at once;
    - policy "idle": narrow also when texts arrived while the previous batch ran. Such traffic is concurrent, so
      more will arrive during this run, and a second batch must be able to start beside it; a wide run never has
      one beside it, and on a small machine its spinning threads also starve the event loop that accepts those
      texts (8 clients: 1.2x the throughput of "alone", docs/benchmarks.md). Serial traffic (one client, or
      requests that arrive only between runs) still runs wide, at the best single-batch latency;
    - otherwise ("alone": the rule before this policy) wide.
    """
    if policy not in WIDE_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(WIDE_POLICIES)} (got {policy!r})")
    if workers <= 1:
        return True
    if running > 0 or left >= max(1, min_second):
        return False
    return not (policy == "idle" and arrived_while_running > 0)

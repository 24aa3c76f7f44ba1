"""IOB2 tag sequences → entity spans, one rule for every stage (training metrics, parity gates, runtime).

The rule is conlleval's, which is also the Hugging Face pipeline's `simple` grouping: an entity starts at a B-X,
or at an I-X that does not continue an entity of type X; it goes on over the I-X that follow; anything else ends
it. An I-X after O (an invalid transition) thus starts an entity instead of being lost.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["entity_type", "iob_spans"]


def entity_type(tag: str) -> str | None:
    """'PER' for B-PER or I-PER; None for O."""
    return None if tag == "O" or len(tag) < 3 else tag[2:]


def iob_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first position, one past the last position) of every entity in `tags`."""
    out: list[tuple[str, int, int]] = []
    current: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        kind = entity_type(tag)
        continues = kind is not None and kind == current and tag.startswith("I-")
        if continues:
            continue
        if current is not None:
            out.append((current, start, i))
        current, start = kind, i
    if current is not None:
        out.append((current, start, len(tags)))
    return out

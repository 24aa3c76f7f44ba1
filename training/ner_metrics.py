"""Entity-level metrics (seqeval's default, conlleval-compatible scoring) and the error kinds a person reads.

Computed here rather than by seqeval so the export gates and `baton evaluate` score entities with the same code
the runtime groups them with (`baton.serving.iob`); tests pin the figures to seqeval's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from baton.serving.iob import iob_spans

__all__ = ["ERROR_KINDS", "entity_metrics", "error_kinds", "span_metrics"]

ERROR_KINDS = ("wrong type", "wrong boundary", "missed", "spurious")

Span = tuple[str, int, int]


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def span_metrics(true: Sequence[set[Span]], pred: Sequence[set[Span]]) -> dict[str, Any]:
    """Micro/macro precision, recall, F1 and per-type figures over exact (type, start, end) matches."""
    types = sorted({s[0] for row in (*true, *pred) for s in row})
    per_type: dict[str, dict[str, float]] = {}
    tp_all = n_pred_all = n_true_all = 0
    for kind in types:
        tp = sum(len({s for s in t if s[0] == kind} & p) for t, p in zip(true, pred, strict=True))
        n_pred = sum(1 for row in pred for s in row if s[0] == kind)
        n_true = sum(1 for row in true for s in row if s[0] == kind)
        p, r, f = _prf(tp, n_pred, n_true)
        per_type[kind] = {"precision": p, "recall": r, "f1": f, "support": n_true}
        tp_all, n_pred_all, n_true_all = tp_all + tp, n_pred_all + n_pred, n_true_all + n_true
    p, r, f = _prf(tp_all, n_pred_all, n_true_all)
    supported = [v["f1"] for v in per_type.values() if v["support"]]
    return {
        "entity_precision": p,
        "entity_recall": r,
        "entity_f1": f,
        "entity_macro_f1": sum(supported) / len(supported) if supported else 0.0,
        "entities_true": n_true_all,
        "entities_predicted": n_pred_all,
        "per_type": per_type,
    }


def error_kinds(
    true: Sequence[set[Span]],
    pred: Sequence[set[Span]],
    quote: Callable[[int, Span], str] | None = None,
    examples: int = 3,
) -> dict[str, Any]:
    """Count the errors by kind: a gold entity found with the right span but the wrong type, found with an
    overlapping but different span (wrong boundary, whatever the type), or not found at all (missed); a predicted
    entity that overlaps no gold one (spurious). Up to `examples` examples each, quoted by `quote(row, span)`."""
    counts: Counter[str] = Counter()
    shown: dict[str, list[str]] = {k: [] for k in ERROR_KINDS}

    def show(kind: str, row: int, gold: Span | None, guess: Span | None) -> None:
        counts[kind] += 1
        if quote is None or len(shown[kind]) >= examples:
            return

        def text(s: Span) -> str:
            return f"'{quote(row, s)}' {s[0]}"

        parts = [f"gold {text(gold)}" if gold else "", f"predicted {text(guess)}" if guess else ""]
        shown[kind].append(" / ".join(p for p in parts if p))

    for row, (t, p) in enumerate(zip(true, pred, strict=True)):
        for gold in sorted(t - p):
            overlap = [s for s in p if s[1] < gold[2] and gold[1] < s[2]]
            same_span = [s for s in overlap if s[1:] == gold[1:]]
            if same_span:
                show("wrong type", row, gold, same_span[0])
            elif overlap:
                show("wrong boundary", row, gold, overlap[0])
            else:
                show("missed", row, gold, None)
        for guess in sorted(p - t):
            if not any(s[1] < guess[2] and guess[1] < s[2] for s in t):
                show("spurious", row, None, guess)
    return {kind: {"count": counts[kind], "examples": shown[kind]} for kind in ERROR_KINDS}


def entity_metrics(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], words: Sequence[Sequence[str]] | None = None
) -> dict[str, Any]:
    """Entity P/R/F1 (micro, macro, per type), token accuracy and error kinds of word-level tag sequences."""
    true = [set(iob_spans(t)) for t in true_tags]
    pred = [set(iob_spans(p)) for p in pred_tags]
    tokens = sum(len(t) for t in true_tags)
    correct = sum(a == b for t, p in zip(true_tags, pred_tags, strict=True) for a, b in zip(t, p, strict=True))
    out = span_metrics(true, pred)
    out["token_accuracy"] = correct / tokens if tokens else 0.0
    out["samples"] = len(true_tags)
    quote = None if words is None else (lambda row, s: " ".join(words[row][s[1] : s[2]]))
    out["errors"] = error_kinds(true, pred, quote)
    return out

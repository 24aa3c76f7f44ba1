"""`baton evaluate` on an entity bundle: the embedded runtime's entities against gold character spans.

The data is any of the three entity layouts (training/ner_data.py). A spans file is scored on its own texts; token
rows and CoNLL text are joined with single spaces, each entity's gold span taken from its words. Every variant runs
through the `Predictor` (its windows, aggregation and character offsets), so the figure is what a user of the
bundle gets. Entity P/R/F1 micro, macro and per type (exact type and span), and the error kinds with examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baton.errors import DataError

__all__ = ["entity_examples", "evaluate_entities", "write_entity_report"]

Span = tuple[str, int, int]


def entity_examples(data_file: str, bundle_labels: list[str]) -> tuple[list[str], list[set[Span]]]:
    """(texts, gold spans) from an entity file of any layout; types the bundle does not know are refused."""
    from baton.training.ner_data import joined_text, read_token_file

    read = read_token_file(data_file, "--data")
    if read.layout == "spans":
        texts, gold = [], []
        with open(data_file, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    texts.append(row["text"])
                    gold.append({(e["label"], e["start"], e["end"]) for e in row["entities"]})
    else:
        pairs = [joined_text(s.words, s.tags) for s in read.sentences]
        texts, gold = [t for t, _ in pairs], [g for _, g in pairs]
    known = {label[2:] for label in bundle_labels if label != "O"}
    unknown = sorted({kind for spans in gold for kind, _, _ in spans} - known)
    if unknown:
        raise DataError(f"--data {data_file}: entity type(s) the model does not know: {', '.join(unknown[:10])}")
    return texts, gold


def evaluate_entities(
    bundle: Any, data_file: str, variants: list[str], device: str, aggregation: str | None, batch_size: int
) -> dict[str, Any]:
    from baton.serving.predictor import Predictor
    from baton.training.ner_metrics import error_kinds, span_metrics

    texts, gold = entity_examples(data_file, list(bundle.labels))
    results: dict[str, Any] = {}
    for variant in variants:
        predictor = Predictor.load(bundle, device, variant, batch_size=batch_size)
        answers = predictor.predict(texts, aggregation=aggregation)
        pred = [{(e.label, e.start, e.end) for e in a.entities} for a in answers]
        m = span_metrics(gold, pred)
        m["samples"] = len(texts)
        m["aggregation"] = aggregation or predictor.engine.task.aggregation  # type: ignore[attr-defined]
        m["truncated"] = sum(a.truncated for a in answers)
        m["errors"] = error_kinds(gold, pred, lambda row, s: texts[row][s[1] : s[2]])
        results[variant] = m
    return results


def write_entity_report(path: Path, title: str, results: dict[str, Any]) -> None:
    from baton.training.report import entity_section

    lines = [f"# {title}", ""]
    for variant, m in results.items():
        heading = f"{variant} ({m['samples']} texts, {m['entities_true']} entities, aggregation {m['aggregation']})"
        lines += entity_section(heading, m)
    path.write_text("\n".join(lines), encoding="utf-8")

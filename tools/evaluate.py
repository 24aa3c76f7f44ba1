"""`baton evaluate`: score bundle variants on a labelled file with the embedded runtime (needs the train extra).

Classification bundles: accuracy, F1 and confusion matrices from the training metrics. Entity bundles: entity
P/R/F1 of the runtime's own entities against gold spans (`tools/evaluate_entities.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton._io import write_json_atomic
from baton.errors import DataError
from baton.serving.bundle import Bundle, load_bundle
from baton.serving.predictor import Predictor
from baton.task import Task

__all__ = ["evaluate_bundle"]


@dataclass(frozen=True)
class _Request:
    data_file: str
    variants: list[str] | None
    text_column: str
    label_column: str
    output_dir: Path | None
    batch_size: int
    text_pair_column: str | None
    device: str
    aggregation: str | None


def _evaluate_entities(bundle: Bundle, r: _Request) -> dict[str, Any]:
    from baton.tools.evaluate_entities import evaluate_entities, write_entity_report

    if r.text_pair_column:
        raise DataError(f"--text-pair-column: {bundle.root} finds entities in single texts")
    variants = r.variants or sorted(bundle.models)
    results = evaluate_entities(bundle, r.data_file, variants, r.device, r.aggregation, r.batch_size)
    if r.output_dir is not None:
        r.output_dir.mkdir(parents=True, exist_ok=True)
        write_entity_report(r.output_dir / "report.md", f"Evaluation of {bundle.name} on {r.data_file}", results)
        write_json_atomic(r.output_dir / "metrics.json", results)
    return results


def evaluate_bundle(
    bundle_dir: str | Path,
    data_file: str,
    variants: list[str] | None,
    text_column: str,
    label_column: str,
    output_dir: Path | None,
    batch_size: int = 32,
    text_pair_column: str | None = None,
    device: str = "auto",
    aggregation: str | None = None,
) -> dict[str, Any]:
    """Each variant's metrics on `data_file`, by the bundle's task; written to `output_dir` when given."""
    bundle = load_bundle(bundle_dir)
    request = _Request(
        data_file, variants, text_column, label_column, output_dir, batch_size, text_pair_column, device, aggregation
    )
    return _BY_TASK[bundle.manifest.task](bundle, request)


def _evaluate_classes(bundle: Bundle, r: _Request) -> dict[str, Any]:
    from baton.training.data import load_labelled_file
    from baton.training.metrics import classification_metrics, encode_label_ids
    from baton.training.report import plot_confusion_matrix, write_report

    data_file, text_column, label_column, text_pair_column = (
        r.data_file,
        r.text_column,
        r.label_column,
        r.text_pair_column,
    )
    if r.aggregation is not None:
        raise DataError(f"--aggregation: {bundle.root} is a classifier, not an entity model")
    if bundle.manifest.pairs and not text_pair_column:
        raise DataError(
            f"{bundle.root} is a sentence-pair model: name the second text's column with --text-pair-column"
        )
    if text_pair_column and not bundle.manifest.pairs:
        raise DataError(f"--text-pair-column: {bundle.root} takes single texts, not pairs")
    ds = load_labelled_file(data_file, "--data")
    columns = [(text_column, "--text-column"), (label_column, "--label-column")]
    if text_pair_column:
        columns.append((text_pair_column, "--text-pair-column"))
    for column, flag in columns:
        if column not in ds.column_names:
            raise DataError(
                f"--data {data_file}: no column '{column}' ({flag}); columns found: {', '.join(ds.column_names)}"
            )
    texts = ["" if t is None else str(t) for t in ds[text_column]]
    pairs = ["" if t is None else str(t) for t in ds[text_pair_column]] if text_pair_column else None
    try:
        label_ids = encode_label_ids(ds[label_column], bundle.labels, bundle.multi_label)
    except KeyError as exc:
        raise DataError(f"--data {data_file}: label(s) the model does not know: {exc.args[0]}") from exc
    results: dict[str, Any] = {}
    for variant in r.variants or sorted(bundle.models):
        predictor = Predictor.load(bundle, r.device, variant, batch_size=r.batch_size)
        results[variant] = classification_metrics(
            predictor.logits(texts, pairs), label_ids, bundle.labels, bundle.multi_label, predictor.engine.threshold
        )
    output_dir = r.output_dir
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for variant, m in results.items():
            if "confusion_matrix" in m:
                plot_confusion_matrix(
                    m["confusion_matrix"],
                    bundle.labels,
                    f"{variant} confusion matrix",
                    output_dir / f"confusion_matrix_{variant}.png",
                )
        write_report(
            output_dir / "report.md",
            f"Evaluation of {bundle.name} on {data_file}",
            {"bundle": str(bundle.root), "data": data_file, "examples": len(texts)},
            results,
            curves=None,
        )
        write_json_atomic(output_dir / "metrics.json", results)
    return results


_BY_TASK: dict[Task, Callable[[Bundle, _Request], dict[str, Any]]] = {
    Task.CLASSIFICATION: _evaluate_classes,
    Task.ENTITIES: _evaluate_entities,
}

"""One chunk of input rows in, the same rows with their predictions out: the single scoring rule that the embedded
loop and every Ray actor apply, so both engines write the same predictions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from baton.errors import ConfigError, InputError
from baton.serving.bundle import Bundle
from baton.serving.long_text import LongText, requested
from baton.serving.predictor import Predictor
from baton.serving.tasks import check_aggregation, task_class
from baton.task import Task
from baton.tools.score.job import Columns

__all__ = ["check_fit", "output_schema", "prediction_fields", "score_table"]


def check_fit(bundle: Bundle, columns: Columns) -> None:
    """Refuse columns the bundle's declared inputs and task cannot use, naming the flag."""
    manifest = bundle.manifest
    if manifest.pairs and columns.text_pair is None:
        raise ConfigError(
            f"{bundle.root} is a sentence-pair model: name the second text's column with --text-pair-column"
        )
    if columns.text_pair is not None and not manifest.pairs:
        raise ConfigError(f"--text-pair-column: {bundle.root} takes single texts, not pairs")
    try:
        check_aggregation(manifest.task, columns.aggregation)
    except InputError as exc:
        raise ConfigError(f"--aggregation: {bundle.root} is a {manifest.task} model: {exc}") from exc
    try:
        default = manifest.long_text if manifest.task is Task.CLASSIFICATION else None
        chosen = requested(default, columns.long_text, columns.chunk_combine)
    except InputError as exc:
        raise ConfigError(f"--long-text/--chunk-combine: {bundle.root}: {exc}") from exc
    if chosen is not None and chosen.mode is LongText.CHUNK and manifest.pairs:
        raise ConfigError(f"--long-text chunk: {bundle.root} is a sentence-pair model; a pair is never chunked")
    if columns.all_scores and "scores" not in {o.name for o in task_class(manifest.task).outputs(manifest.labels)}:
        raise ConfigError(f"--scores: {bundle.root} is a {manifest.task} model; its answers carry their own scores")


def _entity_fields(bundle: Bundle, columns: Columns) -> list[Any]:
    import pyarrow as pa

    entity = pa.struct(
        [
            ("label", pa.string()),
            ("text", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("score", pa.float64()),
        ]
    )
    return [pa.field("entities", pa.list_(entity))]


def _class_fields(bundle: Bundle, columns: Columns) -> list[Any]:
    import pyarrow as pa

    fields = [pa.field("label", pa.string()), pa.field("score", pa.float64())]
    if bundle.multi_label:
        fields.append(pa.field("labels", pa.list_(pa.string())))
    if columns.all_scores:
        fields.append(pa.field("scores", pa.struct([(label, pa.float64()) for label in bundle.labels])))
    return fields


# the Arrow fields each task's answers fill
_FIELDS: dict[Task, Callable[[Bundle, Columns], list[Any]]] = {
    Task.CLASSIFICATION: _class_fields,
    Task.ENTITIES: _entity_fields,
}


def prediction_fields(bundle: Bundle, columns: Columns) -> list[Any]:
    """The Arrow fields a job adds, in order (see `Columns`)."""
    import pyarrow as pa

    fields = [
        *_FIELDS[bundle.manifest.task](bundle, columns),
        pa.field("truncated", pa.bool_()),
        pa.field("empty_text", pa.bool_()),
    ]
    return [pa.field(columns.prefix + f.name, f.type) for f in fields]


def output_schema(bundle: Bundle, columns: Columns, input_schema: Any) -> Any:
    """The schema of every output chunk: the carried input columns, then the prediction fields."""
    import pyarrow as pa

    from baton.errors import DataError

    added = prediction_fields(bundle, columns)
    carried = [input_schema.field(name) for name in _carried(columns, input_schema.names)]
    clash = sorted({f.name for f in carried} & {f.name for f in added})
    if clash:
        raise DataError(
            f"--keep-columns: the input's column(s) {', '.join(clash)} would be overwritten by the prediction "
            f"(named {columns.prefix}*); rename them, or score without --keep-columns and join on --id-column"
        )
    return pa.schema([*carried, *added])


def _carried(columns: Columns, names: list[str]) -> list[str]:
    if columns.keep:
        return list(names)
    return [columns.id] if columns.id is not None else []


def _added(schema: Any, columns: Columns) -> set[str]:
    """The unprefixed names of `schema`'s prediction columns (`output_schema` refused any clash with carried ones)."""
    if columns.keep:
        return {name.removeprefix(columns.prefix) for name in schema.names if name.startswith(columns.prefix)}
    return set(schema.names) - {columns.id}


def _text(value: Any) -> str | None:
    """The text to score, or None for a null or blank one (it gets an empty prediction and `empty_text`)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def score_table(predictor: Predictor, table: Any, columns: Columns, schema: Any) -> Any:
    """`table`'s carried columns plus its predictions, as a pyarrow Table of `schema` (from `output_schema`)."""
    import pyarrow as pa

    texts = [_text(v) for v in table.column(columns.text).to_pylist()]
    pairs = None
    if columns.text_pair is not None:
        # A pair with a blank second text is still a pair; only the first text decides emptiness.
        pairs = ["" if v is None else str(v) for v in table.column(columns.text_pair).to_pylist()]
    rows = [i for i, t in enumerate(texts) if t is not None]
    answers: list[Any] = [None] * len(texts)
    if rows:
        chosen = [texts[i] or "" for i in rows]
        chosen_pairs = None if pairs is None else [pairs[i] for i in rows]
        found = predictor.predict(
            chosen,
            pairs=chosen_pairs,
            aggregation=columns.aggregation,
            long_text=columns.long_text,
            chunk_combine=columns.chunk_combine,
        )
        for i, answer in zip(rows, found, strict=True):
            answers[i] = answer
    data: dict[str, list[Any]] = {}
    names = _added(schema, columns)
    if "entities" in names:
        data["entities"] = [[] if a is None else [e.to_dict() for e in a.entities] for a in answers]
    else:
        data["label"] = [None if a is None else a.label for a in answers]
        data["score"] = [None if a is None else a.score for a in answers]
        if "labels" in names:
            data["labels"] = [[] if a is None else list(a.labels or []) for a in answers]
        if "scores" in names:
            data["scores"] = [None if a is None else a.scores for a in answers]
    data["truncated"] = [False if a is None else bool(a.truncated) for a in answers]
    data["empty_text"] = [a is None for a in answers]
    data = {columns.prefix + name: values for name, values in data.items()}
    arrays = [
        table.column(f.name).cast(f.type) if f.name not in data else pa.array(data[f.name], type=f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)

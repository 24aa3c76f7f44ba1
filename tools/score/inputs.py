"""Where a score job reads from and writes to: input files (a file, a folder or a glob), the output each one becomes,
and bounded-memory readers that stream an input in chunks of rows (pyarrow's streaming readers)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from baton.errors import ConfigError, DataError, OutputDirError
from baton.tools.score.job import FORMATS, Columns

__all__ = ["csv_convert_options", "input_format", "input_schema", "plan_outputs", "read_chunks", "resolve_inputs"]

_INPUT_SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_OUTPUT_SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl"}


def input_format(path: Path) -> str | None:
    return _INPUT_SUFFIXES.get(path.suffix.lower())


def _listed(path: Path) -> bool:
    """Files a folder or glob contributes: a known suffix, and not hidden or a marker (`.x`, `_SUCCESS`, ...)."""
    return path.is_file() and input_format(path) is not None and not path.name.startswith((".", "_"))


def resolve_inputs(spec: str) -> list[Path]:
    """The input files of `--input`, in a stable order: the file itself, a folder's data files, or a glob's."""
    path = Path(spec)
    if any(ch in spec for ch in "*?["):
        files = sorted(p for p in map(Path, glob.glob(spec, recursive=True)) if _listed(p))
        if not files:
            raise DataError(f"--input {spec}: the pattern matches no .parquet, .jsonl or .csv file")
        return files
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _listed(p))
        if not files:
            raise DataError(f"--input {spec}: the folder holds no .parquet, .jsonl or .csv file")
        return files
    if not path.is_file():
        raise DataError(f"--input {spec}: no such file or folder")
    if input_format(path) is None:
        raise DataError(f"--input {spec}: unknown format '{path.suffix}': use .parquet, .jsonl or .csv")
    return [path]


def plan_outputs(
    inputs: list[Path], output: Path, output_format: str | None, engine: str, resume: bool, overwrite: bool
) -> tuple[list[tuple[Path, Path]], str, bool]:
    """(input, output) pairs, the output format and whether `output` is one file.

    `--output x.parquet` or `x.jsonl` (not an existing folder) is one file holding every input's rows, in order.
    Anything else is a folder with one output per input, named after it (`reviews.csv` -> `reviews.parquet`).
    Existing outputs need `--resume` (skip them) or `--overwrite` (replace each once its replacement is complete)."""
    if output_format is not None and output_format not in FORMATS:
        raise ConfigError(f"--format: use {' or '.join(FORMATS)}, not {output_format!r}")
    suffix_format = _OUTPUT_SUFFIXES.get(output.suffix.lower())
    single = suffix_format is not None and not output.is_dir()
    if single:
        assert suffix_format is not None
        if output_format is not None and output_format != suffix_format:
            raise ConfigError(f"--format {output_format} contradicts --output {output} (a .{suffix_format} file)")
        if engine == "ray":
            raise ConfigError(
                f"--output {output}: --engine ray writes each input as a folder of Ray's part files; give a folder"
            )
        fmt = suffix_format
        planned = [(source, output) for source in inputs]
    else:
        if output.exists() and not output.is_dir():
            raise ConfigError(f"--output {output}: exists and is not a folder (name a .parquet or .jsonl file)")
        fmt = output_format or "parquet"
        by_name: dict[str, Path] = {}
        for source in inputs:
            name = f"{source.stem}.{fmt}"
            if name in by_name:
                raise ConfigError(
                    f"--input: {by_name[name]} and {source} would both be written to {output / name}; "
                    "score them into different --output folders"
                )
            by_name[name] = source
        planned = [(source, output / f"{source.stem}.{fmt}") for source in inputs]
    sources = {p.resolve() for p in inputs}
    for _, target in planned:
        if target.resolve() in sources:
            raise ConfigError(f"--output: {target} is also an input; write the scores somewhere else")
    existing = sorted({t for _, t in planned if t.exists()})
    if existing and not (resume or overwrite):
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputDirError(
            f"--output: {existing[0]} exists{more}; pass --resume to skip finished inputs or --overwrite to replace"
        )
    return planned, fmt, single


def csv_convert_options(columns: Columns) -> Any:
    """Read the text, pair and id columns of a CSV as strings ('007' stays '007'); infer the others."""
    from pyarrow import csv, string

    named = [c for c in (columns.text, columns.text_pair, columns.id) if c is not None]
    return csv.ConvertOptions(column_types={c: string() for c in named}, strings_can_be_null=True)


def _open(path: Path, columns: Columns) -> Any:
    """A streaming reader with `.schema` and batch iteration, or a clear error naming the file."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    fmt = input_format(path)
    try:
        if fmt == "parquet":
            return pq.ParquetFile(path)
        if fmt == "csv":
            return pa_csv.open_csv(path, convert_options=csv_convert_options(columns))
        return pa_json.open_json(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"--input {path}: cannot be read as {fmt}: {_first_line(exc)}") from exc


def _schema(reader: Any) -> Any:
    """The Arrow schema of a reader from `_open` (parquet names it `schema_arrow`)."""
    return reader.schema_arrow if hasattr(reader, "schema_arrow") else reader.schema


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def input_schema(path: Path, columns: Columns) -> Any:
    """The file's Arrow schema, checked to hold the columns the job reads."""
    schema = _schema(_open(path, columns))
    _check_columns(path, schema.names, columns)
    return schema


def _check_columns(path: Path, names: list[str], columns: Columns) -> None:
    wanted = [(columns.text, "--text-column"), (columns.text_pair, "--text-pair-column"), (columns.id, "--id-column")]
    for column, flag in wanted:
        if column is not None and column not in names:
            raise DataError(f"--input {path}: no column '{column}' ({flag}); columns found: {', '.join(names)}")


def read_chunks(path: Path, columns: Columns, chunk_rows: int) -> Iterator[Any]:
    """The file as pyarrow Tables of at most `chunk_rows` rows, in order; memory is bounded by the chunk size."""
    import pyarrow as pa

    reader = _open(path, columns)
    schema = _schema(reader)
    _check_columns(path, schema.names, columns)
    batches = reader.iter_batches(batch_size=chunk_rows) if hasattr(reader, "iter_batches") else reader
    pending: list[Any] = []
    rows = seen = 0
    try:
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            seen += batch.num_rows
            while rows >= chunk_rows:
                table = pa.Table.from_batches(pending, schema=schema)
                yield table.slice(0, chunk_rows)
                rest = table.slice(chunk_rows)
                pending, rows = rest.to_batches(), rest.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"--input {path}: unreadable after row {seen}: {_first_line(exc)}") from exc
    if rows:
        yield pa.Table.from_batches(pending, schema=schema)

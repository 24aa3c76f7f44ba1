"""The embedded engine: stream each input through one in-process `Predictor`, chunk by chunk, writing as it goes.

Memory holds one chunk (`--chunk-rows`, default 4096) and its predictions, whatever the file's size. Within a chunk
the Predictor sorts texts by length into batches, so padding costs little; the output keeps the input's order."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from baton.errors import DataError
from baton.serving.predictor import Predictor
from baton.tools.score.inputs import input_format, input_schema, read_chunks
from baton.tools.score.job import ScoreJob
from baton.tools.score.rows import check_fit, output_schema, score_table
from baton.tools.score.sinks import Sink

__all__ = ["estimate_rows", "run_embedded"]

logger = logging.getLogger(__name__)


def estimate_rows(path: Path) -> int:
    """Rows in `path` for the progress bar's ETA: exact for parquet (its footer), line count for JSONL and CSV."""
    if input_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
    return max(0, lines - (1 if input_format(path) == "csv" else 0))


def run_embedded(job: ScoreJob, pending: list[tuple[Path, Path]]) -> dict[str, Any]:
    """Score `pending` (input, output) pairs; returns rows, empty texts and seconds."""
    predictor = Predictor.load(job.bundle, job.device, job.variant, job.threads, job.batch_size)
    bundle = predictor.engine.bundle
    check_fit(bundle, job.columns)
    schemas = [input_schema(src, job.columns) for src, _ in pending]  # every input checked before any work
    totals = {"rows": 0, "empty_text": 0}
    started = time.perf_counter()
    with _progress(job.progress, sum(estimate_rows(src) for src, _ in pending)) as advance:
        sink: Sink | None = None
        try:
            for (source, target), in_schema in zip(pending, schemas, strict=True):
                schema = output_schema(bundle, job.columns, in_schema)  # this input's columns, cast at write
                if sink is None:
                    sink = Sink(target, job.output_format, schema)
                for chunk in read_chunks(source, job.columns, job.chunk_rows):
                    out = score_table(predictor, chunk, job.columns, schema)
                    _write(sink, out, source)
                    totals["rows"] += out.num_rows
                    totals["empty_text"] += sum(out.column(job.columns.prefix + "empty_text").to_pylist())
                    advance(out.num_rows)
                if not job.single_file:
                    sink.commit()
                    logger.info("scored %s -> %s (%d rows)", source, target, sink.rows)
                    sink = None
            if sink is not None:
                sink.commit()
        except BaseException:
            if sink is not None:
                sink.abort()
            raise
    return {**totals, "seconds": time.perf_counter() - started, "variant": predictor.engine.variant}


def _write(sink: Sink, table: Any, source: Path) -> None:
    """Append `table`, cast to the sink's schema (a single output file may gather inputs with other column types)."""
    import pyarrow as pa

    if table.schema != sink.schema:
        try:
            table = table.cast(sink.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise DataError(
                f"--input {source}: its columns do not match the first input's ({exc}); score into a folder instead"
            ) from exc
    sink.write(table)


class _progress:
    """A rich progress bar on stderr with rows, rows/s and ETA; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda rows: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._bar.start()
        task = self._bar.add_task("score", total=self.total or None, rate="")
        started = time.perf_counter()
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            rate = done / max(time.perf_counter() - started, 1e-9)
            self._bar.update(task, advance=rows, rate=f"{rate:,.0f} rows/s")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

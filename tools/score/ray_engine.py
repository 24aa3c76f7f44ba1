"""The Ray engine: the same job on Ray Data. Ray's readers read each input, `map_batches` runs a pool of actors that
each load the bundle once (checksums verified) with pinned onnxruntime threads, and Ray's writers write the output.

Each input is one Ray Data job whose output is a folder of part files, staged under a hidden name and renamed into
place when complete, so `--resume` skips finished inputs as the embedded engine does. Input paths must be readable
by every node (a shared or object-store path) on a real cluster; locally, `ray.init()` starts a one-machine cluster.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from baton._io import replace_dir
from baton._optional import require
from baton._ray import connect
from baton.errors import ConfigError
from baton.serving.bundle import load_bundle
from baton.tools.score.inputs import csv_convert_options, input_format, input_schema
from baton.tools.score.job import Columns, ScoreJob
from baton.tools.score.rows import check_fit, output_schema, score_table

__all__ = ["BundleScorer", "run_ray"]

logger = logging.getLogger(__name__)


class BundleScorer:
    """A Ray Data actor: loads the bundle once (verifying every checksum) and scores pyarrow batches."""

    def __init__(self, bundle_dir: str, columns: Columns, device: str, variant: str | None, threads: int) -> None:
        from baton.serving.predictor import Predictor

        self.predictor = Predictor.load(bundle_dir, device, variant, threads)
        self.columns = columns
        self.schema: Any = None

    def __call__(self, batch: Any) -> Any:
        if self.schema is None:
            self.schema = output_schema(self.predictor.engine.bundle, self.columns, batch.schema)
        return score_table(self.predictor, batch, self.columns, self.schema)


# Ray Data's own tasks (listing files, reading, writing) each reserve one CPU, and the actors reserve one CPU per
# onnxruntime thread. If the actors took every CPU, the listing task would wait forever (measured: a 2-CPU cluster
# with one 2-thread actor hung at "ListFiles 0/1, 3/2 CPU"). So one CPU is always left to Ray Data: a local cluster
# starts with one logical CPU beyond the cores (those tasks are light next to the model), and on a joined cluster the
# actors get at most its CPUs less one.
_RAY_DATA_CPUS = 1


def _read(ray: Any, source: Path, columns: Columns) -> Any:
    fmt = input_format(source)
    if fmt == "parquet":
        return ray.data.read_parquet(str(source))
    if fmt == "csv":
        return ray.data.read_csv(str(source), convert_options=csv_convert_options(columns))
    return ray.data.read_json(str(source))  # pyarrow.json, as the embedded reader


def _plan_threads(ray: Any, job: ScoreJob) -> int:
    """Intra-op threads per actor: --threads, else the actors' CPUs shared among them. Refuses a pool the cluster
    cannot place beside Ray Data's own tasks, which Ray would otherwise wait on forever."""
    cpus = int(ray.cluster_resources().get("CPU", 1)) - _RAY_DATA_CPUS
    threads = job.threads or max(1, cpus // job.actors)
    if job.actors * threads > cpus:
        raise ConfigError(
            f"--actors {job.actors} x {threads} thread(s) needs {job.actors * threads} CPUs; the Ray cluster has "
            f"{cpus} beside the {_RAY_DATA_CPUS} kept for reading and writing: lower --actors or --threads"
        )
    return threads


def _count(folder: Path, fmt: str, column: str) -> tuple[int, int]:
    """(rows, empty texts) of a written output folder; `column` is the empty-text flag's name."""
    import pyarrow.dataset as pads

    table = pads.dataset(str(folder), format="parquet" if fmt == "parquet" else "json").to_table(columns=[column])
    return table.num_rows, int(sum(table.column(column).to_pylist()))


def run_ray(job: ScoreJob, pending: list[tuple[Path, Path]]) -> dict[str, Any]:
    """Score `pending` (input, output folder) pairs on Ray Data; returns rows, empty texts and seconds."""
    ray = require("ray")
    require("ray.data")
    bundle = load_bundle(job.bundle)  # verified here once; every actor verifies its own copy again
    check_fit(bundle, job.columns)
    schemas = [input_schema(source, job.columns) for source, _ in pending]
    for schema in schemas:
        output_schema(bundle, job.columns, schema)  # a column clash fails here, before Ray starts
    started_ray = connect(job.address, num_cpus=(os.cpu_count() or 1) + _RAY_DATA_CPUS)
    totals = {"rows": 0, "empty_text": 0}
    started = time.perf_counter()
    try:
        threads = _plan_threads(ray, job)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # outputs keep the input's row order
        for source, target in pending:
            staged = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
            # Blocks of `chunk_rows` rows, so that every actor gets work even when the input is one big block.
            blocks = _read(ray, source, job.columns).repartition(target_num_rows_per_block=job.chunk_rows)
            scored = blocks.map_batches(
                BundleScorer,
                fn_constructor_kwargs={
                    "bundle_dir": str(Path(job.bundle).resolve()),
                    "columns": job.columns,
                    "device": job.device,
                    "variant": job.variant,
                    "threads": threads,
                },
                batch_format="pyarrow",
                batch_size=job.chunk_rows,
                compute=ray.data.ActorPoolStrategy(size=job.actors),
                num_cpus=threads,
            )
            try:
                if job.output_format == "parquet":
                    scored.write_parquet(str(staged))
                else:
                    scored.write_json(str(staged))
                rows, empty = _count(staged, job.output_format, job.columns.prefix + "empty_text")
                replace_dir(staged, target)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
            totals["rows"] += rows
            totals["empty_text"] += empty
            logger.info("scored %s -> %s (%d rows, %d actor(s))", source, target, rows, job.actors)
    finally:
        if started_ray:
            ray.shutdown()
    return {**totals, "seconds": time.perf_counter() - started, "actors": job.actors, "threads_per_actor": threads}

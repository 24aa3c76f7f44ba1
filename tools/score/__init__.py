"""`baton score`: batch inference over files, embedded (one in-process Predictor) or on Ray Data.

`plan_job` turns the command's flags into a validated `ScoreJob` (inputs, the output each becomes, what exists);
`run_score` skips finished outputs when resuming, runs the engine, and writes `_score.json` beside folder outputs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from baton._io import write_json_atomic
from baton.errors import ConfigError
from baton.tools.score.inputs import plan_outputs, resolve_inputs
from baton.tools.score.job import Columns, ScoreJob

__all__ = ["Columns", "ScoreJob", "plan_job", "run_score"]

logger = logging.getLogger(__name__)


def plan_job(bundle: str | Path, input_spec: str, output: Path, output_format: str | None, **options: Any) -> ScoreJob:
    """A `ScoreJob` for `--input` and `--output`; `options` are `ScoreJob`'s other fields."""
    engine = options.get("engine", "embedded")
    inputs = resolve_inputs(input_spec)
    planned, fmt, single = plan_outputs(
        inputs, output, output_format, engine, options.get("resume", False), options.get("overwrite", False)
    )
    try:
        return ScoreJob(
            bundle=Path(bundle), planned=tuple(planned), output=output, output_format=fmt, single_file=single, **options
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def run_score(job: ScoreJob) -> dict[str, Any]:
    """Run `job`; returns a summary (inputs scored and skipped, rows, empty texts, rows/s)."""
    pending = [(s, t) for s, t in job.planned if not (job.resume and t.exists())]
    skipped = len(job.planned) - len(pending)
    if skipped:
        logger.info("--resume: %d of %d input(s) already scored, skipped", skipped, len(job.planned))
    summary: dict[str, Any] = {"engine": job.engine, "inputs": len(job.planned), "skipped": skipped, "rows": 0}
    if pending:
        if job.engine == "ray":
            from baton.tools.score.ray_engine import run_ray

            result = run_ray(job, pending)
        else:
            from baton.tools.score.embedded import run_embedded

            result = run_embedded(job, pending)
        summary.update(result)
        summary["rows_per_s"] = round(result["rows"] / max(result["seconds"], 1e-9), 1)
        summary["seconds"] = round(result["seconds"], 3)
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if not job.single_file:
        summary["outputs"] = [str(t.relative_to(job.output)) for _, t in job.planned]
        write_json_atomic(job.output / "_score.json", summary)
    return summary

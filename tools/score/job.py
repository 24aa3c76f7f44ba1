"""What one `baton score` job reads, writes and runs on: a frozen, validated `ScoreJob`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENGINES", "FORMATS", "Columns", "ScoreJob"]

ENGINES = ("embedded", "ray")
PREFIX = "pred_"  # of the prediction columns when the input's are kept
FORMATS = ("parquet", "jsonl")


@dataclass(frozen=True, kw_only=True)
class Columns:
    """Which input columns are read and carried, and which prediction columns are added.

    Added columns. Classification: `label`, `score` (the best label's probability), `labels` (multi-label: every
    label at or above the bundle's threshold), and with `all_scores` (`--scores`) `scores`, one field per label.
    Entities: `entities` (a list of {label, text, start, end, score}, offsets into the text). Both: `truncated`, and
    `empty_text` (true for a null or blank text, whose prediction columns are then null or empty).

    With `keep` (`--keep-columns`) every added column is named with `PREFIX` (`pred_label`, `pred_score`, ...), so
    a labelled file's gold `label` sits beside the prediction.
    """

    text: str = "text"
    text_pair: str | None = None
    id: str | None = None
    keep: bool = False  # carry every input column, not only the id
    all_scores: bool = False
    aggregation: str | None = None
    long_text: str | None = None  # classifiers: truncate or chunk a text past the window (default: the bundle's)
    chunk_combine: str | None = None

    @property
    def prefix(self) -> str:
        """Of every added column's name."""
        return PREFIX if self.keep else ""

    def __post_init__(self) -> None:
        named = [c for c in (self.text, self.text_pair, self.id) if c is not None]
        if any(not c for c in named):
            raise ValueError("column names must not be empty")
        if len(set(named)) != len(named):
            raise ValueError(f"--text-column, --text-pair-column and --id-column must differ (got {named})")


@dataclass(frozen=True, kw_only=True)
class ScoreJob:
    """A planned job: input files in order, each with the output it becomes (`planned`), and how to run them.

    `single_file`: every input goes to the one output file `output`; otherwise `output` is a folder holding one
    output per input (a file, or with `engine="ray"` a folder of Ray's part files), named after the input."""

    bundle: Path
    planned: tuple[tuple[Path, Path], ...]
    output: Path
    output_format: str
    single_file: bool
    columns: Columns
    engine: str = "embedded"
    address: str | None = None
    actors: int = 1
    threads: int | None = None
    chunk_rows: int = 4096
    batch_size: int = 16  # measured faster than 32 on SST-2 (docs/benchmarks.md, "Batch scoring")
    device: str = "auto"
    variant: str | None = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.output_format not in FORMATS:
            raise ValueError(f"output format must be one of {', '.join(FORMATS)}, not {self.output_format!r}")
        if not self.planned:
            raise ValueError("a job needs at least one input file")
        if self.actors < 1 or self.chunk_rows < 1 or self.batch_size < 1:
            raise ValueError("actors, chunk rows and batch size must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be >= 1")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite contradict each other: choose one")
        if self.address is not None and self.engine != "ray":
            raise ValueError("--address is for --engine ray")

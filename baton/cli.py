"""The `baton` command line. Heavy imports happen inside commands, so `--help` and `serve` stay light."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from baton.errors import BatonError

__all__ = ["app", "main"]

app = typer.Typer(
    name="baton",
    help="Fine-tune a transformer, export it to ONNX, serve it fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("httpx", "urllib3", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


Opt = typer.Option


@app.command()
def train(
    config: Annotated[Path | None, Opt(help="YAML file with the same keys as these flags (flags win).")] = None,
    model: Annotated[str | None, Opt(help="Base model: 'minilm' (offline default), a local dir, or a Hub id.")] = None,
    train_file: Annotated[str | None, Opt(help="Training data: .csv/.tsv/.json/.jsonl/.parquet.")] = None,
    validation_file: Annotated[str | None, Opt(help="Validation data (default: stratified 10% of train).")] = None,
    test_file: Annotated[str | None, Opt(help="Test data, scored once at the end.")] = None,
    dataset: Annotated[str | None, Opt(help="A `datasets` Hub name instead of files (online only).")] = None,
    dataset_config: Annotated[str | None, Opt(help="Config name of --dataset.")] = None,
    text_column: Annotated[str | None, Opt(help="Text column [text].")] = None,
    text_pair_column: Annotated[str | None, Opt(help="Second text column for sentence-pair tasks.")] = None,
    label_column: Annotated[str | None, Opt(help="Label column [label]; a column of lists means multi-label.")] = None,
    output_dir: Annotated[str | None, Opt(help="Run directory [runs/latest].")] = None,
    epochs: Annotated[float | None, Opt(help="Epochs [3].")] = None,
    batch_size: Annotated[int | None, Opt(help="Per-device train batch size [32].")] = None,
    learning_rate: Annotated[float | None, Opt(help="Peak learning rate [1e-4].")] = None,
    max_length: Annotated[int | None, Opt(help="Max tokens per example [128].")] = None,
    seed: Annotated[int | None, Opt(help="Random seed [42].")] = None,
    patience: Annotated[int | None, Opt(help="Early-stopping patience in evaluations; 0 disables [2].")] = None,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many training rows (quick runs).")] = None,
    threshold: Annotated[float | None, Opt(help="Multi-label decision threshold [0.5].")] = None,
    bf16: Annotated[str | None, Opt(help="bf16 autocast: auto (when the hardware has it), on, off [auto].")] = None,
    group_by_length: Annotated[bool | None, Opt("--group-by-length/--no-group-by-length")] = None,
    baseline: Annotated[bool | None, Opt("--baseline/--no-baseline", help="Also score the untrained head.")] = None,
    resume: Annotated[bool | None, Opt("--resume", help="Continue from the last checkpoint in --output-dir.")] = None,
    overwrite: Annotated[bool | None, Opt("--overwrite", help="Replace a finished run in --output-dir.")] = None,
) -> None:
    """Fine-tune a Hugging Face encoder for text classification."""
    overrides = {k: v for k, v in locals().items() if k != "config"}
    from baton.training import load_train_config, run_training

    cfg = load_train_config(config, overrides)
    result = run_training(cfg)
    typer.echo(_format_train_summary(result.output_dir, result.metrics))


def _format_train_summary(out: Path, metrics: dict[str, Any]) -> str:
    lines = [f"run written to {out}"]
    for split in ("validation", "test"):
        if split in metrics:
            m = metrics[split]
            base = metrics.get("baseline", {}).get(split)
            before = f" (untrained head: accuracy {base['accuracy']:.4f})" if base else ""
            f1 = m.get("micro_f1", m["macro_f1"])
            f1_name = "micro_f1" if "micro_f1" in m else "macro_f1"
            lines.append(f"{split}: accuracy {m['accuracy']:.4f}, {f1_name} {f1:.4f}{before}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns user errors into one line and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="baton")
    except BatonError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)

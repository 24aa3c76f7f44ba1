"""The `baton` application, its global options, and the boundary where errors become one line and an exit code."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Annotated

import typer

from baton._optional import missing_extra_message
from baton.cli._options import apply_dialect, rename_aliases
from baton.errors import EXIT_USAGE, BatonError

__all__ = ["app", "bench_app", "main"]

app = typer.Typer(
    name="baton",
    help="Fine-tune a transformer, export it to ONNX, serve it fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


bench_app = typer.Typer(
    help="Latency benchmarks: in-process backends, a gRPC server, and their ratio.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("httpx", "urllib3", "filelock", "fsspec", "fusion_base", "onnx_model", "onnx_model_bert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns user errors into one line and a non-zero exit."""
    args, warnings = rename_aliases(sys.argv[1:] if argv is None else argv)
    for warning in warnings:
        typer.echo(warning, err=True)
    debug = "--debug" in args
    words = [a for a in args if not a.startswith("-")]
    chosen = " ".join(words[:2]) if words[:1] == ["bench"] else (words[0] if words else "")
    group = apply_dialect(typer.main.get_command(app), chosen)  # only the command that runs: its configs alone
    try:
        group.main(args=args, prog_name="baton")
    except BatonError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:  # an optional extra that is not installed (e.g. torch for `baton train`)
        command = next((a for a in args if not a.startswith("-")), None)
        message = missing_extra_message(exc, command)
        if message is None:
            raise
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)

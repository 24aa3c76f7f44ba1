"""The one entry shape of every benchmark in this folder.

    python benchmarks/NAME.py ARGS [--json PATH] [-- PASSTHROUGH...]

Each benchmark module defines `configure(parser)` (its arguments) and `measure(args) -> dict` (its results; it may
print progress and tables as it goes), and ends with `run(__name__, __doc__, configure, measure)`. The harness
parses the arguments (anything after a bare `--` is left in `args.passthrough`: flags for a server it starts),
measures, and writes `{"benchmark", "argv", "commit", "environment", "results"}` to `--json` (default
`bench-results/NAME.json`) atomically.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run"]

_REPO = Path(__file__).resolve().parent.parent


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_REPO, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def run(
    module: str,
    doc: str | None,
    configure: Callable[[argparse.ArgumentParser], None],
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    argv: list[str] | None = None,
) -> None:
    """Parse, measure and write the record; does nothing when the module is imported rather than run."""
    if module != "__main__":
        return
    from baton._io import write_json_atomic
    from baton.tools.bench.accounting import environment

    name = Path(sys.argv[0]).stem
    parser = argparse.ArgumentParser(
        prog=f"benchmarks/{name}.py", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    configure(parser)
    parser.add_argument(
        "--json", type=Path, default=_REPO / "bench-results" / f"{name}.json", help="where the record is written"
    )
    args_in = sys.argv[1:] if argv is None else argv
    split = args_in.index("--") if "--" in args_in else len(args_in)
    args = parser.parse_args(args_in[:split])
    args.passthrough = args_in[split + 1 :]
    results = measure(args)
    record = {
        "benchmark": name,
        "argv": args_in,
        "commit": _commit(),
        "environment": environment(),
        "results": results,
    }
    write_json_atomic(args.json, record)
    print(f"wrote {args.json}", flush=True)

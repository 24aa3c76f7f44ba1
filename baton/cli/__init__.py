"""The `baton` command line, one module per command group. Heavy imports happen inside commands, so `--help` and
`serve` stay light.

    _app.py       the application, global options, the error boundary (`main`)
    _options.py   shared options, the one way defaults are shown, hidden aliases of old flag names
    training.py   train, learning-curve, compare, adapt, tune, distill, models
    exporting.py  export
    inference.py  predict, evaluate, score
    serving.py    serve, health
    bench.py      bench inprocess|grpc|serve, demo
"""

from baton.cli import bench, exporting, inference, serving, training  # noqa: F401  (each registers its commands)
from baton.cli._app import app, main

__all__ = ["app", "main"]

"""`baton demo`: the whole path on the project's own demo data, with the figures a new user wants to see."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from baton.errors import BatonError

__all__ = ["DEMO_TEXTS", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_TEXTS = [
    "Absolutely loved it, the battery lasts for days.",
    "Not worth the money, it broke after a week.",
    "The plot was slow at first, but the ending made up for it.",
    "not bad at all, would buy again",
]


def _examples_dir() -> Path:
    here = Path(__file__).resolve().parent.parent / "examples" / "reviews"
    if not (here / "train.jsonl").is_file():
        raise BatonError(f"demo data not found at {here}: run the demo from a clone of the baton repository")
    return here


def run_demo(workdir: Path, echo: Callable[[str], None], serve: bool = True) -> None:
    from baton.cli import _format_bundle, _format_train_summary
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training

    data = _examples_dir()
    run_dir, bundle_dir = workdir / "runs" / "demo", workdir / "bundles" / "demo"
    echo(f"== 1/3 train: fine-tune MiniLM on {data} (600 train / 150 validation / 150 test)")
    result = run_training(
        TrainConfig(
            train_file=str(data / "train.jsonl"),
            validation_file=str(data / "validation.jsonl"),
            test_file=str(data / "test.jsonl"),
            output_dir=str(run_dir),
            overwrite=True,
        )
    )
    echo(_format_train_summary(result.output_dir, result.metrics))
    echo(f"report: {run_dir / 'report.md'}")
    echo("== 2/3 export: ONNX (Optimum), O2, int8, parity gates")
    export_bundle(ExportConfig(run_dir=str(run_dir), output=str(bundle_dir), overwrite=True))
    echo(_format_bundle(bundle_dir))
    echo("== 3/3 predict: embedded Predictor (onnxruntime + tokenizers, no torch)")
    predictor = Predictor.load(bundle_dir, device="cpu")
    for text, p in zip(DEMO_TEXTS, predictor.predict(DEMO_TEXTS), strict=True):
        echo(f"  {p.label:<9} {p.score:.3f}  {text}")

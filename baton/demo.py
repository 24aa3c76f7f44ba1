"""`baton demo`: the whole path on the project's own demo data, with the figures a new user wants to see."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from baton.errors import BatonError

__all__ = ["DEMO_TEXTS", "NER_TEXTS", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_TEXTS = [
    "Absolutely loved it, the battery lasts for days.",
    "Not worth the money, it broke after a week.",
    "The plot was slow at first, but the ending made up for it.",
    "not bad at all, would buy again",
]


NER_TEXTS = [
    "Maria Okafor flew from Lisbon to Kyoto for Acme Robotics.",
    "Café talks: José  Núñez met the Riverside Council in Tbilisi 👋",
]


def _examples_dir(name: str = "reviews") -> Path:
    here = Path(__file__).resolve().parent.parent / "examples" / name
    if not (here / "train.jsonl").is_file():
        raise BatonError(f"demo data not found at {here}: run the demo from a clone of the baton repository")
    return here


def run_demo(workdir: Path, echo: Callable[[str], None], serve: bool = True) -> None:
    from baton._format import format_bundle, format_train_summary
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training

    data = _examples_dir()
    run_dir, bundle_dir = workdir / "runs" / "demo", workdir / "bundles" / "demo"
    echo(f"== 1/6 train: fine-tune MiniLM on {data} (600 train / 150 validation / 150 test)")
    result = run_training(
        TrainConfig(
            train_file=str(data / "train.jsonl"),
            validation_file=str(data / "validation.jsonl"),
            test_file=str(data / "test.jsonl"),
            output_dir=str(run_dir),
            overwrite=True,
        )
    )
    echo(format_train_summary(result.output_dir, result.metrics))
    echo(f"report: {run_dir / 'report.md'}")
    echo("== 2/6 export: ONNX (Optimum), O2, int8, parity gates")
    export_bundle(ExportConfig(run_dir=str(run_dir), output=str(bundle_dir), overwrite=True))
    echo(format_bundle(bundle_dir))
    echo("== 3/6 predict: embedded Predictor (onnxruntime + tokenizers, no torch)")
    predictor = Predictor.load(bundle_dir, device="cpu")
    for text, p in zip(DEMO_TEXTS, predictor.predict(DEMO_TEXTS), strict=True):
        echo(f"  {p.label:<9} {p.score:.3f}  {text}")
    if serve:
        _serve_and_classify(bundle_dir, echo)
        _bench_summary(bundle_dir, data / "test.jsonl", echo)
    _entity_demo(workdir, echo, serve)


def _entity_demo(workdir: Path, echo: Callable[[str], None], serve: bool) -> None:
    from baton._format import format_bundle, format_train_summary
    from baton.export import ExportConfig, export_bundle
    from baton.serving import Predictor
    from baton.training import TrainConfig, run_training

    data = _examples_dir("ner")
    run_dir, bundle_dir = workdir / "runs" / "demo-ner", workdir / "bundles" / "demo-ner"
    echo(f"== 6/6 entities: the same path for entity recognition, on {data} (400 train sentences; CoNLL validation)")
    result = run_training(
        TrainConfig(
            train_file=str(data / "train.jsonl"),
            validation_file=str(data / "validation.conll"),
            output_dir=str(run_dir),
            overwrite=True,
        )
    )
    echo(format_train_summary(result.output_dir, result.metrics))
    export_bundle(ExportConfig(run_dir=str(run_dir), output=str(bundle_dir), overwrite=True))
    echo(format_bundle(bundle_dir))
    predictor = Predictor.load(bundle_dir, device="cpu")
    for text, answer in zip(NER_TEXTS, predictor.predict(NER_TEXTS), strict=True):
        found = ", ".join(f"{e.label} '{e.text}' [{e.start}:{e.end}] {e.score:.2f}" for e in answer.entities)
        echo(f"  {text}\n    -> {found or 'no entities'}")
    if serve:
        _serve_and_recognize(bundle_dir, echo)


def _serve_and_recognize(bundle_dir: Path, echo: Callable[[str], None]) -> None:
    from baton.serving.client import Client

    with _demo_server(bundle_dir, echo) as target, Client(target) as client:
        info = client.model_info()
        echo(f"  gRPC EntityRecognizer.Recognize ({info.task}, aggregation {info.aggregation}):")
        for text, r in zip(NER_TEXTS, client.recognize(NER_TEXTS), strict=True):
            echo(f"    {[(label, span) for label, span, *_ in r.entities]}  <- {text}")


@contextlib.contextmanager
def _demo_server(bundle_dir: Path, echo: Callable[[str], None]) -> Iterator[str]:
    """`baton serve` on free ports (a taken 8000 or 9464 must not fail a demo); yields its gRPC address."""
    import shlex

    from baton.tools.bench.loadgen import started_server

    with started_server(bundle_dir) as server:
        echo(f"  `baton {shlex.join(server.cmd[server.cmd.index('serve') :])}`")
        echo(f"  {server.banner}")
        yield server.target
        server.process.terminate()
        echo(f"  SIGTERM: server drained and exited with code {server.process.wait(30)}")


def _serve_and_classify(bundle_dir: Path, echo: Callable[[str], None]) -> None:
    from baton.serving.client import Client

    echo("== 4/6 serve: start a server and classify through the gRPC client")
    with _demo_server(bundle_dir, echo) as target, Client(target) as client:
        info = client.model_info()
        echo(f"  model {info.name}: variant {info.variant} on {info.provider}, labels {', '.join(info.labels)}")
        response = client.classify_response(DEMO_TEXTS)
        for text, r in zip(DEMO_TEXTS, response.results, strict=True):
            echo(f"  {r.label:<9} {r.score:.3f}  {text}")
        t = response.timings
        echo(
            f"  timings: queue {t.queue_us} us, tokenize {t.tokenize_us} us, inference {t.inference_us} us, "
            f"total {t.total_us} us"
        )


def _bench_summary(bundle_dir: Path, data: Path, echo: Callable[[str], None]) -> None:
    from baton.tools.bench import BenchOptions, bench_serve, load_texts, markdown

    echo(
        "== 5/6 bench: server under 1/8/32 concurrent clients vs the in-process ceiling (short run; see "
        "docs/benchmarks.md for the full one)"
    )
    options = BenchOptions(duration_s=2.0, warmup_s=0.5, samples=150)
    report = bench_serve(bundle_dir, load_texts(str(data), samples=150), [1, 8, 32], 1, "baton", options)
    echo(markdown(report))

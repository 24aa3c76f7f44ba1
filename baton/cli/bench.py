"""`baton bench` (in-process, gRPC, a started server against its ceiling) and `baton demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from baton.cli._app import app, bench_app
from baton.cli._options import Opt, _ints
from baton.errors import BatonError

__all__ = ["bench_grpc_cmd", "bench_inprocess_cmd", "bench_serve_cmd", "demo"]


def _bench_options(duration: float, warmup: float, seed: int, samples: int, quick: bool) -> Any:
    from baton.tools.bench import BenchOptions

    try:
        return BenchOptions(duration_s=duration, warmup_s=warmup, seed=seed, samples=samples, quick=quick)
    except ValueError as exc:
        raise BatonError(str(exc)) from exc


def _bench_finish(report: dict[str, Any], output: Path | None) -> None:
    from baton.tools.bench import check_counts, markdown, save

    check_counts(report)
    path = save(report, output)
    typer.echo(markdown(report))
    typer.echo(f"\nresults: {path}")


_DATA = Opt("--input", help="Texts: .jsonl (with --text-column), .txt (one per line), .csv/.parquet.")

_DURATION = Opt(help="Seconds measured per level.")

_PAIR = Opt(help="Second text's column, for sentence-pair bundles (.jsonl/.csv/.parquet).")

_BENCH_DEVICE = Opt(help="cpu or cuda (onnxruntime's CUDA provider: the gpu extra).")


@bench_app.command("inprocess")
def bench_inprocess_cmd(
    target: Annotated[Path, typer.Argument(help="Bundle, or run directory (adds the torch backend).")],
    data: Annotated[str, _DATA],
    backend: Annotated[
        list[str] | None,
        Opt(help="torch, onnx-fp32, onnx-int8; on cuda also onnx-fp16, torch-fp16 (default: all available)."),
    ] = None,
    batch_sizes: Annotated[str, Opt(help="Comma-separated batch sizes.")] = "1,8,32",
    synthetic: Annotated[
        str | None, Opt(help="Synthetic token lengths instead of data buckets, e.g. 16,64,128,256.")
    ] = None,
    text_column: Annotated[str, Opt(help="Text column of a .jsonl, .csv or .parquet --input.")] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    threads: Annotated[int | None, Opt(help="Intra-op threads.")] = None,
    device: Annotated[str, _BENCH_DEVICE] = "cpu",
    run: Annotated[Path | None, Opt(help="Run directory for the torch backends, when the bundle is elsewhere.")] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    samples: Annotated[int, Opt(help="Texts sampled from --data (seeded).")] = 512,
    seed: Annotated[int, Opt(help="Seed of the text sample.")] = 0,
    quick: Annotated[bool, Opt(help="Tiny durations (tests, smoke runs).")] = False,
    output: Annotated[
        Path | None, Opt("--output", "-o", help="JSON file (default: bench-results/inprocess-<time>.json).")
    ] = None,
) -> None:
    """Throughput and latency of each backend through the Predictor's code path, per batch size and length."""
    from baton.tools.bench import bench_inprocess, load_texts

    options = _bench_options(duration, 0, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    report = bench_inprocess(
        target,
        texts,
        backend,
        _ints(batch_sizes, "--batch-sizes"),
        options,
        _ints(synthetic, "--synthetic") if synthetic else None,
        threads,
        device,
        run,
    )
    _bench_finish(report, output)


@bench_app.command("grpc")
def bench_grpc_cmd(
    data: Annotated[str, _DATA],
    target: Annotated[str, Opt("--server", help="HOST:PORT of a running server.")] = "127.0.0.1:50051",
    concurrency: Annotated[str, Opt(help="Closed-loop client counts.")] = "1,8,32,64",
    rate: Annotated[str | None, Opt(help="Open-loop request rates (req/s), comma-separated.")] = None,
    texts_per_request: Annotated[int, Opt(help="Texts in each request.")] = 1,
    protocol: Annotated[
        str,
        Opt(help="baton, kserve (gRPC: domain API, Open Inference Protocol), http, http-kserve (the same over HTTP)."),
    ] = "baton",
    model_name: Annotated[str | None, Opt(help="Model name: kserve's, or one model of a repository server.")] = None,
    token: Annotated[str | None, Opt(help="Bearer token.")] = None,
    metrics_url: Annotated[str | None, Opt(help="Server metrics, e.g. http://127.0.0.1:9464/metrics.")] = None,
    text_column: Annotated[str, Opt(help="Text column of a .jsonl, .csv or .parquet --input.")] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    warmup: Annotated[float, Opt(help="Warm-up seconds per level.")] = 2.0,
    samples: Annotated[int, Opt(help="Texts sampled from --input (seeded).")] = 512,
    seed: Annotated[int, Opt(help="Seed of the text sample.")] = 0,
    echo: Annotated[bool, Opt(help="Also measure the load generator's ceiling on an echo server.")] = True,
    quick: Annotated[bool, Opt(help="Tiny durations (tests, smoke runs).")] = False,
    output: Annotated[
        Path | None, Opt("--output", "-o", help="JSON file (default: bench-results/<mode>-<time>.json).")
    ] = None,
) -> None:
    """Load a running server: closed loop per concurrency level, optional open loop per rate."""
    from baton.tools.bench import Load, bench_grpc, load_texts

    options = _bench_options(duration, warmup, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    try:
        rates = [float(x) for x in rate.split(",")] if rate else []
    except ValueError as exc:
        raise BatonError(f"--rate: expected comma-separated numbers (got {rate!r})") from exc
    load = Load(
        target=target,
        texts=texts,
        concurrency=_ints(concurrency, "--concurrency"),
        rates=rates,
        per_request=texts_per_request,
        protocol=protocol,
        model_name=model_name,
        token=token,
        metrics_url=metrics_url,
    )
    report = bench_grpc(load, options, echo=echo)
    _bench_finish(report, output)


@bench_app.command("serve")
def bench_serve_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, or a model repository (with --model-name).")],
    data: Annotated[str, _DATA],
    concurrency: Annotated[str, Opt(help="Closed-loop client counts, comma-separated.")] = "1,8,32,64",
    texts_per_request: Annotated[int, Opt(help="Texts in each request.")] = 1,
    protocol: Annotated[
        str,
        Opt(help="baton, kserve (gRPC: domain API, Open Inference Protocol), http, http-kserve (the same over HTTP)."),
    ] = "baton",
    text_column: Annotated[str, Opt(help="Text column of a .jsonl, .csv or .parquet --input.")] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    device: Annotated[str, _BENCH_DEVICE] = "cpu",
    variant: Annotated[
        str | None, Opt(help="fp32, int8, fp16 (default: the device's preferred variant of the bundle).")
    ] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    warmup: Annotated[float, Opt(help="Warm-up seconds per level.")] = 2.0,
    samples: Annotated[int, Opt(help="Texts sampled from --input (seeded).")] = 512,
    seed: Annotated[int, Opt(help="Seed of the text sample.")] = 0,
    quick: Annotated[bool, Opt(help="Tiny durations (tests, smoke runs).")] = False,
    model_name: Annotated[
        str | None, Opt(help="A model repository: the model to load (its highest version); the others serve beside.")
    ] = None,
    output: Annotated[
        Path | None, Opt("--output", "-o", help="JSON file (default: bench-results/<mode>-<time>.json).")
    ] = None,
) -> None:
    """Start `baton serve` on a free port, load it, measure the in-process ceiling, report server / ceiling.

    The server and the ceiling run the same variant on the same device."""
    from baton.tools.bench import bench_serve, load_texts

    options = _bench_options(duration, warmup, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    report = bench_serve(
        bundle,
        texts,
        _ints(concurrency, "--concurrency"),
        texts_per_request,
        protocol,
        options,
        device=device,
        variant=variant,
        model=model_name,
    )
    _bench_finish(report, output)


@app.command()
def demo(
    workdir: Annotated[Path, Opt(help="Where runs/ and bundles/ are written.")] = Path("."),
) -> None:
    """Train, export and predict on the shipped demo reviews."""
    from baton.demo import run_demo

    run_demo(workdir, typer.echo)

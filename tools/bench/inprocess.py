"""In-process runs: backends timed on length buckets, and the sorted in-process ceiling."""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.tools.bench.accounting import percentiles
from baton.tools.bench.options import BenchOptions, check_device, pairs_of

__all__ = ["bench_inprocess", "inprocess_ceiling", "progress_bar"]

logger = logging.getLogger(__name__)


def progress_bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


# ---- in-process ----------------------------------------------------------------------------------------------


def _buckets(texts: list[str]) -> dict[str, list[str]]:
    ordered = sorted(texts, key=len)
    third = max(1, len(ordered) // 3)
    return {"short": ordered[:third], "medium": ordered[third : 2 * third], "long": ordered[2 * third :], "all": texts}


def _synthetic(lengths: Sequence[int], count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    words = ["the", "film", "was", "good", "bad", "great", "awful", "plot", "acting", "slow", "quick", "story"]
    return {
        f"{n}tok": [" ".join(rng.choice(words) for _ in range(max(1, n - 2))) for _ in range(count)] for n in lengths
    }


def _time_batches(
    call: Callable[[list[str]], Any], texts: list[str], batch: int, duration: float, workers: int = 1
) -> dict[str, Any]:
    """Run the sorted batches of `texts` through `call`, in turn, for `duration`; per-batch latency and texts/s.
    With `workers` > 1, that many threads take the next batch each, side by side, as the server's workers do."""
    import itertools
    import threading

    ordered = sorted(texts, key=len)
    batches = [ordered[i : i + batch] for i in range(0, len(ordered), batch)]
    call(batches[0])
    turns = itertools.count()  # next() is atomic under the GIL: each batch goes to one worker
    latencies: list[list[float]] = [[] for _ in range(workers)]
    done = [0] * workers
    start = time.perf_counter()

    def work(k: int) -> None:
        while time.perf_counter() - start < duration or not latencies[k]:
            b = batches[next(turns) % len(batches)]
            t0 = time.perf_counter()
            call(b)
            latencies[k].append(time.perf_counter() - t0)
            done[k] += len(b)

    if workers == 1:
        work(0)
    else:
        threads = [threading.Thread(target=work, args=(k,), name=f"bench-{k}") for k in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - start
    merged = [t for per in latencies for t in per]
    return {"texts_per_s": sum(done) / elapsed, "batches": len(merged), **percentiles(merged)}


def _encode_and_run(engine: Any, wide: bool = True) -> Callable[[list[str]], Any]:
    """The runtime's encoder and one of the engine's sessions, nothing else: what the ceiling times."""

    def call(batch: list[str]) -> Any:
        return engine.run(engine.preprocess(batch, pairs_of(batch)), wide=wide)

    return call


def _torch_backend(run_dir: Path, threads: int | None, device: str, half: bool) -> Callable[[list[str]], Any]:
    """The run's own model in torch: on the CPU in fp32, or on CUDA in fp32 or fp16 (`torch-fp16`, CUDA only)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval().to(device)
    if half:
        model = model.half()
    max_length = json.loads((run_dir / "train_args.json").read_text())["max_length"]

    def call(texts: list[str]) -> Any:
        with torch.inference_mode():
            enc = tok(texts, pairs_of(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            return model(**enc.to(device)).logits.float().softmax(-1).cpu().numpy()  # .cpu() waits for the GPU

    return call


def _backends(bundle: Any, run_dir: Path | None, device: str) -> list[str]:
    """Backends that run on `device`: the bundle's variants (fp16 only on CUDA), and torch where a run is given."""
    onnx = [f"onnx-{v}" for v in sorted(bundle.models) if device == "cuda" or v != "fp16"]
    torch = ["torch", "torch-fp16"] if device == "cuda" else ["torch"]
    return onnx + (torch if run_dir else [])


def _resolve_bundle(path: Path) -> tuple[Path | None, Path]:
    """(run_dir or None, bundle_dir) from a run directory with a bundle inside or beside it, or a bundle."""
    if (path / "bundle.json").is_file():
        return None, path
    for candidate in (path / "bundle", path.parent.parent / "bundles" / path.name):
        if (candidate / "bundle.json").is_file():
            return path, candidate
    raise BatonError(
        f"{path} is neither a bundle nor a run directory with an exported bundle "
        "(run `baton export RUN --output RUN/bundle`)"
    )


def bench_inprocess(
    target: Path,
    texts: list[str],
    backends: Sequence[str] | None,
    batch_sizes: Sequence[int],
    options: BenchOptions,
    synthetic: Sequence[int] | None = None,
    threads: int | None = None,
    device: str = "cpu",
    run: Path | None = None,
) -> dict[str, Any]:
    """`run` names the torch backends' run directory when `target` is a bundle kept elsewhere."""
    from baton.serving.bundle import load_bundle
    from baton.serving.engine import Engine, build_engine

    run_dir, bundle_dir = _resolve_bundle(target)
    if run is not None:
        if not (run / "model").is_dir():
            raise BatonError(f"--run: {run} is not a `baton train` run directory (it has no model/)")
        run_dir = run
    bundle = load_bundle(bundle_dir)
    available = _backends(bundle, run_dir, check_device(device))
    chosen = list(backends or available)
    for name in chosen:
        if name not in available:
            raise BatonError(f"backend '{name}' is not available on {device} (available: {', '.join(available)})")
    groups = _synthetic(synthetic, 64, options.seed) if synthetic else _buckets(texts)
    duration = 0.3 if options.quick else options.duration_s / max(1, len(groups))
    rows: list[dict[str, Any]] = []
    progress = progress_bar(len(chosen) * len(batch_sizes) * len(groups), "in-process")
    for backend in chosen:
        if backend.startswith("torch"):
            assert run_dir is not None
            call = _torch_backend(run_dir, threads, device, half=backend == "torch-fp16")
            tokenize = None
        else:
            engine = build_engine(bundle, device, backend.removeprefix("onnx-"), threads)

            def call(batch: list[str], engine: Engine = engine) -> Any:
                return engine(batch, pairs=pairs_of(batch))

            def tokenize(batch: list[str], engine: Engine = engine) -> Any:
                return engine.preprocess(batch, pairs_of(batch))

        for bs in batch_sizes:
            for group, group_texts in groups.items():
                row = {
                    "backend": backend,
                    "batch_size": bs,
                    "bucket": group,
                    **_time_batches(call, group_texts, bs, duration),
                }
                if tokenize is not None:
                    tok = _time_batches(tokenize, group_texts, bs, min(duration, 0.5))
                    row["tokenize_texts_per_s"] = tok["texts_per_s"]
                rows.append(row)
                progress.update(1)
    progress.close()
    return {
        "mode": "inprocess",
        "device": device,
        "bundle": str(bundle_dir),
        "bundle_sha256": bundle.checksum,
        "results": rows,
    }


def _median_setting(runs: list[dict[str, Any]], **setting: Any) -> dict[str, Any]:
    """One setting of the ceiling's sweep: its median run (latencies included), every run's texts/s, the median."""
    import statistics

    middle = sorted(runs, key=lambda r: r["texts_per_s"])[len(runs) // 2]
    return {
        **middle,
        **setting,
        "texts_per_s_runs": [r["texts_per_s"] for r in runs],
        "texts_per_s": statistics.median(r["texts_per_s"] for r in runs),
    }


def inprocess_ceiling(
    bundle_dir: Path,
    texts: list[str],
    variant: str | None,
    duration: float,
    batch_sizes: Sequence[int] = (1, 8, 16, 32, 64),
    repeats: int = 3,
    device: str = "cpu",
) -> dict[str, Any]:
    """The strict in-process ceiling: the best throughput of the runtime's own encoder and onnxruntime on the same
    texts, sorted by length as a whole, at the best batch size and the best session setting, each figure the median
    of `repeats` timed runs. The settings: one session on every core, intra-op spinning on or off; and, on a CPU
    with 2+ cores, two single-share sessions running batches side by side in two threads, as the server's two
    workers do under load (on 2 cores this beat the best single session by 1.25x: batches of 8 side by side ran
    1366-1394 texts/s, one session at its best, batches of 16, 1095-1113, SST-2 int8 on 512 validation texts;
    docs/decisions.md). Tokenization is included
    (a server must tokenize too); no batcher, no Predictor bookkeeping. Batch 1 on one session also gives the
    in-process latency the 1-client server is compared with. On `device="cuda"` the engine runs on the CUDA
    provider (spinning then only changes the CPU threads that feed it), one session."""
    from baton.serving.bundle import load_bundle
    from baton.serving.engine import build_engine, choose_variant, default_threads, default_workers

    bundle = load_bundle(bundle_dir)
    chosen, _, _ = choose_variant(bundle, device, variant)
    sweep: dict[str, dict[str, Any]] = {}
    per_run = max(0.2, duration / repeats)
    for spin in (True, False):
        call = _encode_and_run(build_engine(bundle, device, chosen, spin=spin))
        for bs in batch_sizes:
            runs = [_time_batches(call, texts, bs, per_run) for _ in range(repeats)]
            sweep[f"{bs}{'' if spin else ' no-spin'}"] = _median_setting(runs, batch_size=bs, spin=spin)
    side_by_side = default_workers(default_threads()) if device == "cpu" else 1
    if side_by_side > 1:
        # The server's own split: two workers, each on its share of the cores; no tokenizer pool (serving/encoder.py).
        engine = build_engine(bundle, device, chosen, workers=side_by_side, tokenizer_pool=False)
        narrow = _encode_and_run(engine, wide=False)
        for bs in batch_sizes:
            runs = [_time_batches(narrow, texts, bs, per_run, side_by_side) for _ in range(repeats)]
            sweep[f"{bs} side by side"] = _median_setting(runs, batch_size=bs, spin=False, side_by_side=side_by_side)
    best = max(sweep, key=lambda k: sweep[k]["texts_per_s"])
    batch1 = [v for v in sweep.values() if v["batch_size"] == 1 and not v.get("side_by_side")]
    return {
        "variant": chosen,
        "device": device,
        "best_batch_size": sweep[best]["batch_size"],
        "best_spin": sweep[best]["spin"],
        "best_setting": best,
        "texts_per_s": sweep[best]["texts_per_s"],
        "batch1_p50_ms": min(v["p50_ms"] for v in batch1) if batch1 else None,
        "how": f"encoder + onnxruntime, whole set sorted by length, best of batch sizes {list(batch_sizes)} x "
        f"(one session on every core, spinning on/off"
        + (f"; {side_by_side} one-share sessions side by side" if side_by_side > 1 else "")
        + f"), median of {repeats} runs",
        "sweep": sweep,
    }

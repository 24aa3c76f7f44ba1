"""baton's HTTP front against Infinity 0.0.78, serving the same int8 ONNX file on the same texts (issue 30).

    python benchmarks/infinity_http.py BUNDLE RUN_DIR --infinity /path/to/venv/bin/infinity_emb
        [--input FILE] [--levels 1,8,32,64] [--duration 8]

Infinity (`infinity_emb v2 --engine optimum`) needs its own virtual environment (its pins clash with ours):
`python -m venv V && V/bin/pip install torch==2.13.0 "infinity-emb[server,optimum]==0.0.78"`. It is given a
folder holding the run's `config.json` and tokenizer files and the bundle's `model.int8.onnx` (as
`model_quantized.onnx`, which its CPU path prefers), with its own graph optimisation off, so both servers run the
same file. Both are called by the project's load loop (`tools/bench/loadgen.closed_loop` with aiohttp, one
keep-alive connection per client, single-text requests; only calls that end inside the measured window count):
baton's `POST /v1/classify`, Infinity's `POST /classify`. At each level the two servers run one after another, so
each ratio compares the same minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle")
    parser.add_argument("run_dir")
    parser.add_argument("--infinity", required=True, help="the infinity_emb executable of its own venv")
    parser.add_argument("--input", default="examples/reviews/test.jsonl")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)


async def _level(base: str, request: Any, texts: list[str], clients: int, args: argparse.Namespace) -> dict:
    """One closed-loop level through the project's load loop (tools/bench/loadgen.py), as every HTTP figure."""
    from baton.tools.bench.http_caller import HttpCaller
    from baton.tools.bench.loadgen import closed_loop

    caller = HttpCaller(base, "http", None, None, request=request)
    try:
        row = await closed_loop(caller, texts, 1, clients, args.duration, args.warmup, 30.0)
    finally:
        await caller.close()
    return {k: row[k] for k in ("texts_per_s", "p50_ms", "p99_ms", "errors")}


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import orjson

    from baton.tools.bench.loadgen import free_port
    from baton.tools.bench.options import load_texts

    texts = load_texts(args.input, "text", 512, 0)
    levels = [int(x) for x in args.levels.split(",")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp_name:
        model_dir = Path(tmp_name) / "model"
        model_dir.mkdir()
        for f in Path(args.run_dir, "model").iterdir():
            if f.suffix in (".json", ".txt") or f.name.startswith("tokenizer"):
                shutil.copy2(f, model_dir / f.name)
        shutil.copy2(Path(args.bundle) / "model.int8.onnx", model_dir / "model_quantized.onnx")
        b_port, i_port = free_port(), free_port()
        baton = subprocess.Popen(
            [sys.executable, "-m", "baton", "-q", "serve", args.bundle, "--port", str(free_port()),
             "--http-port", str(b_port), "--metrics-port", "0", "--variant", "int8"],
            env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        infinity = subprocess.Popen(
            # "." from inside the folder: given an absolute path, infinity 0.0.78 passes optimum 2.1 an absolute
            # file name, which it refuses ("Could not find any ONNX files with target file name ...")
            [args.infinity, "v2", "--model-id", ".", "--engine", "optimum", "--device", "cpu",
             "--port", str(i_port), "--onnx-disable-optimize", "--no-model-warmup", "--served-model-name", "m"],
            env={**env, "HF_HOME": str(Path(tmp_name) / "hf")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=model_dir,
        )  # fmt: skip
        rows = []
        try:
            _wait(f"http://127.0.0.1:{b_port}/v2/health/ready", baton)
            _wait(f"http://127.0.0.1:{i_port}/health", infinity)
            arms = {
                "baton": (b_port, lambda batch: ("/v1/classify", orjson.dumps({"texts": batch}))),
                "infinity": (i_port, lambda batch: ("/classify", orjson.dumps({"input": batch, "model": "m"}))),
            }
            for level in levels:
                row: dict[str, Any] = {"clients": level}
                for name, (port, request) in arms.items():
                    row[name] = asyncio.run(_level(f"127.0.0.1:{port}", request, texts, level, args))
                row["ratio"] = row["baton"]["texts_per_s"] / max(row["infinity"]["texts_per_s"], 1e-9)
                rows.append(row)
                b, i = row["baton"], row["infinity"]
                print(
                    f"{level:3d} clients: baton {b['texts_per_s']:7.0f} texts/s p50 {b['p50_ms']:6.2f} p99 "
                    f"{b['p99_ms']:7.2f} | infinity {i['texts_per_s']:7.0f} p50 {i['p50_ms']:6.2f} p99 "
                    f"{i['p99_ms']:7.2f} | ratio {row['ratio']:.2f}; errors {b['errors'] or 0}/{i['errors'] or 0}",
                    flush=True,
                )
        finally:
            for proc in (baton, infinity):
                proc.send_signal(signal.SIGTERM)
            for proc in (baton, infinity):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(json.dumps(rows, indent=1))
    return {"bundle": args.bundle, "input": args.input, "duration_s": args.duration, "rows": rows}


run(__name__, __doc__, configure, measure)

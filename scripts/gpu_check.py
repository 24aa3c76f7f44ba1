"""Every CUDA path in one call: train, export fp16 (O4) with the fp16 gate enforced, serve under load, and CUDA
fp16 in-process against torch fp16. Writes one JSON file of results. `scripts/gpu_check.sh` installs, then runs this.

    python scripts/gpu_check.py OUT_DIR [--run RUN] [--model minilm] [--device cuda] [--quick]

Steps, each a real `baton` command in a subprocess with its own time limit, so one failure does not waste the rest of
a lent GPU (a step whose input is missing is skipped and says why):

    env        python, torch (and whether it sees a GPU), onnxruntime and its providers, nvidia-smi -L
    train      `baton train` on the shipped demo reviews (skipped with --run)
    export     `baton export RUN --device cuda`: fp32 + fp16 (O4); the fp16 gate must say it was measured on cuda
    serve      `baton bench serve BUNDLE --device cuda --variant fp16`: 1, 8, 32, 64 clients against the in-process
               ceiling of the same variant on the same device
    inprocess  `baton bench inprocess BUNDLE --run RUN --device cuda --backend onnx-fp16 --backend torch-fp16`:
               texts/s per batch size, and the ratio onnx-fp16 / torch-fp16

Output: OUT_DIR/gpu_check.json (the summary: each step's command, exit status, seconds and the tail of its stderr,
then the figures), beside serve.json, inprocess.json and each step's log. Exit 0 only when every step passed.

`--device cpu` runs the same steps on the CPU provider (int8 instead of fp16, torch fp32): tests/e2e/test_gpu_check.py
runs it that way on the tiny fixture, so the commands this script runs are checked on every `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REVIEWS = REPO / "examples" / "reviews"
# Seconds per step; together (450 s) under the 8 minutes a fresh GPU machine is given (install excluded).
LIMITS = {"env": 30, "train": 110, "export": 110, "serve": 120, "inprocess": 80}
# Per device: the variant served and benchmarked, and the in-process pair compared (onnx, torch).
SERVED = {"cuda": "fp16", "cpu": "int8"}
COMPARED = {"cuda": ("onnx-fp16", "torch-fp16"), "cpu": ("onnx-fp32", "torch")}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--run", type=Path, help="a finished `baton train` run (skips the train step)")
    p.add_argument("--model", default="minilm", help="base model of the train step")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="short load levels (smoke runs, tests)")
    return p.parse_args()


def _baton(*args: str) -> list[str]:
    return [sys.executable, "-m", "baton", *args]


class _Steps:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: list[dict[str, Any]] = []

    def run(self, name: str, cmd: list[str]) -> bool:
        started = time.perf_counter()
        log = self.out / f"{name}.log"
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "PYTHONUNBUFFERED": "1"}
        with log.open("w") as sink:
            try:
                proc = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=LIMITS[name])
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = 124
        tail = log.read_text(errors="replace")[-1500:]
        seconds = round(time.perf_counter() - started, 1)
        self.results.append({"step": name, "cmd": cmd, "rc": rc, "seconds": seconds, "log_tail": tail})
        print(f"{name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {seconds} s", flush=True)
        return rc == 0

    def skip(self, name: str, why: str) -> None:
        self.results.append({"step": name, "rc": None, "skipped": why})
        print(f"{name}: skipped ({why})", flush=True)


_ENV_PROBE = """
import json, platform, shutil, subprocess
info = {"python": platform.python_version()}
try:
    import torch
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.cuda.is_available()
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
except ImportError as exc:
    info["torch"] = f"not importable: {exc}"
import onnxruntime as ort
info["onnxruntime"] = ort.__version__
info["providers"] = ort.get_available_providers()
if shutil.which("nvidia-smi"):
    info["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
print(json.dumps(info))
"""


def _figures(out: Path, bundle: Path, device: str) -> dict[str, Any]:
    """The figures the docs quote, read back from what the steps wrote."""
    figures: dict[str, Any] = {}
    manifest = bundle / "bundle.json"
    if manifest.is_file():
        document = json.loads(manifest.read_text())
        parity = document["parity"]
        figures["variants"] = sorted(document["files"])
        figures["fp16_gate"] = parity.get("fp16_vs_fp32")
        figures["int8_gate"] = {k: v for k, v in (parity.get("int8_vs_fp32") or {}).items() if k != "attempts"}
    serve = out / "serve.json"
    if serve.is_file():
        report = json.loads(serve.read_text())
        figures["serve"] = {
            "variant": report["ceiling"]["variant"],
            "ceiling_texts_per_s": report["ceiling"]["texts_per_s"],
            "levels": [
                {k: r.get(k) for k in ("concurrency", "texts_per_s", "p50_ms", "p99_ms", "mean_batch_size", "errors")}
                for r in report["grpc"]["results"]
            ],
            "ratio_best": report["ratio_best"],
            "p50_1_client_minus_batch1_p50_ms": report["p50_1_client_minus_batch1_p50_ms"],
        }
    inproc = out / "inprocess.json"
    if inproc.is_file():
        rows = [r for r in json.loads(inproc.read_text())["results"] if r["bucket"] == "all"]
        onnx, torch = COMPARED[device]
        by = {(r["backend"], r["batch_size"]): r["texts_per_s"] for r in rows}
        figures["inprocess"] = [
            {
                "batch_size": bs,
                f"{onnx}_texts_per_s": by.get((onnx, bs)),
                f"{torch}_texts_per_s": by.get((torch, bs)),
                "ratio": by[(onnx, bs)] / by[(torch, bs)] if by.get((onnx, bs)) and by.get((torch, bs)) else None,
            }
            for bs in sorted({r["batch_size"] for r in rows})
        ]
    return figures


def main() -> int:
    args = _args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    steps = _Steps(out)
    started = time.perf_counter()
    steps.run("env", [sys.executable, "-c", _ENV_PROBE])
    env = json.loads((out / "env.log").read_text().strip().splitlines()[-1]) if steps.results[-1]["rc"] == 0 else {}
    cuda = "CUDAExecutionProvider" in env.get("providers", [])
    if args.device == "cuda" and not cuda:
        print("no CUDA provider in onnxruntime: install the gpu extra (scripts/gpu_check.sh does)", flush=True)

    run = args.run.resolve() if args.run else work / "run"
    if args.run is None:
        steps.run(
            "train",
            _baton(
                "train",
                "--model",
                args.model,
                "--train-file",
                str(REVIEWS / "train.jsonl"),
                "--validation-file",
                str(REVIEWS / "validation.jsonl"),
                "--output",
                str(run),
            ),
        )
    bundle = work / "bundle"
    fast = SERVED[args.device]
    if not (run / "model").is_dir():
        for name in ("export", "serve", "inprocess"):
            steps.skip(name, f"no trained run at {run}")
    else:
        steps.run("export", _baton("export", str(run), "--output", str(bundle), "--device", args.device))
        has_fast = (bundle / f"model.{fast}.onnx").is_file()
        if not has_fast:
            steps.skip("serve", f"the bundle has no {fast} variant (see export.log)")
        else:
            duration = ["--duration", "2", "--warmup", "0.5"] if args.quick else ["--duration", "6", "--warmup", "1"]
            steps.run(
                "serve",
                _baton(
                    "bench",
                    "serve",
                    str(bundle),
                    "--input",
                    str(REVIEWS / "validation.jsonl"),
                    "--device",
                    args.device,
                    "--variant",
                    fast,
                    "--concurrency",
                    "1,8,32,64" if not args.quick else "1,8",
                    *duration,
                    "--output",
                    str(out / "serve.json"),
                ),
            )
        steps.run(
            "inprocess",
            _baton(
                "bench",
                "inprocess",
                str(bundle),
                "--run",
                str(run),
                "--input",
                str(REVIEWS / "validation.jsonl"),
                "--device",
                args.device,
                *[a for b in COMPARED[args.device] for a in ("--backend", b)],
                "--batch-sizes",
                "1,8,32,64",
                *(["--quick"] if args.quick else ["--duration", "8"]),
                "--output",
                str(out / "inprocess.json"),
            ),
        )
    summary = {
        "device": args.device,
        "cuda_provider": cuda,
        "env": env,
        "seconds": round(time.perf_counter() - started, 1),
        "passed": all(s["rc"] == 0 for s in steps.results),
        "steps": steps.results,
        "figures": _figures(out, bundle, args.device),
    }
    gate = summary["figures"].get("fp16_gate")
    if args.device == "cuda" and (not gate or gate.get("measured_on") != "cuda" or not gate.get("passed")):
        summary["passed"] = False  # fp16 must be gated on the GPU itself, and pass
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'PASSED' if summary['passed'] else 'FAILED'} in {summary['seconds']} s: {out / 'gpu_check.json'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

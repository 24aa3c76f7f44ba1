"""Two models behind one server against two single-model servers, and a swap under load (issue 31).

    python benchmarks/repository.py CLASSIFIER_BUNDLE ENTITY_BUNDLE [--sentences SST2.jsonl] [--conll CONLL.jsonl]
        [--clients 16] [--duration 10] [--swap-clients 64]

Arms, one after another on the same machine:
- one `baton serve REPO` holding both models (`REPO/sentiment`, `REPO/entities`);
- two `baton serve BUNDLE` processes, one per model.
Each arm takes the same mixed load at once: `--clients` closed-loop clients sending SST-2 sentences to the
classifier and as many sending CoNLL sentences to the entity model (two `baton bench grpc` processes). Then each
model alone against the repository server, for its p99 alone. Reported: texts/s per model and in total, p50/p99,
and the servers' resident memory (VmRSS, VmHWM) after the load.

Swap: the repository server under `--swap-clients` clients on the classifier; after a measured window, version 2
(a copy of the same bundle) is added and loaded through tritonclient while the load goes on. p99 before and during,
and the errors (none may fail).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("classifier")
    parser.add_argument("entities")
    parser.add_argument("--sentences", default="../shared/data/sst2_sentence/validation.jsonl")
    parser.add_argument("--conll", default="../shared/data/conll2003/validation.jsonl")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--swap-clients", type=int, default=64)


def _load(target: str, model: str, data: Path, clients: int, duration: float, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "baton", "-q", "bench", "grpc", "--input", str(data), "--server", target,
           "--model-name", model, "--concurrency", str(clients), "--duration", str(duration), "--no-echo",
           "--output", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def _row(path: Path) -> dict[str, Any]:
    (row,) = json.loads(path.read_text())["results"]
    return {k: row[k] for k in ("texts_per_s", "p50_ms", "p99_ms", "errors")}


def _mixed(targets: dict[str, str], data: dict[str, Path], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    procs = {m: _load(targets[m], m, data[m], args.clients, args.duration, tmp / f"{m}.json") for m in targets}
    for proc in procs.values():
        proc.wait()
    rows = {m: _row(tmp / f"{m}.json") for m in procs}
    return {"models": rows, "total_texts_per_s": sum(r["texts_per_s"] for r in rows.values())}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from baton.tools.bench.accounting import memory_mib
    from baton.tools.bench.loadgen import started_server

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        conll = tmp / "conll.jsonl"
        with conll.open("w") as out:
            for line in Path(args.conll).read_text().splitlines():
                out.write(json.dumps({"text": " ".join(json.loads(line)["tokens"])}) + "\n")
        data = {"sentiment": Path(args.sentences), "entities": conll}
        repo = tmp / "repo"
        shutil.copytree(args.classifier, repo / "sentiment" / "1")
        shutil.copytree(args.entities, repo / "entities")
        common = ["--threads", "2"]

        with started_server(repo, [*common, "--model-control", "explicit"]) as server:
            results["one_server"] = _mixed({m: server.target for m in data}, data, args, tmp)
            results["one_server"]["memory_mib"] = memory_mib(server.pid)
            results["alone"] = {}
            for model in data:
                proc = _load(server.target, model, data[model], args.clients, args.duration, tmp / "alone.json")
                proc.wait()
                results["alone"][model] = _row(tmp / "alone.json")
            results["swap"] = _swap(server.target, repo, args, tmp, data["sentiment"])
        print(json.dumps(results["one_server"], indent=1), flush=True)

        with (
            started_server(repo / "sentiment" / "1", [*common, "--model-name", "sentiment"]) as a,
            started_server(repo / "entities", [*common, "--model-name", "entities"]) as b,
        ):
            results["two_servers"] = _mixed({"sentiment": a.target, "entities": b.target}, data, args, tmp)
            memory = [memory_mib(a.pid), memory_mib(b.pid)]
            results["two_servers"]["memory_mib"] = {k: sum(m[k] for m in memory) for k in memory[0]}
    one, two = results["one_server"], results["two_servers"]
    results["throughput_ratio"] = one["total_texts_per_s"] / two["total_texts_per_s"]
    results["p99_vs_alone"] = {m: one["models"][m]["p99_ms"] / results["alone"][m]["p99_ms"] for m in data}
    _print(results)
    return results


def _swap(target: str, repo: Path, args: argparse.Namespace, tmp: Path, data: Path) -> dict[str, Any]:
    import tritonclient.grpc as tc

    before = _load(target, "sentiment", data, args.swap_clients, args.duration, tmp / "before.json")
    before.wait()
    during = _load(target, "sentiment", data, args.swap_clients, args.duration, tmp / "during.json")
    time.sleep(2.0 + args.duration / 3)  # past the load's warm-up, inside its measured window
    shutil.copytree(repo / "sentiment" / "1", repo / "sentiment" / "2")
    started = time.monotonic()
    tc.InferenceServerClient(target).load_model("sentiment")
    swap_s = time.monotonic() - started
    during.wait()
    version = tc.InferenceServerClient(target).get_model_metadata("sentiment").versions
    return {"before": _row(tmp / "before.json"), "during": _row(tmp / "during.json"), "load_s": swap_s,
            "versions_after": list(version)}  # fmt: skip


def _print(r: dict[str, Any]) -> None:
    print("\n| arm | model | texts/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for arm in ("one_server", "two_servers"):
        for model, row in r[arm]["models"].items():
            print(f"| {arm} | {model} | {row['texts_per_s']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                  f"{row['errors'] or 0} |")  # fmt: skip
    for model, row in r["alone"].items():
        print(f"| one_server, alone | {model} | {row['texts_per_s']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
              f"{row['errors'] or 0} |")  # fmt: skip
    print(f"\ntotal texts/s: one server {r['one_server']['total_texts_per_s']:.0f}, two servers "
          f"{r['two_servers']['total_texts_per_s']:.0f}: ratio {r['throughput_ratio']:.2f}")  # fmt: skip
    print(f"memory MiB (RSS / peak): one server {r['one_server']['memory_mib']}, two {r['two_servers']['memory_mib']}")
    print(f"p99 mixed / alone: {', '.join(f'{m} {v:.2f}' for m, v in r['p99_vs_alone'].items())}")
    s = r["swap"]
    print(f"swap: p99 before {s['before']['p99_ms']:.1f} ms, during {s['during']['p99_ms']:.1f} ms; "
          f"errors before {s['before']['errors']}, during {s['during']['errors']}; load took {s['load_s']:.1f} s; "
          f"versions after {s['versions_after']}")  # fmt: skip


run(__name__, __doc__, configure, measure)

"""`baton bench --quick` in each mode against the tiny bundle: JSON schema and counts that add up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serving_helpers import ServerThread
from support import REVIEWS

from baton.serving.config import ServeConfig


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton", "-q", "bench", *args, "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _closed_rows_add_up(rows: list[dict]) -> None:
    assert rows
    for r in rows:
        assert r["requests_sent"] == r["answered"] + sum(r["errors"].values())
        for key in ("texts_per_s", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "client_cpu_s"):
            assert key in r


def test_inprocess_with_torch_and_onnx(tiny_run: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_bundle, run / "bundle")
    proc = _bench(
        "inprocess",
        str(run),
        "--input",
        str(REVIEWS / "test.jsonl"),
        "--batch-sizes",
        "1,4",
        "--output",
        "out.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert {"cpu", "cores", "versions"} <= set(report["environment"])
    backends = {r["backend"] for r in report["results"]}
    assert backends == {"torch", "onnx-fp32", "onnx-int8"}
    assert {r["bucket"] for r in report["results"]} == {"short", "medium", "long", "all"}
    assert all(r["texts_per_s"] > 0 for r in report["results"])
    assert all("tokenize_texts_per_s" in r for r in report["results"] if r["backend"] != "torch")
    assert (tmp_path / report["plots"][0]).is_file()
    assert "| onnx-int8 | 4 |" in proc.stdout


def test_grpc_closed_and_open_loop_against_a_running_server(tiny_bundle: Path, tmp_path: Path) -> None:
    with ServerThread(ServeConfig(bundle=str(tiny_bundle))) as s:
        assert s.server is not None
        proc = _bench(
            "grpc",
            "--server",
            s.target,
            "--input",
            str(REVIEWS / "test.jsonl"),
            "--concurrency",
            "1,4",
            "--rate",
            "50",
            "--metrics-url",
            f"http://127.0.0.1:{s.server.metrics_port}/metrics",
            "--output",
            "g.json",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        kserve = _bench(
            "grpc",
            "--server",
            s.target,
            "--input",
            str(REVIEWS / "test.jsonl"),
            "--concurrency",
            "2",
            "--protocol",
            "kserve",
            "--model-name",
            tiny_bundle.name,
            "--no-echo",
            "--output",
            "k.json",
            cwd=tmp_path,
        )
        assert kserve.returncode == 0, kserve.stderr
    report = json.loads((tmp_path / "g.json").read_text())
    closed = [r for r in report["results"] if r["mode"] == "closed"]
    _closed_rows_add_up(closed)
    assert [r["concurrency"] for r in closed] == [1, 4]
    assert all(r["mean_batch_size"] >= 1 for r in closed)
    (open_row,) = [r for r in report["results"] if r["mode"] == "open"]
    assert open_row["requests_sent"] == open_row["answered"] + sum(open_row["errors"].values())
    assert report["load_generator_ceiling"]["texts_per_s"] > 0
    assert report["load_generator_ceiling"]["one_client_p50_ms"] > 0
    _closed_rows_add_up(json.loads((tmp_path / "k.json").read_text())["results"])


def test_serve_mode_reports_the_ratio(tiny_bundle: Path, tmp_path: Path) -> None:
    proc = _bench(
        "serve",
        str(tiny_bundle),
        "--input",
        str(REVIEWS / "test.jsonl"),
        "--concurrency",
        "1,4",
        "--output",
        "s.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    _closed_rows_add_up(report["grpc"]["results"])
    ceiling = report["ceiling"]
    assert ceiling["before"]["texts_per_s"] > 0 and ceiling["after"]["texts_per_s"] > 0  # both measured, both kept
    assert 0 < report["ratio_at_4"] < 10
    assert f"server / ceiling: {report['ratio_at_4']:.2f} at 4 clients" in proc.stdout
    assert "CPU per text, ms (the ceiling spends" in proc.stdout and "4 clients: server" in proc.stdout


def test_serve_mode_loads_one_model_of_a_repository(tiny_bundle: Path, tmp_path: Path) -> None:
    """Issue 31: `baton bench serve REPO --model-name M` starts the whole repository, loads model M, and measures
    M's highest version in-process for the ceiling."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(tiny_bundle, repo / "alpha")
    shutil.copytree(tiny_bundle, repo / "beta" / "1")
    args = ["serve", str(repo), "--input", str(REVIEWS / "test.jsonl"), "--concurrency", "2", "--quick"]
    proc = _bench(*args, "--model-name", "beta", "--output", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    _closed_rows_add_up(report["grpc"]["results"])
    assert report["bundle"] == str(repo / "beta" / "1") and report["ratio_best"] > 0
    unnamed = _bench(*args, cwd=tmp_path)
    assert (
        unnamed.returncode == 2 and "--model-name: name one of the repository's models (alpha, beta)" in unnamed.stderr
    )
    lone = _bench("serve", str(tiny_bundle), *args[2:], "--model-name", "x", cwd=tmp_path)
    assert lone.returncode == 2 and "this is a lone bundle" in lone.stderr


def test_cpu_per_text_divides_each_process_by_the_texts_of_its_window() -> None:
    from baton.tools.bench import cpu_per_text

    rows = [
        {
            "mode": "closed",
            "concurrency": 8,
            "texts_per_s": 500.0,
            "elapsed_s": 4.0,
            "server_cpu_s": 3.0,
            "client_cpu_s": 0.4,
        },
        {"mode": "open", "rate": 100.0, "texts_per_s": 100.0, "elapsed_s": 4.0, "client_cpu_s": 0.1},
        {"mode": "closed", "concurrency": 64, "texts_per_s": 1000.0, "elapsed_s": 4.0, "client_cpu_s": 0.2},
    ]
    report = {"cores": 2, "ceiling": {"texts_per_s": 1250.0}, "grpc": {"results": rows}}
    assert cpu_per_text(report) == [
        "CPU per text, ms (the ceiling spends 1.60 on 2 cores): 8 clients: server 1.50, load generator 0.20"
    ]  # 3 s and 0.4 s over 2000 texts; the open loop and a level without the server's CPU are left out
    assert cpu_per_text({**report, "cores": None}) == []
    echo = {"concurrency": 64, "requests_per_s": 5000.0, "elapsed_s": 4.0, "server_cpu_s": 4.0}
    echo |= {"one_client_server_cpu_s": 0.6, "one_client_calls": 2000.0}
    with_echo = {**report, "grpc": {"results": rows, "load_generator_ceiling": echo}}
    assert (
        cpu_per_text(with_echo)[1] == "a no-work echo server's CPU per call, ms: 0.30 at 1 client, 0.20 at 64 clients"
    )


def test_the_ceiling_is_the_mean_of_before_and_after() -> None:
    from baton.tools.bench.report import mean_ceiling

    before = {"variant": "int8", "best_batch_size": 16, "texts_per_s": 100.0, "batch1_p50_ms": 2.0}
    after = {"variant": "int8", "best_batch_size": 32, "texts_per_s": 300.0, "batch1_p50_ms": None}
    mean = mean_ceiling(before, after)
    assert (mean["texts_per_s"], mean["batch1_p50_ms"]) == (200.0, 2.0)  # a missing figure is left out, not zero
    assert mean["before"] is before and mean["after"] is after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grpc", "--server", "127.0.0.1:1", "--input", str(REVIEWS / "test.jsonl"), "--no-echo"], "no gRPC server"),
        (["inprocess", "BUNDLE", "--input", str(REVIEWS / "test.jsonl"), "--text-column", "body"], "no 'body' column"),
        (
            ["inprocess", "BUNDLE", "--input", str(REVIEWS / "test.jsonl"), "--backend", "onnx-fp16"],
            "backend 'onnx-fp16' is not available",
        ),
        (["inprocess", "BUNDLE", "--input", str(REVIEWS / "test.jsonl"), "--device", "tpu"], "--device: expected cpu"),
        (["serve", "BUNDLE", "--input", str(REVIEWS / "test.jsonl"), "--device", "auto"], "--device: expected cpu"),
    ],
)
def test_bad_input(tiny_bundle: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = _bench(*[str(tiny_bundle) if a == "BUNDLE" else a for a in args], cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_check_counts_names_what_does_not_add_up() -> None:
    from baton.errors import BatonError
    from baton.tools.bench import check_counts

    good = {"results": [{"concurrency": 8, "requests_sent": 10, "answered": 7, "errors": {"UNAVAILABLE": 3}}]}
    check_counts(good)
    bad = {"results": [{"concurrency": 8, "requests_sent": 10, "answered": 7, "errors": {"UNAVAILABLE": 1}}]}
    with pytest.raises(BatonError, match=r"at 8 the counts do not add up .*2 unaccounted"):
        check_counts(bad)


def test_the_ceiling_is_the_best_setting_at_its_median_run(tiny_bundle: Path) -> None:
    import statistics

    from baton.tools.bench import inprocess_ceiling

    texts = [f"the battery lasts {'very ' * (i % 7)}long" for i in range(40)]
    c = inprocess_ceiling(tiny_bundle, texts, None, 0.3, batch_sizes=(1, 8), repeats=3)
    side = ["1 side by side", "8 side by side"] if (os.cpu_count() or 1) >= 2 else []
    assert sorted(c["sweep"]) == sorted(["1", "1 no-spin", "8", "8 no-spin", *side])
    assert all(c["sweep"][k]["side_by_side"] == 2 for k in side)
    for setting in c["sweep"].values():
        assert len(setting["texts_per_s_runs"]) == 3
        assert setting["texts_per_s"] == statistics.median(setting["texts_per_s_runs"])
    best = max(c["sweep"].values(), key=lambda v: v["texts_per_s"])
    assert c["texts_per_s"] == best["texts_per_s"] and c["best_batch_size"] == best["batch_size"]
    assert c["sweep"][c["best_setting"]] is best
    assert c["batch1_p50_ms"] == min(c["sweep"][k]["p50_ms"] for k in ("1", "1 no-spin"))
    assert "median of 3 runs" in c["how"]


def test_benchmarks_md_headline_is_what_bench_docs_makes_of_the_results() -> None:
    """docs/benchmarks.md's headline table is generated from docs/bench/*.json (a figure edited by hand fails here),
    and the notes are linked, not copied (a copy drifts)."""
    import importlib.util

    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo / "benchmarks"))  # as `python benchmarks/bench_docs.py` has it
    spec = importlib.util.spec_from_file_location("bench_docs", repo / "benchmarks" / "bench_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inproc = json.loads((repo / "docs/bench/inprocess.json").read_text())
    serve = json.loads((repo / "docs/bench/serve.json").read_text())
    page = (repo / "docs/benchmarks.md").read_text()
    assert "\n".join(module.headline(inproc, serve)) in page
    notes = (repo / "docs/benchmarks_notes.md").read_text()
    assert "](benchmarks_notes.md)" in page and notes.splitlines()[2] not in page


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (Path(__file__).resolve().parents[2] / "benchmarks").glob("[!_]*.py"))
)
def test_every_benchmark_has_the_one_entry_shape(script: str, tmp_path: Path) -> None:
    """Each benchmark parses its arguments through the harness (so it writes a JSON record with the environment):
    `--help` lists `--json`, and a bad command line is refused by argparse before anything is measured."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / script
    assert "run(__name__, __doc__, configure, measure)" in path.read_text()
    helped = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--json" in helped.stdout, helped.stderr
    refused = subprocess.run(
        [sys.executable, str(path), "--no-such-flag"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert refused.returncode == 2 and f"usage: benchmarks/{script}" in refused.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_echo_floor_parses_each_front_and_answers_one_result_per_text(loop: str) -> None:
    """The echo that front_cost.py subtracts is a floor of real work: on either event loop, its gRPC and HTTP fronts
    parse the request and answer one result per text, on the routes the load generator calls."""
    import urllib.request

    import grpc

    from baton.serving.v1 import classifier_pb2 as pb
    from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
    from baton.tools.bench.loadgen import started_echo

    with started_echo(loop, http=True) as echo:
        with grpc.insecure_channel(echo.target) as channel:
            answer = pb_grpc.TextClassifierStub(channel).Classify(pb.ClassifyRequest(texts=["a", "b", "c"]), timeout=30)
        assert [r.label for r in answer.results] == ["echo"] * 3
        for path, body, key in (
            ("/v1/classify", {"texts": ["a", "b"]}, "results"),
            (
                "/v2/models/m/infer",
                {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]},
                "outputs",
            ),
        ):
            request = urllib.request.Request(f"http://{echo.http_target}{path}", json.dumps(body).encode())
            with urllib.request.urlopen(request, timeout=30) as r:
                answered = json.loads(r.read())[key]
            assert len(answered) == 2 if key == "results" else answered[0]["shape"] == [2]

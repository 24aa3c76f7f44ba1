"""`baton score`: batch inference over files, embedded and on a real local Ray (Ray Data)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import REVIEWS

from baton.errors import DataError, OutputDirError
from baton.serving import Predictor
from baton.tools.score import Columns, plan_job, run_score

pytestmark = pytest.mark.timeout(600)


def _rows() -> list[dict]:
    rows = [json.loads(line) for line in (REVIEWS / "validation.jsonl").read_text().splitlines()][:40]
    out = [{"key": f"{i:04d}", "text": r["text"], "gold": r["label"]} for i, r in enumerate(rows)]
    out[3]["text"] = ""
    out[7]["text"] = None
    out[9]["text"] = "   "
    return out


def _write_inputs(folder: Path, rows: list[dict]) -> Path:
    """The same rows as CSV, JSONL and parquet files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, folder / "c.parquet")
    (folder / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import pyarrow.csv as pa_csv

    pa_csv.write_csv(table, folder / "a.csv")
    return folder


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "baton", "-q", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def _job(bundle: Path, source: Path | str, output: Path, **options: object) -> dict:
    columns = options.pop("columns", Columns(id="key"))
    opts = {"columns": columns, "variant": "fp32", "device": "cpu", "progress": False, **options}
    return run_score(plan_job(bundle, str(source), output, None, **opts))


def test_embedded_scores_every_format_like_the_predictor(tiny_bundle: Path, tmp_path: Path) -> None:
    rows = _rows()
    inputs = _write_inputs(tmp_path / "in", rows)
    summary = _job(tiny_bundle, inputs, tmp_path / "out", chunk_rows=7)
    assert summary["inputs"] == 3 and summary["rows"] == 3 * len(rows) and summary["empty_text"] == 3 * 3
    assert json.loads((tmp_path / "out" / "_score.json").read_text())["outputs"] == [
        "a.parquet",
        "b.parquet",
        "c.parquet",
    ]
    scored = [i for i, r in enumerate(rows) if r["text"] and r["text"].strip()]
    expected = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict([rows[i]["text"] for i in scored])
    for name in ("a", "b", "c"):
        out = pq.read_table(tmp_path / "out" / f"{name}.parquet").to_pydict()
        assert out["key"] == [r["key"] for r in rows], name  # the id column kept as a string, in input order
        assert set(out) == {"key", "label", "score", "truncated", "empty_text"}
        assert [out["label"][i] for i in scored] == [p.label for p in expected]
        assert [out["score"][i] for i in scored] == pytest.approx([p.score for p in expected], abs=1e-6)
        assert [i for i, e in enumerate(out["empty_text"]) if e] == [3, 7, 9]
        assert out["label"][3] is None and out["score"][7] is None


def test_keep_columns_scores_and_a_single_jsonl_file(tiny_bundle: Path, tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "in", _rows())
    out = tmp_path / "all.jsonl"
    columns = Columns(keep=True, all_scores=True)
    summary = _job(tiny_bundle, f"{inputs}/*.jsonl", out, columns=columns)
    assert summary["rows"] == 40 and not (tmp_path / "_score.json").exists()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    predicted = ["pred_label", "pred_score", "pred_scores", "pred_truncated", "pred_empty_text"]
    assert list(lines[0]) == ["key", "text", "gold", *predicted]  # the predictions prefixed, beside the input
    labels = Predictor.load(tiny_bundle, device="cpu").labels
    assert set(lines[0]["pred_scores"]) == set(labels)
    assert lines[0]["pred_scores"][lines[0]["pred_label"]] == pytest.approx(lines[0]["pred_score"])
    assert lines[3]["pred_scores"] is None and lines[3]["pred_empty_text"] is True
    assert summary["empty_text"] == sum(line["pred_empty_text"] for line in lines) > 0


def test_resume_skips_finished_inputs_and_overwrite_replaces_them(tiny_bundle: Path, tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "in", _rows())
    out = tmp_path / "out"
    _job(tiny_bundle, inputs, out)
    (out / "b.parquet").unlink()
    kept = (out / "a.parquet").stat().st_mtime_ns
    with pytest.raises(OutputDirError, match=r"exists .*--resume .*--overwrite"):
        _job(tiny_bundle, inputs, out)
    summary = _job(tiny_bundle, inputs, out, resume=True)
    assert summary["skipped"] == 2 and summary["rows"] == 40
    assert (out / "a.parquet").stat().st_mtime_ns == kept and (out / "b.parquet").is_file()
    summary = _job(tiny_bundle, inputs, out, overwrite=True)
    assert summary["skipped"] == 0 and (out / "a.parquet").stat().st_mtime_ns != kept


def test_a_failure_midway_leaves_no_partial_output(tiny_bundle: Path, tmp_path: Path) -> None:
    """A line that breaks past the reader's first 1 MiB block fails the job after chunks were already written."""
    rows = [{"key": str(i), "text": f"item {i} was fine"} for i in range(60_000)]
    bad = tmp_path / "in" / "broken.jsonl"
    bad.parent.mkdir()
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"key": "x", "text": \n', encoding="utf-8")
    assert bad.stat().st_size > 2**21
    with pytest.raises(DataError, match=r"broken\.jsonl: unreadable after row [1-9]"):
        _job(tiny_bundle, bad, tmp_path / "out", chunk_rows=4096)
    assert list((tmp_path / "out").iterdir()) == []  # neither broken.parquet nor its hidden temp file


def test_entities_are_scored_with_offsets(tiny_ner_bundle: Path, tmp_path: Path) -> None:
    texts = ["Angela Merkel visited Paris in May .", "", "no entities here at all", "Berlin and Rome"]
    source = tmp_path / "ner.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    _job(tiny_ner_bundle, source, tmp_path / "ner.parquet", columns=Columns(id="id", aggregation="simple"))
    out = pq.read_table(tmp_path / "ner.parquet").to_pydict()
    assert out["id"] == [0, 1, 2, 3] and out["empty_text"] == [False, True, False, False]
    expected = Predictor.load(tiny_ner_bundle, device="cpu", variant="fp32").predict(
        [t for t in texts if t], aggregation="simple"
    )
    got = [out["entities"][i] for i in (0, 2, 3)]
    assert got == [[e.to_dict() for e in answer.entities] for answer in expected]
    for i, found in enumerate(out["entities"]):
        assert all(texts[i][e["start"] : e["end"]] == e["text"] for e in found)


def test_bad_input_is_one_line_exit_2(tiny_bundle: Path, tiny_ner_bundle: Path, tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "in", _rows())
    (tmp_path / "garbage.parquet").write_bytes(b"not a parquet file at all")
    (tmp_path / "notes.txt").write_text("hello\n")
    cases = [
        (
            [
                str(tiny_bundle),
                "--input",
                str(inputs / "c.parquet"),
                "--output",
                str(tmp_path / "o1"),
                "--text-column=body",
            ],
            r"c\.parquet: no column 'body' \(--text-column\); columns found: key, text, gold",
        ),
        (
            [str(tiny_bundle), "--input", str(tmp_path / "garbage.parquet"), "--output", str(tmp_path / "o2")],
            r"garbage\.parquet: cannot be read as parquet",
        ),
        (
            [str(tiny_bundle), "--input", str(tmp_path / "notes.txt"), "--output", str(tmp_path / "o3")],
            r"notes\.txt: unknown format '\.txt'",
        ),
        (
            [str(tiny_bundle), "--input", str(inputs), "--output", str(tmp_path / "o5"), "--aggregation", "first"],
            r"--aggregation: .* is a text-classification model: aggregation applies to entity models only",
        ),
        (
            [str(tiny_ner_bundle), "--input", str(inputs), "--output", str(tmp_path / "o6"), "--scores"],
            r"--scores: .* is a token-classification model; its answers carry their own scores",
        ),
        (
            [str(tiny_bundle), "--input", str(inputs), "--output", str(tmp_path / "o.parquet"), "--engine", "ray"],
            r"--engine ray writes each input as a folder",
        ),
        (
            [str(tiny_bundle), "--input", str(inputs), "--output", str(tmp_path / "o7"), "--resume", "--overwrite"],
            r"--resume and --overwrite contradict",
        ),
        (
            [str(tiny_bundle), "--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o8")],
            r"--input .*nowhere: no such file or folder",
        ),
    ]
    for args, message in cases:
        proc = _cli("score", *args, "--no-progress")
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and re.search(message, error[0]), (message, proc.stderr)


def test_keep_columns_puts_gold_and_prediction_side_by_side(tiny_bundle: Path, tmp_path: Path) -> None:
    """Issue 29: a labelled file's `label` collided with the prediction, so --keep-columns refused it."""
    source = tmp_path / "labelled.jsonl"
    source.write_text(json.dumps({"text": "fine", "label": "positive"}) + "\n")
    _job(tiny_bundle, source, tmp_path / "o.jsonl", columns=Columns(keep=True))
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert row["label"] == "positive" and row["pred_label"] in Predictor.load(tiny_bundle, device="cpu").labels
    source.write_text(json.dumps({"text": "fine", "pred_label": "mine"}) + "\n")
    with pytest.raises(DataError, match=r"column\(s\) pred_label would be overwritten"):
        _job(tiny_bundle, source, tmp_path / "p.jsonl", columns=Columns(keep=True))
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.ray
def test_ray_data_scores_like_the_embedded_engine(tiny_bundle: Path, tiny_ner_bundle: Path, tmp_path: Path) -> None:
    """A real local Ray (started by the job): Ray's readers, an actor pool of 2 loading the bundle, Ray's writers.
    Ray cuts blocks its own way, yet every prediction of the served int8 variant equals the embedded engine's, to
    the bit: its activation scales are fixed at export, so a text's answer does not depend on its batch-mates."""
    pytest.importorskip("ray")
    assert json.loads((tiny_bundle / "bundle.json").read_text())["parity"]["int8_vs_fp32"]["scales"] == "fixed"
    inputs = _write_inputs(tmp_path / "in", _rows())
    common = ["--input", str(inputs), "--id-column", "key", "--chunk-rows", "16", "--variant", "int8", "--no-progress"]
    embedded = _cli("score", str(tiny_bundle), *common, "--output", str(tmp_path / "emb"))
    assert embedded.returncode == 0, embedded.stderr
    ray_run = _cli(
        "score", str(tiny_bundle), *common, "--output", str(tmp_path / "ray"), "--engine", "ray", "--actors", "2"
    )
    assert ray_run.returncode == 0, ray_run.stderr
    summary = json.loads(ray_run.stdout.strip().splitlines()[-1])
    assert summary["engine"] == "ray" and summary["actors"] == 2 and summary["rows"] == 120
    for name in ("a", "b", "c"):
        folder = tmp_path / "ray" / f"{name}.parquet"
        assert folder.is_dir() and len(list(folder.glob("*.parquet"))) >= 2  # Ray's part files, one per block
        assert pq.read_table(folder).equals(pq.read_table(tmp_path / "emb" / f"{name}.parquet")), name
    # --resume on Ray skips what is complete and scores only what is missing.
    import shutil

    shutil.rmtree(tmp_path / "ray" / "b.parquet")
    again = _cli("score", str(tiny_bundle), *common, "--output", str(tmp_path / "ray"), "--engine", "ray", "--resume")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped"] == 2
    assert pq.read_table(tmp_path / "ray" / "b.parquet").equals(pq.read_table(tmp_path / "emb" / "b.parquet"))

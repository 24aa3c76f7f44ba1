"""Bad input to `baton train`: each fails with one clear line, and nothing half-written looks finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REVIEWS, write_jsonl

from baton.errors import ConfigError, DataError, ModelError, OutputDirError
from baton.training import TrainConfig, load_train_config, run_training
from baton.training.models import resolve_model


def _cfg(tiny_model_dir: Path, tmp_path: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=16,
        learning_rate=1e-3,
        patience=0,
        max_length=32,
        baseline=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _rows(n: int = 40) -> list[dict]:
    return [{"text": f"text number {i}", "label": "pos" if i % 2 else "neg"} for i in range(n)]


def test_missing_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"--train-file: file not found: .*nope\.jsonl"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(tmp_path / "nope.jsonl")))


def test_unknown_format(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    with pytest.raises(DataError, match=r"unknown format '\.xlsx'"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(bad)))


def test_missing_column_lists_the_columns_found(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [{"sentence": "a b", "label": "x"}] * 4)
    with pytest.raises(DataError, match=r"no column 'text' \(--text-column\); columns found: sentence, label"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))


def test_single_class(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": f"t {i}", "label": "only"} for i in range(10)])
    with pytest.raises(DataError, match="single class"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))


def test_blank_texts_are_dropped_and_counted(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [*_rows(40), {"text": "   ", "label": "pos"}, {"text": "", "label": "neg"}, {"text": None, "label": "neg"}]
    data = write_jsonl(tmp_path / "t.jsonl", rows)
    run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))
    args = json.loads((tmp_path / "run/train_args.json").read_text())
    assert list(args["dropped_rows"].values()) == [3]
    assert "dropped rows" in (tmp_path / "run/report.md").read_text()


def test_validation_label_not_in_train(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", _rows())
    val = write_jsonl(tmp_path / "val.jsonl", [{"text": "x", "label": "neutral"}, {"text": "y", "label": "pos"}])
    with pytest.raises(DataError, match=r"--validation-file .*never seen in the training split: neutral"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), validation_file=str(val)))


def test_finished_run_is_refused_without_overwrite(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", _rows())
    run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train)))
    first = (tmp_path / "run/metrics.json").stat().st_mtime_ns
    with pytest.raises(OutputDirError, match="already holds a finished run; pass --overwrite"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train)))
    run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), overwrite=True))
    assert (tmp_path / "run/metrics.json").stat().st_mtime_ns != first


def test_interrupted_run_leaves_no_metrics_and_resumes(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baton.training.classification as trainer_mod

    train = write_jsonl(tmp_path / "train.jsonl", _rows())
    original = trainer_mod._evaluate
    calls = {"n": 0}

    def crash_after_training(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C after the last checkpoint

    monkeypatch.setattr(trainer_mod, "_evaluate", crash_after_training)
    with pytest.raises(KeyboardInterrupt):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), epochs=2))
    assert not (tmp_path / "run/metrics.json").exists()
    assert any((tmp_path / "run/checkpoints").glob("checkpoint-*"))
    monkeypatch.setattr(trainer_mod, "_evaluate", original)
    with pytest.raises(OutputDirError, match="interrupted run; pass --resume"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), epochs=2))
    result = run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), epochs=2, resume=True))
    assert result.metrics["training"]["epochs_run"] == pytest.approx(2.0)
    assert (tmp_path / "run/metrics.json").is_file()


def test_config_file_and_flags_merge(tmp_path: Path) -> None:
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("train-file: a.jsonl\nepochs: 5\nlearning_rate: 0.001\n")
    cfg = load_train_config(cfg_file, {"epochs": 2, "batch_size": None})
    # batch size left to the schedule (None until the rows are counted: training/schedule.py)
    assert (cfg.train_file, cfg.epochs, cfg.learning_rate, cfg.batch_size) == ("a.jsonl", 2, 0.001, None)
    cfg_file.write_text("train_file: a.jsonl\nepochz: 5\n")
    with pytest.raises(ConfigError, match="unknown key 'epochz'"):
        load_train_config(cfg_file, {})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"epochs": 0}, "--epochs"),
        ({"learning_rate": 5.0}, "--learning-rate"),
        ({"bf16": "maybe"}, "--bf16"),
        ({"train_file": None}, "exactly one of --train-file or --dataset"),
        ({"resume": True, "overwrite": True}, "exclude each other"),
    ],
)
def test_config_validation(kw: dict, message: str) -> None:
    values: dict[str, object] = {"train_file": "x.jsonl", **kw}
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)  # type: ignore[arg-type]


def test_unknown_hub_model_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"'someone/no-such-model' .* Use --model minilm"):
        resolve_model("someone/no-such-model")
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").endswith("model")
    with pytest.raises(ModelError, match=r"holds no config\.json"):
        resolve_model(str(REVIEWS))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "baton", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_cli_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = _cli("train", "--train-file", "missing.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --train-file: file not found: missing.csv"
    assert "Traceback" not in proc.stderr
    debug = _cli("--debug", "train", "--train-file", "missing.csv", cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_cli_trains_and_prints_summary(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = _cli(
        "-q",
        "train",
        "--model",
        str(tiny_model_dir),
        "--train-file",
        str(REVIEWS / "train.jsonl"),
        "--max-train-samples",
        "64",
        "--epochs",
        "1",
        "--output",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "validation: accuracy" in proc.stdout and "untrained head" in proc.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"t\.jsonl is empty"),
        ('{"text": "caf\xe9", "label": "a"}\n'.encode("latin-1"), r"line 1 is not UTF-8 \(byte 0xe9 at column 14\)"),
        (
            b'{"text": "a", "label": "x"}\n{"text": "b", "label": \n',
            r"line 2, column 24: invalid JSON \(Expecting value\)",
        ),
        (b'{"text": "a", "label": "x"}\n["a list"]\n', r"line 2: expected a JSON object, got list"),
        (b"text,label\n", r"t\.csv holds no rows, only a header"),
        # issue 29: one 200 MB line took `baton train` past 15 GB; a row is read with at most 1 MiB held
        (
            b'{"text": "a", "label": "x"}\n{"text": "' + b"x" * (3 << 20) + b'", "label": "y"}\n',
            r"line 2 is longer than 1 MiB; a row must be shorter",
        ),
    ],
)
def test_unreadable_data_files_name_the_line(
    tiny_model_dir: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    data = tmp_path / ("t.csv" if content.startswith(b"text,") else "t.jsonl")
    data.write_bytes(content)
    with pytest.raises(DataError, match=message):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))
    proc = _cli("train", "--model", str(tiny_model_dir), "--train-file", str(data), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"text": [{"a": 1}, {"a": 2}] * 8, "label": ["x", "y"] * 8}, r"column 'text' \(--text-column\) holds struct"),
        (
            {"text": ["a", "b"] * 8, "label": [{"a": 1}, {"a": 2}] * 8},
            r"column 'label' \(--label-column\) holds struct",
        ),
    ],
)
def test_parquet_columns_of_the_wrong_type_are_one_line(
    tiny_model_dir: Path, tmp_path: Path, columns: dict, message: str
) -> None:
    """Issue 29: a struct where a text or label belongs was a traceback from the tokenizer or a set()."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), data)
    with pytest.raises(DataError, match=message):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))
    proc = _cli("train", "--model", str(tiny_model_dir), "--train-file", str(data), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_parquet_text_column_of_numbers_is_read_as_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    """As CSV numbers are: issue 29 found it a traceback from the tokenizer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from baton.training.data import prepare_data

    data = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": list(range(40)), "label": ["odd", "even"] * 20}), data)
    prepared = prepare_data(_cfg(tiny_model_dir, tmp_path, train_file=str(data)))
    texts = list(prepared.train["text"]) + list(prepared.validation["text"])
    assert sorted(texts, key=int) == [str(i) for i in range(40)]


def test_overwrite_keeps_the_finished_run_until_the_new_one_is_ready(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baton.training.classification as trainer_mod

    train = write_jsonl(tmp_path / "train.jsonl", _rows())
    run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train)))
    run = tmp_path / "run"
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    # A typo in the new inputs: refused before anything is touched.
    with pytest.raises(DataError, match="file not found"):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(tmp_path / "tarin.jsonl"), overwrite=True))
    # The new run dies after training, before its model is saved: the old run is still whole.
    monkeypatch.setattr(trainer_mod, "write_run", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_training(_cfg(tiny_model_dir, tmp_path, train_file=str(train), overwrite=True, seed=7))
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and "checkpoints" not in p.parts}
    kept = {k: v for k, v in before.items() if "checkpoints" not in k.parts}
    assert after.keys() >= kept.keys() and all(after[k] == v for k, v in kept.items())


def test_a_max_length_past_the_position_table_is_refused(tiny_model_dir: Path, tiny_run: Path, tmp_path: Path) -> None:
    """The tiny BERT has 128 positions: a longer --max-length would train, then fail on long texts at serve time."""
    import shutil

    from baton.errors import ExportError
    from baton.export import ExportConfig, export_bundle
    from baton.training import run_training

    cfg = TrainConfig(
        model=str(tiny_model_dir),
        train_file=str(REVIEWS / "train.jsonl"),
        output_dir=str(tmp_path / "run"),
        max_length=256,
        few_shot=False,
    )
    with pytest.raises(ConfigError, match=r"--max-length 256 is past the model's 128 positions; use --max-length 128"):
        run_training(cfg)
    assert not (tmp_path / "run" / "model").exists()
    # a run edited (or trained before this check) to claim more is refused by export
    run = shutil.copytree(tiny_run, tmp_path / "edited")
    args = json.loads((run / "train_args.json").read_text())
    (run / "train_args.json").write_text(json.dumps({**args, "max_length": 1024}))
    with pytest.raises(ExportError, match="past the model's 128 positions"):
        export_bundle(ExportConfig(run_dir=str(run), output=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists()


def test_an_output_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    """Issue 29: `--output` naming a file was a traceback, exit 1."""
    (tmp_path / "run").write_text("not a folder")
    proc = _cli("train", "--train-file", str(REVIEWS / "train.jsonl"), "--output", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: --output: {tmp_path / 'run'} is a file, not a run directory; name a folder"
    ]

"""What the parity gates compare on: the samples (from `--calibration-file` or the run's validation split), the
bundle's tokenizer.json staged beside them, and the samples encoded through the runtime's own task. Also the
calibration texts whose activation ranges fix int8's scales: the run's training split (a seeded sample of
`calibration_texts`), or `--calibration-file` when given; never the validation split the gates judge on."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import ExportError
from baton.export import parity
from baton.export.config import ExportConfig
from baton.export.tasks import export_task
from baton.serving.encoder import TextEncoder
from baton.serving.manifest import TokenizerSpec
from baton.task import Task
from baton.training.rundir import TrainedRun

__all__ = ["Samples", "parity_inputs", "parity_samples", "write_tokenizer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Samples:
    texts: list[str]
    pairs: list[str] | None
    label_ids: np.ndarray | None
    source: str
    spans: list[set[tuple[str, int, int]]] | None = None  # entity models: gold (type, start, end) character spans
    calibration: list[str] = field(default_factory=list)  # texts whose activation ranges fix int8's scales
    calibration_pairs: list[str] | None = None
    calibration_source: str = ""


def _sample(count: int, limit: int) -> list[int]:
    """A seeded sample of at most `limit` of `count` row indices, in file order."""
    rows = list(range(count))
    if count <= limit:
        return rows
    return sorted(random.Random(0).sample(rows, limit))


def _token_samples(cfg: ExportConfig, run: TrainedRun) -> Samples:
    from baton.training.config import TrainConfig
    from baton.training.ner_data import joined_text, read_token_file
    from baton.training.token_classification import prepare_token_data

    if cfg.calibration_file:
        tc = run.train_args["config"]
        f = read_token_file(
            cfg.calibration_file, "--calibration-file", tc["tokens_column"], tc["tags_column"], tc.get("tag_names")
        )
        sentences, source = f.sentences, f"--calibration-file {cfg.calibration_file}"
        calibration, cal_source = sentences, source
        unknown = sorted({t for s in sentences for t in s.tags} - set(run.labels))
        if unknown:
            raise ExportError(f"--calibration-file: tags the model does not know: {', '.join(unknown[:5])}")
    else:
        try:
            data = prepare_token_data(TrainConfig(**run.train_args["config"]))
        except ModuleNotFoundError:
            raise
        except Exception as exc:
            raise ExportError(
                f"cannot reload the run's validation split ({exc}); pass --calibration-file with tagged sentences"
            ) from exc
        sentences, source = data.validation, f"validation split: {data.validation_source}"
        calibration, cal_source = data.train, "training split"
    pairs = [joined_text(s.words, s.tags) for s in sentences[: cfg.parity_samples]]
    cal = [" ".join(calibration[i].words) for i in _sample(len(calibration), cfg.calibration_texts)]
    return Samples([t for t, _ in pairs], None, None, source, [g for _, g in pairs], cal, None, cal_source)


def _class_samples(cfg: ExportConfig, run: TrainedRun) -> Samples:
    from baton.training.config import TrainConfig
    from baton.training.data import load_labelled_file, prepare_data
    from baton.training.metrics import encode_label_ids

    train_args = run.train_args
    text_col, pair_col, label_col = (
        train_args["text_column"],
        train_args["text_pair_column"],
        train_args["label_column"],
    )
    if cfg.calibration_file:
        ds = load_labelled_file(cfg.calibration_file, "--calibration-file")
        source = f"--calibration-file {cfg.calibration_file}"
        missing = [c for c in (text_col, pair_col) if c and c not in ds.column_names]
        if missing:
            raise ExportError(
                f"--calibration-file: no column(s) {', '.join(missing)}; found {', '.join(ds.column_names)}"
            )
        text_cols = [c for c in (text_col, pair_col) if c]
        ds = ds.filter(lambda r: all(isinstance(r[c], str) and r[c].strip() != "" for c in text_cols))
        calibration, cal_source = ds, source
        label_ids = None
        if label_col in ds.column_names:
            try:
                label_ids = encode_label_ids(ds[label_col][: cfg.parity_samples], run.labels, run.multi_label)
            except KeyError:
                logger.warning("--calibration-file has labels the model does not know: accuracy is not gated")
    else:
        try:
            data = prepare_data(TrainConfig(**train_args["config"]))
        except ModuleNotFoundError:
            raise  # a missing package: the CLI names the extra to install
        except Exception as exc:
            raise ExportError(
                f"cannot reload the run's validation split ({exc}); pass --calibration-file with labelled texts"
            ) from exc
        ds, source = data.validation, f"validation split: {data.validation_source}"
        calibration, cal_source = data.train, "training split"
        label_ids = np.asarray(ds["labels"][: cfg.parity_samples])
    ds = ds.select(range(min(cfg.parity_samples, len(ds))))
    cal = calibration.select(_sample(len(calibration), cfg.calibration_texts))
    return Samples(
        list(ds[text_col]),
        list(ds[pair_col]) if pair_col else None,
        label_ids,
        source,
        calibration=list(cal[text_col]),
        calibration_pairs=list(cal[pair_col]) if pair_col else None,
        calibration_source=cal_source,
    )


def write_tokenizer(model_dir: Path, dest: Path, max_length: int) -> dict[str, Any]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # The manifest says how to pad and truncate; the runtime sets both. A baked-in fixed padding would cost ~4x.
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(dest))
    tok_cfg_path = model_dir / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text()) if tok_cfg_path.is_file() else {}
    pad_token = tok_cfg.get("pad_token") or "[PAD]"
    pad_id = tok.token_to_id(pad_token)
    if pad_id is None:
        raise ExportError(f"the tokenizer has no pad token {pad_token!r}")
    return {
        "file": dest.name,
        "max_length": max_length,
        "truncation_side": tok_cfg.get("truncation_side", "right"),
        "lowercase": bool(tok_cfg.get("do_lower_case", False)),
        "pad_id": pad_id,
        "pad_token": pad_token,
    }


def parity_samples(cfg: ExportConfig, run: TrainedRun) -> Samples:
    """Up to `--parity-samples` texts the gates compare on: `--calibration-file`, or the run's validation split."""
    return _SAMPLES[run.task](cfg, run)


_SAMPLES: dict[Task, Callable[[ExportConfig, TrainedRun], Samples]] = {
    Task.CLASSIFICATION: _class_samples,
    Task.ENTITIES: _token_samples,
}


def parity_inputs(
    cfg: ExportConfig, run: TrainedRun, staging: Path, input_names: list[str], samples: Samples | None = None
) -> tuple[parity.ParityInputs, dict[str, Any], parity.Judge]:
    """Write the bundle's tokenizer.json into `staging` and encode the parity samples through it with the runtime's
    own task, so the gates see the texts exactly as the server will. Returns (inputs, tokenizer manifest, judge)."""
    samples = samples or parity_samples(cfg, run)
    tok_meta = write_tokenizer(run.root / "model", staging / "tokenizer.json", int(run.train_args["max_length"]))
    encoder = TextEncoder(staging / "tokenizer.json", TokenizerSpec.parse(tok_meta), input_names)
    exporting = export_task(run.task)
    task = exporting.runtime(run, encoder)
    inputs = parity.encode_for_parity(
        task, samples.texts, samples.pairs, samples.label_ids, samples.source, run.threshold
    )
    if samples.calibration:
        cal = parity.encode_for_parity(task, samples.calibration, samples.calibration_pairs, None, "")
        inputs = replace(inputs, calibration=cal.encoded, calibration_source=samples.calibration_source)
    judge = exporting.judge(inputs, task, samples.spans, run)
    return inputs, tok_meta, judge

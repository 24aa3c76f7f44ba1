"""`baton export`: run directory → verified bundle, written atomically.

The steps, each in its own module: the run is read (training/rundir.py) and must beat a constant answer
(gates.py); Optimum exports fp32 ONNX and it is optimised (onnx.py; few-shot runs get their pooling and head
appended, pooled_head.py); the parity samples are encoded through the runtime's own task (samples.py); fp32, then
int8 or fp16 pass their gates (gates.py, parity.py); the manifest is assembled (bundle_manifest.py) and the staged
bundle replaces any old one in one rename (baton/_io.py). The task's part of each step is in tasks.py."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton._io import recover_replaced, replace_dir, write_json_atomic
from baton._ort import new_session
from baton.errors import ExportError, GateError, ModelError
from baton.export import onnx as onnx_steps
from baton.export import parity, pooled_head
from baton.export.bundle_manifest import build_manifest, file_entry
from baton.export.card import CARD_FILE, model_card
from baton.export.config import ExportConfig, Quantize
from baton.export.gates import check_trained, gate_fp16, gate_fp32, int8_ladder
from baton.export.samples import parity_inputs, parity_samples
from baton.export.tasks import task_of_architecture
from baton.serving.bundle import MANIFEST, Bundle, load_bundle
from baton.serving.long_text import LongText, LongTextSpec
from baton.task import Task
from baton.training.rundir import read_run

__all__ = ["ExportResult", "export_bundle", "remove_stale_work_dirs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    bundle: Bundle
    parity: dict[str, Any]
    fallback_reason: str | None


def _check_positions(model_dir: Path, max_length: int) -> None:
    """A run whose max_length is past its model's position table would export a bundle that fails on long texts."""
    from baton.errors import ConfigError
    from baton.training.models import check_max_length

    try:
        check_max_length(str(model_dir), max_length)
    except ConfigError as exc:
        raise ExportError(f"{model_dir.parent}: the run's {exc}; retrain it with a smaller --max-length") from exc


def _pooled_head(model_dir: Path) -> Any:
    """A few-shot run's pooling and head (training/fewshot.py), or None for a model with its own head."""
    from baton.training.fewshot import read_head

    try:
        return read_head(model_dir)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{model_dir}/head.json is not a valid few-shot head: {exc}") from exc


def export_bundle(cfg: ExportConfig) -> ExportResult:
    started = time.perf_counter()
    run_dir, output = Path(cfg.run_dir), Path(cfg.output)
    try:
        run = read_run(run_dir)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    head = _pooled_head(run_dir / "model")
    task = Task.CLASSIFICATION if head is not None else task_of_architecture(run.config)
    check_trained(run.metrics, cfg)
    long_text = _long_text(cfg, task, run)  # before minutes of export: a flag the model cannot use fails now
    recover_replaced(output)
    if output.exists() and not cfg.overwrite:
        raise ExportError(f"--output: {output} already exists; pass --overwrite to replace it")
    max_length = int(run.train_args["max_length"])
    _check_positions(run_dir / "model", max_length)
    device_provider = "cpu" if cfg.device == "cpu" else "cuda"

    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work_dirs(output)
    work = Path(tempfile.mkdtemp(prefix=f"{_work_prefix(output)}{os.getpid()}-", dir=output.parent))
    try:
        samples = parity_samples(cfg, run)  # first: bad data fails before minutes of export
        onnx_dir = onnx_steps.export_fp32(run_dir / "model", work, "feature-extraction" if head else task, cfg.opset)
        if head is not None:
            pooled_head.attach_head(onnx_dir / "model.onnx", head)
        fp32_file = onnx_steps.optimize_graph(onnx_dir, cfg.optimize, for_gpu=cfg.device == "cuda")
        input_names = [i.name for i in new_session(fp32_file).get_inputs()]
        staging = work / "bundle"
        staging.mkdir()
        inputs, tok_meta, judge = parity_inputs(cfg, run, staging, input_names, samples)
        logger.info("parity samples: %d from %s", inputs.size, inputs.source)
        ref = (
            pooled_head.torch_logits(run_dir / "model", inputs, head)
            if head is not None
            else parity.torch_logits(run_dir / "model", inputs, judge.auto_class)
        )
        logits = {"torch": ref, "fp32": parity.onnx_logits(fp32_file, inputs)}
        report: dict[str, Any] = {"samples": inputs.size, "source": inputs.source, "threshold": inputs.threshold}
        report["fp32_vs_torch"] = gate_fp32(judge, ref, logits["fp32"], cfg)
        if not report["fp32_vs_torch"]["passed"]:
            g = report["fp32_vs_torch"]
            raise GateError(
                f"parity gate failed: fp32 ONNX vs PyTorch max |Δlogit| {g['max_abs_logit_diff']:.2e} "
                f"(limit {cfg.gates.max_abs_logit_diff:.0e}), argmax agreement {g['argmax_agreement']:.4f} (must be 1)"
            )
        files = {"model.onnx": (fp32_file, "fp32", device_provider)}
        fallback: str | None = None
        if cfg.device == "cuda":
            fp16_file = onnx_steps.to_fp16(onnx_dir)
            report["fp16_vs_fp32"], keep = gate_fp16(cfg, fp16_file, inputs, logits, judge)
            if keep:
                files["model.fp16.onnx"] = (fp16_file, "fp16", "cuda")
            else:
                fallback = report["fp16_vs_fp32"]["fallback"]
                report["fallback"] = fallback
        elif cfg.quantize is Quantize.INT8:
            int8_file, fallback = int8_ladder(cfg, fp32_file, onnx_dir / "model.onnx", inputs, logits, judge, report)
            if int8_file is not None:
                files["model.int8.onnx"] = (int8_file, "int8", "cpu")
        report["accuracy"] = parity.summary(judge, logits)
        report["quality_metric"] = judge.quality_name

        entries: dict[str, Any] = {}
        for name, (src, variant, provider) in files.items():
            shutil.copy2(src, staging / name)
            entries[name] = file_entry(staging / name, variant=variant, provider=provider)
        entries["tokenizer.json"] = file_entry(staging / "tokenizer.json")
        parts: dict[str, Any] = {
            "name": output.name,
            "task": task,
            "run": run,
            "input_names": input_names,
            "tok_meta": tok_meta,
            "long_text": long_text,
        }
        # The card is written from the manifest without it, then listed (and checksummed) in the final manifest.
        draft = build_manifest(**parts, entries=entries, report=report, started=started)
        (staging / CARD_FILE).write_text(model_card(draft, run), encoding="utf-8")
        entries[CARD_FILE] = file_entry(staging / CARD_FILE)
        manifest = build_manifest(**parts, entries=entries, report=report, started=started, card=CARD_FILE)
        write_json_atomic(staging / MANIFEST, manifest)  # last: a bundle without it is refused on load
        replace_dir(staging, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(load_bundle(output), report, fallback)


def _long_text(cfg: ExportConfig, task: Task, run: Any) -> dict[str, Any] | None:
    """A classifier's default for texts past the window (serving/long_text.py); entity models read windows."""
    if task is not Task.CLASSIFICATION:
        if cfg.long_text is not LongText.TRUNCATE:
            raise ExportError("--long-text: an entity model always reads a long text in windows")
        return None
    if cfg.long_text is LongText.CHUNK and run.train_args.get("text_pair_column"):
        raise ExportError("--long-text chunk: a sentence-pair model's texts are never chunked")
    stride = min(LongTextSpec.stride, int(run.train_args["max_length"]) // 4)  # a quarter of a short window
    return LongTextSpec(mode=cfg.long_text, combine=cfg.chunk_combine, stride=stride).to_manifest()


def _work_prefix(output: Path) -> str:
    return f".{output.name}.export-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_work_dirs(output: Path) -> list[Path]:
    """Delete the work folders of earlier exports to `output` whose process is gone (killed, power cut)."""
    removed = []
    for path in output.parent.glob(f"{_work_prefix(output)}*"):
        pid_text = path.name[len(_work_prefix(output)) :].split("-", 1)[0]
        if path.is_dir() and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            logger.info("removing %s, left by an interrupted export (process %s is gone)", path, pid_text)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed

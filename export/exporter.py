"""`baton export`: run directory → verified bundle, written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from baton._io import write_json_atomic
from baton._ort import new_session
from baton.errors import ExportError, GateError
from baton.export import onnx as onnx_steps
from baton.export import parity, pooled_head
from baton.export.config import ExportConfig, Quantize
from baton.serving.bundle import MANIFEST, SCHEMA_VERSION, Bundle, load_bundle, sha256_of
from baton.serving.encoder import TextEncoder
from baton.serving.manifest import INPUTS_PAIR, INPUTS_TEXT, Manifest, TokenizerSpec

__all__ = [
    "ExportResult",
    "TrainedRun",
    "export_bundle",
    "parity_inputs",
    "read_run",
    "recover_interrupted_swap",
    "remove_stale_work_dirs",
]

logger = logging.getLogger(__name__)

_TASKS = {"ForSequenceClassification": "text-classification", "ForTokenClassification": "token-classification"}


@dataclass(frozen=True)
class ExportResult:
    bundle: Bundle
    parity: dict[str, Any]
    fallback_reason: str | None


@dataclass(frozen=True)
class TrainedRun:
    """A finished `baton train` run directory, read once: its model config, train_args.json and metrics.json."""

    root: Path
    config: dict[str, Any]
    train_args: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def labels(self) -> list[str]:
        return [self.config["id2label"][str(i)] for i in range(len(self.config["id2label"]))]

    @property
    def multi_label(self) -> bool:
        return self.config.get("problem_type") == "multi_label_classification"

    @property
    def aggregation(self) -> str:
        """An entity model's default aggregation: `first`. Measured on CoNLL-2003 validation through the runtime:
        a first-sub-token run scored 0.49 (`first`) vs 0.32 (`simple`) on a slice, and even a `--label-all-tokens`
        run scored 0.909 (`first`) vs 0.874 (`simple`) on the whole split: token-level grouping cuts entities at
        the pre-tokenizer's splits inside words ("U.S.", "ex-England"), word-level grouping does not."""
        return "first"

    @property
    def task(self) -> str:
        return str(self.train_args.get("task") or "text-classification")

    @property
    def threshold(self) -> float:
        """The decision threshold the run chose (multi-label: tuned on validation or --threshold); older runs:
        the config's."""
        args = self.train_args
        return float(args.get("threshold") or args.get("config", {}).get("threshold") or 0.5)


def read_run(run_dir: str | Path) -> TrainedRun:
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{run_dir} holds no trained model ({model_dir}/config.json): run `baton train` first")
    if not (run_dir / "metrics.json").is_file():
        raise ExportError(f"{run_dir} is not a finished run (no metrics.json): finish or resume `baton train`")
    return TrainedRun(
        run_dir,
        json.loads((model_dir / "config.json").read_text()),
        json.loads((run_dir / "train_args.json").read_text()),
        json.loads((run_dir / "metrics.json").read_text()),
    )


def _check_trained(metrics: dict[str, Any], cfg: ExportConfig) -> None:
    """Refuse a run that does not beat the best constant answer: its parity gates would compare two useless models."""
    trivial = metrics.get("trivial_baseline")
    if trivial is None or trivial.get("beaten", True) or cfg.allow_untrained:
        return
    name = trivial["metric"]
    got = metrics.get("validation", {}).get(name)
    if trivial.get("judgeable") is False:
        rows = metrics.get("validation", {}).get("samples", "too few")
        raise ExportError(
            f"{cfg.run_dir}: its validation split ({rows} rows) is too small to show that the model beats a constant "
            f"answer (validation {name} {got:.4f} vs {trivial['value']:.4f}). Retrain with a --validation-file of more "
            "labelled rows, or pass --allow-untrained to export it anyway"
        )
    raise ExportError(
        f"{cfg.run_dir} does not beat the trivial baseline (validation {name} {got:.4f} vs {trivial['value']:.4f} "
        "for a constant answer): it learned little beyond the label prior. Fix the recipe, or pass "
        "--allow-untrained to export it anyway"
    )


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


def _task_of(config: dict[str, Any]) -> str:
    for arch in config.get("architectures") or []:
        for suffix, task in _TASKS.items():
            if arch.endswith(suffix):
                return task
    raise ExportError(
        f"unsupported architecture for export: {config.get('architectures')} (supported heads: {', '.join(_TASKS)})"
    )


@dataclass(frozen=True)
class _Samples:
    texts: list[str]
    pairs: list[str] | None
    label_ids: np.ndarray | None
    source: str
    spans: list[set[tuple[str, int, int]]] | None = None  # entity models: gold (type, start, end) character spans


def _token_samples(cfg: ExportConfig, run: TrainedRun) -> _Samples:
    from baton.training.config import TrainConfig
    from baton.training.ner_data import joined_text, read_token_file
    from baton.training.token_trainer import prepare_token_data

    if cfg.calibration_file:
        tc = run.train_args["config"]
        f = read_token_file(
            cfg.calibration_file, "--calibration-file", tc["tokens_column"], tc["tags_column"], tc.get("tag_names")
        )
        sentences, source = f.sentences, f"--calibration-file {cfg.calibration_file}"
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
    pairs = [joined_text(s.words, s.tags) for s in sentences[: cfg.parity_samples]]
    return _Samples([t for t, _ in pairs], None, None, source, [g for _, g in pairs])


def _parity_samples(cfg: ExportConfig, run: TrainedRun) -> _Samples:
    if run.task == "token-classification":
        return _token_samples(cfg, run)
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
        label_ids = np.asarray(ds["labels"][: cfg.parity_samples])
    ds = ds.select(range(min(cfg.parity_samples, len(ds))))
    return _Samples(list(ds[text_col]), list(ds[pair_col]) if pair_col else None, label_ids, source)


def parity_inputs(
    cfg: ExportConfig, run: TrainedRun, staging: Path, input_names: list[str], samples: _Samples | None = None
) -> tuple[parity.ParityInputs, dict[str, Any], parity.Judge]:
    """Write the bundle's tokenizer.json into `staging` and encode the parity samples through it with the runtime's
    own task, so the gates see the texts exactly as the server will. Returns (inputs, tokenizer manifest, judge)."""
    from baton.serving.tasks.classification import Classification
    from baton.serving.tasks.token_classification import TokenClassification

    samples = samples or _parity_samples(cfg, run)
    tok_meta = _write_tokenizer(run.root / "model", staging / "tokenizer.json", int(run.train_args["max_length"]))
    encoder = TextEncoder(staging / "tokenizer.json", TokenizerSpec.parse(tok_meta), input_names)
    task: Any
    if run.task == "token-classification":
        task = TokenClassification(run.labels, encoder, run.aggregation, int(run.train_args.get("stride", 0)))
    else:
        task = Classification(run.labels, encoder, run.multi_label, run.threshold)
    inputs = parity.encode_for_parity(
        task, samples.texts, samples.pairs, samples.label_ids, samples.source, run.threshold
    )
    judge: parity.Judge = (
        parity.TokenJudge(inputs, task, samples.spans)
        if run.task == "token-classification"
        else parity.ClassificationJudge(inputs, run.multi_label)
    )
    return inputs, tok_meta, judge


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("baton", "onnxruntime", "onnx", "optimum-onnx", "optimum", "transformers", "torch", "tokenizers"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _write_tokenizer(model_dir: Path, dest: Path, max_length: int) -> dict[str, Any]:
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


def _gate_fp32(
    judge: parity.Judge, torch_out: list[np.ndarray], fp32: list[np.ndarray], cfg: ExportConfig
) -> dict[str, Any]:
    diff = judge.max_abs_diff(torch_out, fp32)
    agree = judge.agreement(torch_out, fp32)
    passed = diff <= cfg.gates.max_abs_logit_diff and agree == 1.0
    return {
        "max_abs_logit_diff": diff,
        "argmax_agreement": agree,
        "limit": cfg.gates.max_abs_logit_diff,
        "passed": passed,
    }


def _int8_verdict(
    judge: parity.Judge, fp32: list[np.ndarray], int8: list[np.ndarray], cfg: ExportConfig
) -> dict[str, Any]:
    """Every int8 figure of one recipe, and whether it passes the configured gate (`GateThresholds`)."""
    gates = cfg.gates
    agree = judge.agreement(fp32, int8)
    sure_agree, sure_share = parity.confident_agreement(judge, fp32, int8, gates.confident_margin)
    acc = parity.summary(judge, {"fp32": fp32, "int8": int8})
    drop = acc["fp32"] - acc["int8"] if acc else None
    right32, right8 = judge.correct(fp32), judge.correct(int8)
    low = high = drop
    if right32 is not None and right8 is not None:
        drop, low, high = parity.paired_drop(right32, right8)
    if gates.int8_gate == "agreement":
        passed = agree >= gates.min_int8_agreement and (drop is None or drop <= gates.max_int8_accuracy_drop)
    else:
        # a drop over the limit fails when it is real (its interval lies above zero), and at 3x the limit anyway
        limit = gates.max_int8_accuracy_drop
        real_drop = drop is not None and ((drop > limit and low is not None and low > 0) or drop > 3 * limit)
        passed = sure_agree >= gates.min_int8_agreement and not real_drop
    return {
        "gate": gates.int8_gate,
        "argmax_agreement": agree,
        "confident_agreement": sure_agree,
        "confident_share": sure_share,
        "confident_margin": gates.confident_margin,
        "accuracy_drop": drop,
        "accuracy_drop_95ci": None if drop is None else [low, high],
        "passed": passed,
    }


def _int8_attempt(
    recipe: str,
    fp32_matmuls: int,
    judge: parity.Judge,
    fp32: list[np.ndarray],
    batched: list[np.ndarray],
    alone: list[np.ndarray],
    cfg: ExportConfig,
) -> dict[str, Any]:
    """One recipe, gated in the two batchings a server produces: length-sorted batches (busy) and each text alone
    (idle). Dynamic int8's activation scales are per batch, so a text's answer depends on its batch-mates; passing
    both bounds how far: on confident decisions, batch-mates can change at most the two disagreements added."""
    verdict = _int8_verdict(judge, fp32, batched, cfg)
    alone_verdict = _int8_verdict(judge, fp32, alone, cfg)
    return {
        "recipe": recipe,
        "fp32_matmuls": fp32_matmuls,
        **verdict,
        "passed": verdict["passed"] and alone_verdict["passed"],
        "alone": {k: alone_verdict[k] for k in ("argmax_agreement", "confident_agreement", "accuracy_drop", "passed")},
        "batch_effect": parity.batch_effect(judge, batched, alone, cfg.gates.confident_margin),
    }


def _int8_ladder(
    cfg: ExportConfig,
    fused_file: Path,
    plain_file: Path,
    inputs: parity.ParityInputs,
    logits: dict[str, list[np.ndarray]],
    judge: parity.Judge,
    report: dict[str, Any],
) -> tuple[Path | None, str | None]:
    """Try the int8 recipes in order; keep the first that passes the gate. Returns (file or None, fallback reason)."""
    preset = cfg.resolved_preset
    attempts: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    model_file, graph = onnx_steps.quantizable_graph(fused_file, plain_file)
    for recipe in onnx_steps.INT8_RECIPES:
        exclude = onnx_steps.int8_exclusions(model_file, recipe)
        if tuple(exclude) in seen:
            continue  # this architecture's names did not match: same model as an earlier recipe
        seen.add(tuple(exclude))
        int8_file = onnx_steps.quantize_int8(model_file, preset, exclude, tag=f"int8-{recipe}")
        out, alone = parity.both_batchings(int8_file, inputs)
        attempt = _int8_attempt(recipe, len(exclude), judge, logits["fp32"], out, alone, cfg)
        ok = attempt["passed"]
        agree, drop = attempt["argmax_agreement"], attempt["accuracy_drop"]
        attempts.append(attempt)
        logger.info(
            "int8 recipe %s: agreement %.4f (%.4f where fp32 is sure; alone %.4f), accuracy drop %s, "
            "%d of %d decisions change with the batching -> %s",
            recipe,
            agree,
            attempt["confident_agreement"],
            attempt["alone"]["confident_agreement"],
            drop,
            attempt["batch_effect"]["flips"],
            attempt["batch_effect"]["decisions"],
            "pass" if ok else "fail",
        )
        if ok:
            logits["int8"] = out
            report["int8_vs_fp32"] = {
                "preset": preset.value,
                "graph": graph,
                **attempts[-1],
                "attempts": attempts,
                "min_agreement": cfg.gates.min_int8_agreement,
                "max_accuracy_drop": cfg.gates.max_int8_accuracy_drop,
            }
            return int8_file, None
    key = "argmax_agreement" if cfg.gates.int8_gate == "agreement" else "confident_agreement"
    best = max(attempts, key=lambda a: min(a[key], a["alone"][key]))
    drop = best["accuracy_drop"]
    why = (
        f"no int8 recipe passed the {cfg.gates.int8_gate} gate: best {best['recipe']} with "
        f"{key.replace('_', ' ')} {best[key]:.4f} in batches and {best['alone'][key]:.4f} alone "
        f"(min {cfg.gates.min_int8_agreement}), accuracy drop "
        f"{'n/a' if drop is None else f'{drop * 100:.2f} points'} (max {cfg.gates.max_int8_accuracy_drop * 100:.1f})"
    )
    report["int8_vs_fp32"] = {
        "preset": preset.value,
        "graph": graph,
        "passed": False,
        "attempts": attempts,
        **{k: best[k] for k in ("recipe", "argmax_agreement", "accuracy_drop")},
    }
    if not cfg.allow_fallback:
        raise GateError(f"parity gate failed: {why}; pass --allow-fallback to ship fp32 only")
    report["fallback"] = f"int8 dropped: {why}"
    logger.warning("int8 gate failed, keeping fp32 only: %s", why)
    return None, why


def _gate_fp16(
    cfg: ExportConfig,
    fp16_file: Path,
    inputs: parity.ParityInputs,
    logits: dict[str, list[np.ndarray]],
    judge: parity.Judge,
) -> tuple[dict[str, Any], bool]:
    """fp16 vs fp32 agreement, measured only on the CUDA provider (fp16 on the CPU provider proves nothing about
    the GPU). Returns (report, keep): with no GPU here it is recorded as not measured and the file is kept."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        logger.warning("fp16 gate NOT MEASURED: no CUDA provider here; run `baton export --device cuda` on a GPU")
        return {"measured": False, "why": "no CUDA provider on the exporting machine: not measured"}, True
    logits["fp16"] = parity.onnx_logits(fp16_file, inputs, "CUDAExecutionProvider")
    agree = judge.agreement(logits["fp32"], logits["fp16"])
    passed = agree >= cfg.gates.min_fp16_agreement
    report = {
        "measured": True,
        "measured_on": "cuda",
        "argmax_agreement": agree,
        "min_agreement": cfg.gates.min_fp16_agreement,
        "passed": passed,
    }
    if passed:
        return report, True
    why = f"fp16 vs fp32 agreement {agree:.4f} (min {cfg.gates.min_fp16_agreement})"
    if not cfg.allow_fallback:
        raise GateError(f"parity gate failed: {why}; pass --allow-fallback to ship fp32 only")
    del logits["fp16"]
    return {**report, "fallback": f"fp16 dropped: {why}"}, False


def _entry(path: Path, **extra: str) -> dict[str, Any]:
    return {**extra, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def export_bundle(cfg: ExportConfig) -> ExportResult:
    started = time.perf_counter()
    run_dir, output = Path(cfg.run_dir), Path(cfg.output)
    run = read_run(run_dir)
    head = _pooled_head(run_dir / "model")
    task = "text-classification" if head is not None else _task_of(run.config)
    _check_trained(run.metrics, cfg)
    recover_interrupted_swap(output)
    if output.exists() and not cfg.overwrite:
        raise ExportError(f"--output: {output} already exists; pass --overwrite to replace it")
    max_length = int(run.train_args["max_length"])
    _check_positions(run_dir / "model", max_length)
    pairs = bool(run.train_args.get("text_pair_column"))
    device_provider = "cpu" if cfg.device == "cpu" else "cuda"

    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work_dirs(output)
    work = Path(tempfile.mkdtemp(prefix=f"{_work_prefix(output)}{os.getpid()}-", dir=output.parent))
    try:
        samples = _parity_samples(cfg, run)  # first: bad data fails before minutes of export
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
        report["fp32_vs_torch"] = _gate_fp32(judge, ref, logits["fp32"], cfg)
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
            report["fp16_vs_fp32"], keep = _gate_fp16(cfg, fp16_file, inputs, logits, judge)
            if keep:
                files["model.fp16.onnx"] = (fp16_file, "fp16", "cuda")
            else:
                fallback = report["fp16_vs_fp32"]["fallback"]
                report["fallback"] = fallback
        elif cfg.quantize is Quantize.INT8:
            int8_file, fallback = _int8_ladder(cfg, fp32_file, onnx_dir / "model.onnx", inputs, logits, judge, report)
            if int8_file is not None:
                files["model.int8.onnx"] = (int8_file, "int8", "cpu")
        report["accuracy"] = parity.summary(judge, logits)
        report["quality_metric"] = judge.quality_name

        token_fields: dict[str, Any] = {}
        if task == "token-classification":
            token_fields = {
                "scheme": run.train_args.get("scheme", "IOB2"),
                "aggregation": run.aggregation,
                "stride": int(run.train_args.get("stride", 0)),
            }
        entries: dict[str, Any] = {}
        for name, (src, variant, provider) in files.items():
            shutil.copy2(src, staging / name)
            entries[name] = _entry(staging / name, variant=variant, provider=provider)
        entries["tokenizer.json"] = _entry(staging / "tokenizer.json")
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "name": output.name,
            "task": task,
            "problem_type": "token_classification"
            if task == "token-classification"
            else run.config.get("problem_type") or "single_label_classification",
            "labels": run.labels,
            "threshold": run.threshold,
            "max_length": max_length,
            "inputs": list(INPUTS_PAIR if pairs else INPUTS_TEXT),
            **token_fields,
            "input_names": input_names,
            "base_model": run.train_args.get("base_model"),
            "tokenizer": tok_meta,
            "files": entries,
            "training_metrics": {k: run.metrics[k] for k in ("validation", "test") if k in run.metrics},
            "parity": report,
            "versions": _versions(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "export_seconds": round(time.perf_counter() - started, 1),
        }
        Manifest.parse(manifest)  # what we write must be what every reader accepts
        write_json_atomic(staging / MANIFEST, manifest)  # last: a bundle without it is refused on load
        _swap_into_place(staging, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(load_bundle(output), report, fallback)


def _work_prefix(output: Path) -> str:
    return f".{output.name}.export-"


def _old_path(output: Path) -> Path:
    return output.parent / f".{output.name}.old"


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


def recover_interrupted_swap(output: Path) -> None:
    """An export killed between its two renames left the old bundle at `.NAME.old` and nothing at NAME: put it back.

    With NAME present, `.NAME.old` is the leftover of a finished swap and is deleted.
    """
    old = _old_path(output)
    if not old.is_dir():
        return
    if output.exists():
        shutil.rmtree(old, ignore_errors=True)
    else:
        logger.warning("restoring %s from %s (an export was interrupted while swapping bundles)", output, old)
        old.rename(output)


def _swap_into_place(staging: Path, output: Path) -> None:
    """Rename the finished bundle into place. An existing bundle is first renamed to `.NAME.old`; if the process
    dies between the two renames, the next export puts it back (`recover_interrupted_swap`), and loading NAME
    meanwhile fails with a message that says where the old bundle is."""
    old = _old_path(output)
    if old.exists():
        shutil.rmtree(old)
    if output.exists():
        output.rename(old)
    try:
        staging.rename(output)
    except BaseException:
        if old.exists():
            old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)

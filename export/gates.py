"""The export's gates: a run must beat a constant answer before it is exported; fp32 ONNX must match PyTorch; int8
and fp16 must match fp32 (GateThresholds in config.py). Each returns the figures the manifest records."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import ExportError, GateError
from baton.export import int8_schemes, parity
from baton.export import onnx as onnx_steps
from baton.export.config import ExportConfig

__all__ = ["MAX_INVARIANT_LOGIT_DIFF", "check_trained", "gate_fp16", "gate_fp32", "int8_ladder", "int8_verdict"]

logger = logging.getLogger(__name__)


def check_trained(metrics: dict[str, Any], cfg: ExportConfig) -> None:
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


def gate_fp32(
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


def int8_verdict(
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
    decisions = int(np.asarray(judge.margins(fp32)).size)
    if gates.int8_gate == "agreement":
        evidence = decisions
        passed = agree >= gates.min_int8_agreement and (drop is None or drop <= gates.max_int8_accuracy_drop)
    else:
        # a drop over the limit fails when it is real (its interval lies above zero), and at 3x the limit anyway
        limit = gates.max_int8_accuracy_drop
        real_drop = drop is not None and ((drop > limit and low is not None and low > 0) or drop > 3 * limit)
        passed = sure_agree >= gates.min_int8_agreement and not real_drop
        evidence = round(sure_share * decisions)
    judged = evidence >= gates.min_int8_evidence
    return {
        "gate": gates.int8_gate,
        "argmax_agreement": agree,
        "confident_agreement": sure_agree,
        "confident_share": sure_share,
        "confident_margin": gates.confident_margin,
        "accuracy_drop": drop,
        "accuracy_drop_95ci": None if drop is None else [low, high],
        "quality_metric": judge.quality_name,
        "evidence": evidence,
        "judged": judged,
        "passed": passed and judged,
    }


# A batch-invariant scheme's logits alone and in a batch differ only by float summation order (measured 0 on the
# SST-2 fine-tune; docs/decisions.md). More than this is a scheme that is not invariant: that recipe fails.
MAX_INVARIANT_LOGIT_DIFF = 1e-3


def _int8_attempt(
    recipe: str,
    fp32_matmuls: int,
    judge: parity.Judge,
    fp32: list[np.ndarray],
    batched: list[np.ndarray],
    alone: list[np.ndarray],
    cfg: ExportConfig,
    invariant: bool,
) -> dict[str, Any]:
    """One recipe, gated in the two batchings a server produces: length-sorted batches (busy) and each text alone
    (idle). With dynamic scales a text's answer depends on its batch-mates; passing both bounds how far: on confident
    decisions, batch-mates can change at most the two disagreements added. A batch-invariant scheme (`invariant`)
    must give the same decisions both ways, within float summation order (MAX_INVARIANT_LOGIT_DIFF)."""
    verdict = int8_verdict(judge, fp32, batched, cfg)
    alone_verdict = int8_verdict(judge, fp32, alone, cfg)
    effect = parity.batch_effect(judge, batched, alone, cfg.gates.confident_margin)
    same = effect["flips"] == 0 and effect["max_abs_logit_diff"] <= MAX_INVARIANT_LOGIT_DIFF
    return {
        "recipe": recipe,
        "fp32_matmuls": fp32_matmuls,
        **verdict,
        "passed": verdict["passed"] and alone_verdict["passed"] and (same or not invariant),
        "alone": {k: alone_verdict[k] for k in ("argmax_agreement", "confident_agreement", "accuracy_drop", "passed")},
        "batch_effect": {**effect, "required_invariant": invariant, "invariant": same},
    }


def int8_ladder(
    cfg: ExportConfig,
    fused_file: Path,
    plain_file: Path,
    inputs: parity.ParityInputs,
    logits: dict[str, list[np.ndarray]],
    judge: parity.Judge,
    report: dict[str, Any],
) -> tuple[Path | None, str | None]:
    """Try the int8 recipes in order with the configured scheme (int8_schemes.py); keep the first that passes the
    gate. Returns (file or None, fallback reason)."""
    chosen = int8_schemes.scheme(cfg, fused_file, plain_file, inputs)
    about = {"scales": chosen.scales.value, **chosen.record, "graph": chosen.graph}
    attempts: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for recipe in onnx_steps.INT8_RECIPES:
        exclude = onnx_steps.int8_exclusions(chosen.model_file, recipe)
        if tuple(exclude) in seen:
            continue  # this architecture's names did not match: same model as an earlier recipe
        seen.add(tuple(exclude))
        int8_file = chosen.quantize(exclude, f"int8-{recipe}")
        out, alone = parity.both_batchings(int8_file, inputs)
        attempt = _int8_attempt(recipe, len(exclude), judge, logits["fp32"], out, alone, cfg, chosen.batch_invariant)
        ok = attempt["passed"]
        agree, drop = attempt["argmax_agreement"], attempt["accuracy_drop"]
        attempts.append(attempt)
        logger.info(
            "int8 recipe %s: agreement %.4f (%.4f where fp32 is sure; alone %.4f), %s drop %s, "
            "%d of %d decisions change with the batching -> %s",
            recipe,
            agree,
            attempt["confident_agreement"],
            attempt["alone"]["confident_agreement"],
            judge.quality_name,
            "n/a" if drop is None else f"{drop * 100:+.2f} points",
            attempt["batch_effect"]["flips"],
            attempt["batch_effect"]["decisions"],
            "pass" if ok else "fail" if attempt["judged"] else "not enough evidence",
        )
        if not attempt["judged"]:  # the evidence is fp32's sure decisions: no other recipe has more
            return _unjudged(cfg, attempt, int8_file, out, logits, report, about)
        if ok:
            logits["int8"] = out
            report["int8_vs_fp32"] = {
                **about,
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
        f"(min {cfg.gates.min_int8_agreement}), {judge.quality_name} drop "
        f"{'n/a' if drop is None else f'{drop * 100:.2f} points'} (max {cfg.gates.max_int8_accuracy_drop * 100:.1f})"
    )
    if chosen.batch_invariant and not any(a["batch_effect"]["invariant"] for a in attempts):
        why += f"; answers changed with the batching, which {chosen.scales.value} scales must not"
    report["int8_vs_fp32"] = {
        **about,
        "passed": False,
        "attempts": attempts,
        **{k: best[k] for k in ("recipe", "argmax_agreement", "accuracy_drop")},
    }
    return _fall_back(cfg, why, report)


def _fall_back(cfg: ExportConfig, why: str, report: dict[str, Any]) -> tuple[None, str]:
    """fp32 only, recorded, when --allow-fallback is given; else the export fails naming `why`."""
    if not cfg.allow_fallback:
        raise GateError(f"parity gate failed: {why}; pass --allow-fallback to ship fp32 only")
    report["fallback"] = f"int8 dropped: {why}"
    logger.warning("int8 gate failed, keeping fp32 only: %s", why)
    return None, why


def _unjudged(
    cfg: ExportConfig,
    attempt: dict[str, Any],
    int8_file: Path,
    out: list[np.ndarray],
    logits: dict[str, list[np.ndarray]],
    report: dict[str, Any],
    about: dict[str, Any],
) -> tuple[Path | None, str | None]:
    """Too few decisions to judge int8 (GateThresholds.min_int8_evidence): the safer variant, fp32 alone, ships
    (recorded, with a warning), or int8 unjudged when asked with --allow-unjudged-int8."""
    sure = "where fp32 is sure" if cfg.gates.int8_gate == "confident" else "in all"
    why = (
        f"not enough evidence to judge int8: {attempt['evidence']} decisions {sure} (the gate needs "
        f"{cfg.gates.min_int8_evidence}); give more texts (--parity-samples, --calibration-file)"
    )
    report["int8_vs_fp32"] = {**about, **attempt, "attempts": [attempt]}
    if not cfg.allow_unjudged:
        why = f"{why}, or pass --allow-unjudged-int8 to ship it unjudged"
        report["fallback"] = f"int8 dropped: {why}"
        logger.warning("keeping fp32 only: %s", why)
        return None, why
    logits["int8"] = out
    report["int8_vs_fp32"]["shipped_unjudged"] = True
    logger.warning("%s: shipping int8 unjudged (--allow-unjudged-int8; recorded in the manifest)", why)
    return int8_file, None


def gate_fp16(
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

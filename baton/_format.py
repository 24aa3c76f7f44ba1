"""Human-readable summaries printed by the CLI and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["format_bundle", "format_train_summary"]


def format_bundle(root: Path) -> str:
    manifest = json.loads((root / "bundle.json").read_text())
    quality = manifest["parity"].get("quality_metric", "accuracy")
    lines = [f"bundle written to {root} ({manifest['task']})", f"variant  file               size      {quality}"]
    acc = manifest["parity"].get("accuracy", {})
    for name, entry in manifest["files"].items():
        if "variant" in entry:
            a = acc.get(entry["variant"])
            lines.append(
                f"{entry['variant']:<8} {name:<18} {entry['bytes'] / 2**20:6.1f} MiB  "
                + (f"{a:.4f}" if a is not None else "-")
            )
    parity = manifest["parity"]
    g = parity["fp32_vs_torch"]
    lines.append(
        f"parity ({parity['samples']} samples): fp32 vs torch max |Δlogit| {g['max_abs_logit_diff']:.2e}, "
        f"agreement {g['argmax_agreement']:.4f}"
    )
    if "int8_vs_fp32" in parity:
        q = parity["int8_vs_fp32"]
        drop = q["accuracy_drop"]
        sure = (
            f" ({q['confident_agreement']:.4f} where fp32 is sure, {q['confident_share']:.0%} of decisions)"
            if "confident_agreement" in q
            else ""
        )
        ci = q.get("accuracy_drop_95ci")
        lines.append(
            f"parity: int8 vs fp32 agreement {q['argmax_agreement']:.4f}{sure}, {quality} drop "
            + (f"{drop * 100:.2f} points" if drop is not None else "n/a")
            + (f" (95% CI {ci[0] * 100:+.2f}..{ci[1] * 100:+.2f})" if ci and ci[0] != ci[1] else "")
            + f" ({_scales(q)}, {q.get('graph', 'plain')} graph, recipe {q['recipe']}, "
            + f"{q.get('gate', 'agreement')} gate)"
        )
        effect, alone = q.get("batch_effect"), q.get("alone")
        if effect and alone:
            lines.append(
                f"parity: int8 alone {alone['confident_agreement']:.4f} where fp32 is sure; alone vs in batches "
                f"{effect['flips']} of {effect['decisions']} decisions differ ({effect['confident_flips']} at a "
                f"margin >= {effect['confident_margin']}), max |Δlogit| {effect['max_abs_logit_diff']:.2g}"
                + ("" if q.get("scales") == "fixed" else "; dynamic int8 scales activations per batch")
            )
    if "fallback" in parity:
        lines.append(f"fallback: {parity['fallback']}")
    return "\n".join(lines)


def _scales(q: dict[str, Any]) -> str:
    """The int8 scheme: fixed scales and their calibration, or dynamic with its preset (older bundles)."""
    if q.get("scales") == "fixed":
        cal = q.get("calibration") or {}
        return f"fixed scales from {cal.get('texts', '?')} texts of the {cal.get('source', '?')}"
    return f"dynamic scales, {q.get('preset', '?')}"


def format_train_summary(out: Path, metrics: dict[str, Any]) -> str:
    lines = [f"run written to {out}"]
    for split in ("validation", "test"):
        if split in metrics:
            m = metrics[split]
            if "entity_f1" in m:
                lines.append(
                    f"{split}: entity F1 {m['entity_f1']:.4f} (precision {m['entity_precision']:.4f}, recall "
                    f"{m['entity_recall']:.4f}), token accuracy {m['token_accuracy']:.4f}"
                )
                continue
            base = metrics.get("baseline", {}).get(split)
            before = f" (untrained head: accuracy {base['accuracy']:.4f})" if base else ""
            f1 = m.get("micro_f1", m["macro_f1"])
            f1_name = "micro_f1" if "micro_f1" in m else "macro_f1"
            lines.append(f"{split}: accuracy {m['accuracy']:.4f}, {f1_name} {f1:.4f}{before}")
    if "decision_threshold" in metrics:
        lines.append(f"decision threshold: {metrics['decision_threshold']:.2f} (tuned on validation)")
    trivial = metrics.get("trivial_baseline")
    if "warnings" in metrics:
        lines += [f"WARNING: {w['message']}. Fix: {w['fix']}" for w in metrics["warnings"]]
    elif trivial is not None and not trivial["beaten"]:
        lines.append(
            f"WARNING: the model does not beat the trivial baseline ({trivial['metric']} {trivial['value']:.4f} for a "
            "constant answer); `baton export` refuses it without --allow-untrained"
        )
    return "\n".join(lines)

"""The model card every bundle carries (README.md, in the Hugging Face model-card style): what the model does, what
it was trained on and how, how well it does per variant, what the parity gates measured, and where it should not be
used. Written from the manifest and the run, so it says nothing the bundle does not hold; checksummed like every
file, and served by `baton serve` (GetModelInfo, /v1/model/card, the page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baton.serving.manifest import MAX_CARD_BYTES
from baton.task import Task
from baton.training.rundir import TrainedRun

__all__ = ["CARD_FILE", "model_card"]

CARD_FILE = "README.md"
_MAX_LISTED = 40  # labels (and per-class rows) listed by name; the rest are counted


def _cell(value: Any) -> str:
    """A table cell on one line, with no pipe to break the table."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "/").replace("\n", " ")[:200]


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _labels(manifest: Mapping[str, Any]) -> str:
    labels = list(manifest["labels"])
    if manifest["task"] == Task.ENTITIES:
        labels = sorted({t[2:] for t in labels if t.startswith(("B-", "I-"))})
    shown = ", ".join(labels[:_MAX_LISTED])
    return shown + (f", and {len(labels) - _MAX_LISTED} more" if len(labels) > _MAX_LISTED else "")


def _what(manifest: Mapping[str, Any]) -> str:
    if manifest["task"] == Task.ENTITIES:
        return (
            f"entity recognition ({manifest.get('scheme', 'IOB2')} tags; default aggregation {manifest['aggregation']})"
        )
    kind = "multi-label" if manifest["problem_type"] == "multi_label_classification" else "single-label"
    pairs = " of sentence pairs" if list(manifest["inputs"]) == ["text", "text_pair"] else ""
    extra = f", threshold {manifest['threshold']}" if kind == "multi-label" else ""
    return f"{kind} text classification{pairs}{extra}"


def _training(run: TrainedRun, manifest: Mapping[str, Any]) -> list[str]:
    args = run.train_args
    schedule = args.get("schedule") or {}
    config = args.get("config") or {}
    training = run.metrics.get("training") or {}
    validation = (manifest.get("training_metrics") or {}).get("validation") or {}
    rows: list[tuple[Any, ...]] = [
        ("training rows", training.get("train_samples", schedule.get("rows", "?"))),
        ("validation rows", f"{validation.get('samples', '?')} ({args.get('validation_source', 'held out')})"),
        ("recipe", args.get("method", "fine-tune")),
        ("epochs", f"{training.get('epochs_run', schedule.get('epochs', '?'))} run"),
        ("batch size", schedule.get("batch_size", config.get("batch_size", "?"))),
        ("learning rate", schedule.get("learning_rate", config.get("learning_rate", "?"))),
        ("seed", config.get("seed", "?")),
    ]
    trivial = run.metrics.get("trivial_baseline")
    if isinstance(trivial, Mapping) and "value" in trivial:
        verdict = "beaten" if trivial.get("beaten") else "NOT beaten"
        rows.append(
            ("best constant answer", f"{trivial.get('metric')} {trivial['value']:.4g} on validation: {verdict}")
        )
    return ["## Training", "", *_table(rows, ("", ""))]


def _quality(manifest: Mapping[str, Any]) -> list[str]:
    out = ["## Evaluation", ""]
    for split, metrics in (manifest.get("training_metrics") or {}).items():
        values = _scalars(metrics)
        for bookkeeping in ("samples", "top_answer_share"):
            values.pop(bookkeeping, None)
        if values:
            out += [f"PyTorch model on the {split} split ({metrics.get('samples', '?')} examples):", ""]
            out += _table(sorted(values.items()), ("metric", "value"))
    parity = manifest.get("parity") or {}
    per_variant = parity.get("accuracy") or {}
    if per_variant:
        name = parity.get("quality_metric", "quality")
        out += [f"Each variant on the {parity.get('samples', '?')} parity samples ({parity.get('source', '')}):", ""]
        out += _table([(v, per_variant[v]) for v in per_variant], ("variant", name))
    return out


def _parity(manifest: Mapping[str, Any]) -> list[str]:
    parity = manifest.get("parity") or {}
    out = ["## Parity gates", ""]
    fp32 = parity.get("fp32_vs_torch") or {}
    if fp32:
        out.append(
            f"- fp32 ONNX against PyTorch: max |Δlogit| {fp32.get('max_abs_logit_diff', 0):.2e} (limit "
            f"{fp32.get('limit', 0):.0e}), argmax agreement {fp32.get('argmax_agreement', '?')}."
        )
    for key, label in (("int8_vs_fp32", "int8"), ("fp16_vs_fp32", "fp16")):
        gate = parity.get(key) or {}
        if not gate:
            continue
        drop = gate.get("accuracy_drop")
        out.append(
            f"- {label} against fp32: argmax agreement {gate.get('argmax_agreement', '?')}"
            + (f", {gate.get('quality_metric', 'quality')} drop {drop:.4f}" if isinstance(drop, float) else "")
            + f"; gate {'passed' if gate.get('passed') else 'failed'}."
        )
        effect = gate.get("batch_effect") or {}
        if effect:
            measured = (
                f"Alone against in batches, {effect.get('flips', '?')} of {effect.get('decisions', '?')} decisions "
                f"changed, max |Δlogit| {effect.get('max_abs_logit_diff', 0):.3g}."
            )
            why = (
                "its activation scales were fixed at export, so a text's scores do not depend on its batch-mates."
                if gate.get("scales") == "fixed"
                else "dynamic quantization scales activations per batch, so a text's scores depend a little on its "
                "batch-mates. The fp32 variant has no such effect."
            )
            out.append(f"- {label} batch effect: {why} {measured}")
    if parity.get("fallback"):
        out.append(f"- fallback: {parity['fallback']}")
    return [*out, ""]


def _limits(manifest: Mapping[str, Any], run: TrainedRun) -> list[str]:
    out = [
        "## Intended use and limits",
        "",
        "- Intended for texts like the training data (its domain, language and length), to be labelled with the "
        "labels above. It has not been evaluated on anything else.",
        f"- A text is read up to {manifest['max_length']} tokens"
        + (
            "; longer texts are read in overlapping windows."
            if manifest["task"] == Task.ENTITIES
            else "; the rest is ignored (answers say `truncated`)."
        ),
        "- It cannot answer with a label it was not trained on, and scores are the model's, not calibrated "
        "probabilities.",
        "- Do not use it alone for decisions about people (credit, hiring, health, policing).",
    ]
    for warning in (run.metrics.get("warnings") or [])[:10]:
        message = warning.get("message", warning) if isinstance(warning, Mapping) else warning
        out.append(f"- Training warning: {_cell(message)}")
    return [*out, ""]


def model_card(manifest: Mapping[str, Any], run: TrainedRun) -> str:
    """The card of a bundle whose manifest (less its card) is `manifest`, exported from `run`."""
    variants = sorted({e["variant"] for e in manifest["files"].values() if "variant" in e})
    front = [
        "---",
        "library_name: baton",
        f"pipeline_tag: {manifest['task']}",
        f"base_model: {_cell(manifest.get('base_model') or 'unknown')}",
        f"tags: [baton, onnx, {', '.join(variants)}]",
        "---",
        "",
        f"# {manifest['name']}",
        "",
        f"A {_what(manifest)} model, fine-tuned from `{_cell(manifest.get('base_model') or 'unknown')}` and exported "
        f"by baton {manifest.get('versions', {}).get('baton', '')} as ONNX ({', '.join(variants)}).",
        "",
        f"**Labels ({len(manifest['labels'])} {'tags' if manifest['task'] == Task.ENTITIES else 'labels'}):** "
        + _labels(manifest),
        "",
        f"**Inputs:** {', '.join(manifest['inputs'])}. **Max length:** {manifest['max_length']} tokens.",
        "",
    ]
    lines = [*front, *_training(run, manifest), *_quality(manifest), *_parity(manifest), *_limits(manifest, run)]
    text = "\n".join(lines)
    return (
        text if len(text.encode()) <= MAX_CARD_BYTES else text.encode()[: MAX_CARD_BYTES - 64].decode(errors="ignore")
    )

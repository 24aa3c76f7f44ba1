"""The human-readable side of a run: report.md and PNG plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["entity_section", "plot_confusion_matrix", "plot_training_curves", "pyplot", "write_report"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display), imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: Path) -> None:
    plt = pyplot()
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(log_history: Sequence[Mapping[str, Any]], metric: str, path: Path) -> None:
    plt = pyplot()
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax_loss.plot([e["epoch"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="validation loss")
        key = f"eval_{metric}"
        ax_metric.plot([e["epoch"] for e in evals], [e.get(key, float("nan")) for e in evals], "o-", color="C2")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title(f"validation {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _split_section(name: str, metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    lines = [
        f"## {name} ({metrics['samples']} examples)",
        "",
        "| metric | fine-tuned |" + (" untrained head |" if baseline else ""),
        "|---|---|" + ("---|" if baseline else ""),
    ]
    for key in ("accuracy", "macro_f1", "micro_f1"):
        if key in metrics:
            row = f"| {key} | {_fmt(metrics[key])} |"
            if baseline:
                row += f" {_fmt(baseline.get(key, ''))} |"
            lines.append(row)
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, m in metrics["per_class"].items():
        lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    if "confusion_matrix" in metrics:
        lines += ["", f"![confusion matrix](confusion_matrix_{name}.png)"]
    return [*lines, ""]


def write_report(
    path: Path,
    title: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    curves: str | None = "training_curves.png",
) -> None:
    """Write a Markdown report: run summary, metrics per split (vs the untrained baseline), plots."""
    lines = [f"# {title}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in summary.items()]
    lines.append("")
    for split, m in metrics.items():
        if isinstance(m, Mapping) and "per_class" in m:
            lines += _split_section(split, m, (baseline or {}).get(split))
    if curves:
        lines += ["## Training curves", "", f"![training curves]({curves})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def entity_section(heading: str, m: Mapping[str, Any]) -> list[str]:
    """A report section for entity metrics (`ner_metrics.span_metrics` + `error_kinds`): the headline figures, a
    per-type table and the error kinds with their examples, most frequent first."""
    accuracy = f", token accuracy {m['token_accuracy']:.4f}" if "token_accuracy" in m else ""
    lines = [
        f"## {heading}",
        "",
        f"entity F1 {m['entity_f1']:.4f} (precision {m['entity_precision']:.4f}, recall {m['entity_recall']:.4f}), "
        f"macro F1 {m['entity_macro_f1']:.4f}{accuracy}",
        "",
        "| type | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for kind, v in m["per_type"].items():
        lines.append(f"| {kind} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines += ["", "| error kind | count | examples |", "|---|---|---|"]
    for kind, v in sorted(m["errors"].items(), key=lambda kv: -kv[1]["count"]):
        lines.append(f"| {kind} | {v['count']} | {'; '.join(v['examples'])} |")
    return [*lines, ""]

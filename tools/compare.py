"""`baton compare RUN...`: several finished run directories side by side, with no server.

Writes `compare.md` (one table: recipe, data sizes, validation metrics, time, warnings) and `curves.png` (each run's
validation metric and training loss against the optimizer step, overlaid) to the output folder. A run is read from
its train_args.json, metrics.json and log_history.json (older runs without the last get a table row, no curve).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton._io import write_text_atomic
from baton.errors import ConfigError

__all__ = ["RunSummary", "compare_runs", "read_summary"]

_METRICS = ("accuracy", "macro_f1", "micro_f1", "entity_f1", "entity_precision", "entity_recall")


@dataclass(frozen=True)
class RunSummary:
    name: str
    train_args: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def metric(self) -> str:
        """The metric that picks the run's best checkpoint: what the curves show."""
        validation = self.metrics.get("validation", {})
        if "entity_f1" in validation:
            return "entity_f1"
        return "micro_f1" if "micro_f1" in validation else "accuracy"

    def recipe(self) -> str:
        args, cfg = self.train_args, self.train_args.get("config", {})
        if args.get("few_shot"):
            return f"few-shot, {self.metrics.get('training', {}).get('pairs', '?')} pairs"
        if args.get("method") == "pooled":
            return f"pooled fine-tuning, batch {cfg.get('batch_size')}, lr {cfg.get('learning_rate'):g}"
        return f"batch {cfg.get('batch_size')}, lr {cfg.get('learning_rate'):g}, {cfg.get('epochs'):g} epoch(s)"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path.parent} is not a finished run: no {what}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from exc


def read_summary(run_dir: str | Path) -> RunSummary:
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"RUN: {root} is not a directory")
    history_file = root / "log_history.json"
    history = _read_json(history_file, "log_history.json") if history_file.is_file() else []
    return RunSummary(
        root.name,
        _read_json(root / "train_args.json", "train_args.json"),
        _read_json(root / "metrics.json", "metrics.json"),
        history,
    )


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "–" if value is None else str(value)


def _table(runs: list[RunSummary]) -> list[str]:
    shown = [m for m in _METRICS if any(m in r.metrics.get("validation", {}) for r in runs)]
    head = ["run", "base model", "recipe", "train", "validation", *[f"val {m}" for m in shown], "wall s", "warnings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        sizes = r.train_args.get("sizes", {})
        training = r.metrics.get("training", {})
        row = [
            r.name,
            str(r.train_args.get("base_model")),
            r.recipe(),
            str(sizes.get("train", "?")),
            str(sizes.get("validation", "?")),
            *[_fmt(r.metrics.get("validation", {}).get(m)) for m in shown],
            f"{training['wall_time_s']:.1f}" if "wall_time_s" in training else "–",
            str(len(r.metrics.get("warnings", []))),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _plot(runs: list[RunSummary], path: Path) -> bool:
    from baton.training.report import pyplot

    drawn = False
    plt = pyplot()
    fig, (ax_metric, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        key = f"eval_{r.metric}"
        evals = [(e["step"], e[key]) for e in r.history if key in e and "step" in e]
        losses = [(e["step"], e["loss"]) for e in r.history if "loss" in e and "step" in e]
        if evals:
            ax_metric.plot(*zip(*evals, strict=True), "o-", label=f"{r.name} ({r.metric})")
            drawn = True
        if losses:
            ax_loss.plot(*zip(*losses, strict=True), label=r.name)
            drawn = True
    ax_metric.set_xlabel("optimizer step")
    ax_metric.set_title("validation metric")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_title("training loss")
    for ax in (ax_metric, ax_loss):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def compare_runs(run_dirs: list[str], output: str | Path) -> Path:
    """Write compare.md and curves.png for `run_dirs` into `output`; returns the Markdown file."""
    if not run_dirs:
        raise ConfigError("compare needs at least one RUN directory")
    runs = [read_summary(d) for d in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # two runs/x folders: name them by their path instead
        runs = [
            RunSummary(str(Path(d)), r.train_args, r.metrics, r.history) for d, r in zip(run_dirs, runs, strict=True)
        ]
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    curves = _plot(runs, out / "curves.png")
    lines = ["# Runs compared", "", *_table(runs), ""]
    lines += ["![curves](curves.png)", ""] if curves else ["No run has a log_history.json: no curves.", ""]
    for r in runs:
        for w in r.metrics.get("warnings", []):
            lines.append(f"- **{r.name}**: {w['message']}. Fix: {w['fix']}")
    write_text_atomic(out / "compare.md", "\n".join(lines) + "\n")
    return out / "compare.md"

"""`baton tune`: hyperparameter search with `Trainer.hyperparameter_search`, on Optuna in-process (default) or on
Ray Tune (a local Ray, or a cluster at `--address`).

Each trial trains the task's recipe (classification or entity recognition) from a fresh head with the trial's
parameters and is scored on the validation split by the task's own metric (accuracy; micro-F1 for multi-label;
entity F1 for entity recognition): the best epoch's value, which is what the run would keep with its best
checkpoint. Optuna samples with TPE (seeded) and prunes with the median rule
(from the second epoch, against two or more finished trials at the same epoch); Ray Tune samples at random and,
with pruning, stops trials by the median stopping rule at the same epochs.
Every trial trains with the same seed, so trials differ by their parameters only.

Output directory:
    leaderboard.csv, leaderboard.md   every trial: state, objective, parameters, seconds; best first
    search.png                        the objective against each parameter
    tune.json                         backend, seeds, space, trials, best trial, the best run's metrics, wall times
    best/                             the best parameters retrained as a normal run directory (`baton export` takes it)
The directory is built under a hidden name and renamed when complete; `--overwrite` replaces an old one only then.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from baton._io import replace_dir, write_json_atomic, write_text_atomic
from baton._optional import require
from baton._ray import connect
from baton.errors import ConfigError, OutputDirError
from baton.training.config import TrainConfig
from baton.training.schedule import EPOCHS
from baton.training.search_space import DEFAULT_SPACE, PARAMETERS, SearchSpace

__all__ = ["BACKENDS", "TuneConfig", "TuneResult", "run_tune"]

logger = logging.getLogger(__name__)

BACKENDS = ("optuna", "ray")
_TRAIN_FIELD = {v: k for k, v in PARAMETERS.items()}  # TrainingArguments field -> TrainConfig field


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    train: TrainConfig  # data, model and columns as `baton train`; output_dir is the tune directory
    trials: int = 10
    timeout_s: float | None = None
    backend: str = "optuna"
    address: str | None = None
    space: SearchSpace = field(default_factory=lambda: DEFAULT_SPACE)
    prune: bool = True

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"--trials must be >= 1 (got {self.trials})")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"--timeout must be > 0 seconds (got {self.timeout_s})")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)} (got {self.backend!r})")
        if self.address is not None and self.backend != "ray":
            raise ConfigError("--address is for --backend ray")
        if self.train.validation_file is None and self.train.dataset is None:
            raise ConfigError("--validation-file: tune scores every trial on a validation split; give one")
        if self.train.resume:
            raise ConfigError("--resume: a search is not resumed; run it again (with --overwrite)")


@dataclass(frozen=True)
class TuneResult:
    output_dir: Path
    summary: dict[str, Any]


class _BestSoFar:
    """The trial's objective: the best validation value of its epochs so far (reset when a trial starts)."""

    def __init__(self, metric: str) -> None:
        self.key = f"eval_{metric}"
        self.best: float | None = None

    def reset(self) -> None:
        self.best = None

    def __call__(self, metrics: dict[str, float]) -> float:
        value = float(metrics[self.key])
        self.best = value if self.best is None else max(self.best, value)
        return self.best


def _reset_callback(objective: _BestSoFar) -> Any:
    from transformers import TrainerCallback

    class _ResetObjective(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            objective.reset()

    return _ResetObjective()


def _prepare(cfg: TuneConfig) -> tuple[Path, Path]:
    out = Path(cfg.train.output_dir)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--output {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.train.overwrite:
        raise OutputDirError(f"--output {out}: not empty; pass --overwrite to replace it once the search ends")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return out, staging


def run_tune(cfg: TuneConfig) -> TuneResult:
    """Search, write the leaderboard and plot, retrain the best parameters as `best/`, and publish the folder."""
    import torch  # noqa: F401  (first: a missing torch is named as such)

    from baton.training.models import resolve_model
    from baton.training.tasks import run_training

    if cfg.backend == "optuna":
        require("optuna")
    else:
        require("ray")
        require("ray.tune")
    out, staging = _prepare(cfg)
    try:
        data, metric = _task_data(cfg.train)
        started = time.perf_counter()
        if cfg.backend == "optuna":
            rows = _optuna(cfg, data, resolve_model(cfg.train.model), staging)
        else:
            rows = _ray(cfg, staging)  # each trial prepares its data in its own worker
        search_s = time.perf_counter() - started
        finished = [r for r in rows if r["state"] == "complete" and r["objective"] is not None]
        if not finished:
            raise ConfigError("no trial finished (all failed or were pruned, or --timeout came first): see the log")
        best = max(finished, key=lambda r: r["objective"])
        params = {_TRAIN_FIELD[k]: v for k, v in best["params"].items()}
        logger.info(
            "best trial %s: %s %.4f with %s; retraining it as best/",
            best["trial"],
            metric,
            best["objective"],
            params,
        )
        started = time.perf_counter()
        result = run_training(replace(cfg.train, output_dir=str(staging / "best"), overwrite=False, **params))
        retrain_s = time.perf_counter() - started
        _write_leaderboard(staging, rows, metric)
        _plot(staging / "search.png", rows, cfg.space, metric)
        summary = {
            "backend": cfg.backend,
            "metric": f"validation {metric} (best epoch)",
            "trials_requested": cfg.trials,
            "trials_run": len(rows),
            "states": {s: sum(r["state"] == s for r in rows) for s in sorted({r["state"] for r in rows})},
            "seed": {"sampler": cfg.train.seed, "training": cfg.train.seed},
            "space": [vars(p) | {"values": list(p.values)} for p in cfg.space.params],
            "pruning": cfg.prune,
            "best": {"trial": best["trial"], "objective": best["objective"], "params": params},
            "best_run": {
                "dir": "best",
                "validation": {k: v for k, v in result.metrics["validation"].items() if isinstance(v, float)},
            },
            "wall_time_s": {"search": round(search_s, 1), "retrain_best": round(retrain_s, 1)},
        }
        write_json_atomic(staging / "tune.json", summary)
        shutil.rmtree(staging / "trials", ignore_errors=True)
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TuneResult(out, summary)


def _report_by_epoch(trainer: Any) -> None:
    """Make the Trainer report each evaluation to Optuna at its epoch, not its global step.

    Measured: with the global step, a trial was compared only with trials of the same batch size (the same step
    means the same epoch only then), and against one of them at a time; on 2,000 SST-2 sentences 8 of 10 trials were
    pruned after their first epoch, each against the single earlier trial of its batch size. Epochs line all trials
    up. (`_report_to_hp_search` is the Trainer's private hook for this; it is wrapped, not replaced.)"""
    report = trainer._report_to_hp_search

    def by_epoch(trial: Any, step: int, metrics: dict[str, float]) -> None:
        report(trial, round(trainer.state.epoch or 0), metrics)

    trainer._report_to_hp_search = by_epoch


def _task_data(train: TrainConfig) -> tuple[Any, str]:
    """(prepared data, validation metric) of the run's task: the one rule `baton train` follows."""
    from baton.training.tasks import resolve_task, training_task

    return training_task(resolve_task(train)).prepare(train)


def _trial_trainer(
    train: TrainConfig, data: Any, model_path: str, out: Path, **arguments: Any
) -> tuple[Any, _BestSoFar]:
    """A trial's Trainer and objective, the same for both backends and both tasks: trials are scored, not kept (no
    checkpoints), since the best is retrained as best/."""
    from baton.training.tasks import resolve_task, training_task

    built = training_task(resolve_task(train)).build(
        train, data, model_path, out, per_epoch=True, save_strategy="no", load_best_model_at_end=False, **arguments
    )
    return built.trainer, _BestSoFar(built.metric)


def _optuna(cfg: TuneConfig, data: Any, model_path: str, staging: Path) -> list[dict[str, Any]]:
    """`Trainer.hyperparameter_search` on Optuna: one Trainer with a `model_init`, every trial in this process."""
    import optuna

    trainer, objective = _trial_trainer(cfg.train, data, model_path, staging / "trials", search=True)
    trainer.add_callback(_reset_callback(objective))

    storage = optuna.storages.InMemoryStorage()
    # Pruning compares a trial with the median of the finished trials *at the same step*, from the second epoch on
    # (MiniLM's first epoch is noisy) and only against two or more of them.
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2, n_min_trials=2)
        if cfg.prune
        else optuna.pruners.NopPruner()
    )
    _report_by_epoch(trainer)
    trainer.hyperparameter_search(
        hp_space=cfg.space.optuna,
        compute_objective=objective,
        n_trials=cfg.trials,
        direction="maximize",
        backend="optuna",
        timeout=cfg.timeout_s,
        sampler=optuna.samplers.TPESampler(seed=cfg.train.seed),
        pruner=pruner,
        study_name="baton-tune",
        storage=storage,
    )
    study = optuna.load_study(study_name="baton-tune", storage=storage)
    rows = []
    for t in study.trials:
        done, begun = t.datetime_complete, t.datetime_start
        seconds = (done - begun).total_seconds() if done is not None and begun is not None else None
        state = t.state.name.lower()
        value = t.value if state == "complete" else max(t.intermediate_values.values(), default=None)
        rows.append(
            {"trial": t.number, "state": state, "objective": value, "params": dict(t.params), "seconds": seconds}
        )
    return rows


def _ray_trial(config: dict[str, Any], train: TrainConfig, trials_dir: str) -> None:
    """One Ray Tune trial, in its worker: the same trainer and objective as an Optuna trial, reported each epoch."""
    from ray import tune
    from transformers import TrainerCallback

    from baton.training.models import resolve_model

    out = Path(trials_dir) / tune.get_context().get_trial_id()
    data, _ = _task_data(train)
    trainer, objective = _trial_trainer(train, data, resolve_model(train.model), out, **config)

    class _Report(TrainerCallback):  # type: ignore[misc]
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            tune.report({"objective": objective(metrics), "epoch": state.epoch})

    trainer.add_callback(_Report())
    trainer.train()


def _ray(cfg: TuneConfig, staging: Path) -> list[dict[str, Any]]:
    """Ray Tune's Tuner over `_ray_trial`. (transformers 4.57's `hyperparameter_search(backend="ray")` calls
    `datasets.load.init_dynamic_modules`, which datasets 5 removed, so each of its trials fails at start; this runs
    the same trials through Ray Tune's own API.)"""
    import ray
    from ray import tune

    started_ray = connect(cfg.address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        scheduler = None
        if cfg.prune:
            from ray.tune.schedulers import MedianStoppingRule

            scheduler = MedianStoppingRule(time_attr="epoch", grace_period=2, min_samples_required=2)
        trainable = tune.with_resources(
            tune.with_parameters(_ray_trial, train=cfg.train, trials_dir=str((staging / "trials").resolve())),
            {"cpu": cpus},  # one trial at a time, on every CPU, as Optuna's trials run
        )
        tuner = tune.Tuner(
            trainable,
            param_space=cfg.space.ray(),
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="max",
                num_samples=cfg.trials,
                scheduler=scheduler,
                search_alg=tune.search.BasicVariantGenerator(random_state=cfg.train.seed),
                time_budget_s=cfg.timeout_s,
            ),
            run_config=tune.RunConfig(name="baton-tune", storage_path=str((staging / "ray").resolve()), verbose=1),
        )
        results: Any = tuner.fit()
        rows = []
        for number in range(len(results)):
            result = results[number]
            params = {k: v for k, v in (result.config or {}).items() if k in _TRAIN_FIELD}
            metrics = result.metrics or {}
            epochs_wanted = params.get("num_train_epochs", cfg.train.epochs or EPOCHS)
            if result.error is not None:
                state = "fail"
            elif metrics.get("epoch", 0) + 1e-6 < epochs_wanted:
                state = "pruned"  # the median stopping rule ended it before its last epoch
            else:
                state = "complete"
            rows.append(
                {
                    "trial": number,
                    "state": state,
                    "objective": metrics.get("objective"),
                    "params": params,
                    "seconds": metrics.get("time_total_s"),
                }
            )
        return rows
    finally:
        if started_ray:
            ray.shutdown()


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r["params"]}, key=list(_TRAIN_FIELD).index)


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["objective"] is None, -(r["objective"] or 0.0), r["trial"]))


def _write_leaderboard(folder: Path, rows: list[dict[str, Any]], metric: str) -> None:
    params = _columns(rows)
    names = [_TRAIN_FIELD[p] for p in params]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "trial", "state", metric, *names, "seconds"])
    lines = [f"| rank | trial | state | {metric} | " + " | ".join(names) + " | seconds |"]
    lines.append("|" + "---|" * (5 + len(names)))
    for rank, r in enumerate(_ordered(rows), start=1):
        values = [r["params"].get(p) for p in params]
        writer.writerow([rank, r["trial"], r["state"], r["objective"], *values, r["seconds"]])
        shown = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in values]
        score = "-" if r["objective"] is None else f"{r['objective']:.4f}"
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {rank} | {r['trial']} | {r['state']} | {score} | " + " | ".join(shown) + f" | {seconds} |")
    write_text_atomic(folder / "leaderboard.csv", buffer.getvalue())
    write_text_atomic(folder / "leaderboard.md", "\n".join(lines) + "\n")


def _plot(path: Path, rows: list[dict[str, Any]], space: SearchSpace, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r["objective"] is not None]
    fig, axes = plt.subplots(1, len(space.params), figsize=(3.2 * len(space.params), 3.0), squeeze=False)
    for ax, param in zip(axes[0], space.params, strict=True):
        key = PARAMETERS[param.name]
        for state, marker in (("complete", "o"), ("pruned", "x")):
            points = [(r["params"][key], r["objective"]) for r in scored if r["state"] == state and key in r["params"]]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter([str(x) for x in xs] if param.kind == "choice" else xs, ys, marker=marker, label=state)
        if param.kind == "loguniform":
            ax.set_xscale("log")
        ax.set_xlabel(param.name)
        ax.set_ylabel(f"validation {metric}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

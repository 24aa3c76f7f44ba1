"""Text classification training (single-label, multi-label, sentence pairs): wraps `transformers.Trainer` and writes
the run directory. The runtime twin is serving/tasks/classification.py.

Run directory (the contract `baton export` reads):
    model/               safetensors + config.json (id2label, problem_type) + tokenizer files
    train_args.json      the resolved TrainConfig, the resolved base model, data summary
    metrics.json         {"validation": {...}, "test": {...}, "baseline": {...}, "training": {...}}; written last
    report.md            human-readable report with plots beside it
    checkpoints/         Trainer checkpoints while the run is in progress (removed when it finishes)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton._io import write_json_atomic
from baton.training.advice import advise, logged
from baton.training.config import TrainConfig
from baton.training.console import use_console
from baton.training.data import PreparedData, prepare_data
from baton.training.loop import run_loop
from baton.training.metrics import classification_metrics, probabilities
from baton.training.models import check_max_length, resolve_model
from baton.training.multilabel import init_bias_to_prior, pos_weights, weighted_trainer
from baton.training.report import plot_confusion_matrix, plot_training_curves, write_report
from baton.training.rundir import (
    LOG_HISTORY,
    RUN_FILES,
    RunResult,
    finish_run,
    install_model,
    trainer_arguments,
    world_size,
)
from baton.training.schedule import Method, Schedule, describe_schedule, pick_method
from baton.training.trivial import MARGIN, beats_baseline, can_judge, trivial_baseline, tune_threshold

__all__ = [
    "ClassificationTrainer",
    "Recipe",
    "build_classification_trainer",
    "check_trivial",
    "run_classification",
    "run_text_classification",
    "validation_metric",
    "write_run",
]

logger = logging.getLogger(__name__)


def _tokenize(data: PreparedData, tokenizer: Any, max_length: int) -> dict[str, Any]:
    spec = data.spec

    def encode(batch: dict[str, list[Any]]) -> Any:
        pair = batch[spec.text_pair_column] if spec.text_pair_column else None
        return tokenizer(batch[spec.text_column], pair, truncation=True, max_length=max_length)

    out: dict[str, Any] = {}
    for name, ds in (("train", data.train), ("validation", data.validation), ("test", data.test)):
        if ds is not None:
            drop = [c for c in ds.column_names if c != "labels"]
            out[name] = ds.map(encode, batched=True, remove_columns=drop, desc=f"tokenizing {name}")
    return out


def _decision_threshold(cfg: TrainConfig, multi_label: bool, logits: Any, label_ids: Any) -> float:
    """`--threshold` if given; for multi-label otherwise the one with the best micro-F1 on these rows."""
    if cfg.threshold is not None:
        return cfg.threshold
    if not multi_label:
        return 0.5  # unused: single-label decisions are the argmax
    return tune_threshold(probabilities(logits, True), label_ids)[0]


def _evaluate(trainer: Any, splits: dict[str, Any], data: PreparedData, cfg: TrainConfig) -> dict[str, Any]:
    """Metrics per split; multi-label decisions at the threshold tuned on validation (unless --threshold)."""
    results: dict[str, Any] = {}
    threshold = None
    for name in ("validation", "test"):
        if name in splits:
            # Trainer.predict may return rows in length-grouped order: score against the label_ids it returns.
            output = trainer.predict(splits[name], metric_key_prefix=name)
            if threshold is None:
                threshold = _decision_threshold(cfg, data.spec.is_multi_label, output.predictions, output.label_ids)
            results[name] = classification_metrics(
                output.predictions, output.label_ids, data.spec.labels, data.spec.is_multi_label, threshold
            )
    return results


def _trivial_line(trivial: dict[str, Any], labels: Any) -> str:
    answer = ", ".join(labels[i] for i in trivial["answer"]) or "nothing"
    verdict = "beaten" if trivial["beaten"] else "**NOT BEATEN: the model learned little beyond the label prior**"
    margin = trivial.get("margin", MARGIN)
    return f"{trivial['metric']} {trivial['value']:.4f} for always '{answer}' (+{margin:.3f} needed): {verdict}"


def check_trivial(data: PreparedData, validation: dict[str, Any]) -> dict[str, Any]:
    """Score the best constant answer on validation and say loudly when the model does not beat it."""
    baseline = trivial_baseline(np.asarray(data.validation["labels"]), data.spec.is_multi_label)
    baseline["beaten"] = beats_baseline(validation, baseline)
    baseline["judgeable"] = can_judge(baseline)  # False: the split is too small for any model to show it
    baseline["top_answer_share"] = validation.get("top_answer_share")
    return baseline


def _smallest_class(data: PreparedData) -> int:
    labels = np.asarray(data.train["labels"])
    counts = labels.sum(axis=0) if data.spec.is_multi_label else np.bincount(labels.astype(int))
    return int(np.min(counts))


def _advice(built: ClassificationTrainer, data: PreparedData, metrics: dict[str, Any]) -> list[dict[str, str]]:
    """Each warning of the run, logged with its fix, as metrics.json's `warnings`."""
    return logged(
        advise(
            schedule=built.schedule,
            validation=metrics["validation"],
            validation_rows=len(data.validation),
            baseline=metrics["trivial_baseline"],
            dropped=data.dropped,
            smallest_class=_smallest_class(data),
            few_shot=False,
            metric=built.metric,
        )
    )


def run_classification(cfg: TrainConfig) -> RunResult:
    """Fine-tune `cfg.model` on text classification data, by the method `pick_method` chooses (training/schedule.py):
    the few-shot and pooled paths are in training/fewshot.py."""
    from baton.training import fewshot

    data = prepare_data(cfg)
    simple = not data.spec.is_multi_label and not data.spec.text_pair_column and not cfg.resume
    smallest = _smallest_class(data) if simple else None
    pooled = smallest is not None and fewshot.mean_pooled(resolve_model(cfg.model))
    method, why = pick_method(len(data.train), smallest, cfg.few_shot, pooled)
    if method is Method.FINE_TUNE:
        return run_text_classification(cfg, data=data)
    logger.info("%s path: %s; --no-few-shot fine-tunes the model's own head instead", method, why)
    return fewshot.run_few_shot(cfg, data, method)  # type: ignore[no-any-return]


class Recipe:
    """How a classification run builds its model and Trainer; `baton distill` swaps in a student and its loss."""

    def build_model(self, model_path: str, spec: Any) -> Any:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            model_path,
            num_labels=len(spec.labels),
            id2label=dict(enumerate(spec.labels)),
            label2id=spec.label2id,
            problem_type=spec.problem_type,
            ignore_mismatched_sizes=True,
        )

    def trainer_class(self, trainer_cls: type) -> type:
        return trainer_cls

    def train_split(self, train: Any, tokenizer: Any, spec: Any, max_length: int) -> Any:
        """The tokenized training rows the Trainer sees (`baton distill --unlabeled-file` adds unlabeled ones)."""
        return train

    def train_args(self) -> dict[str, Any]:
        return {}


def validation_metric(spec: Any) -> str:
    """The validation metric that picks a run's best checkpoint and that `baton tune` maximises."""
    return "micro_f1" if spec.is_multi_label else "accuracy"


@dataclass
class ClassificationTrainer:
    """A built `Trainer` and what was built with it."""

    trainer: Any
    splits: dict[str, Any]
    hw: Any
    metric: str  # the validation metric that picks the best checkpoint (and that `baton tune` maximises)
    cfg: TrainConfig  # the config with its recipe resolved for this data (training/schedule.py)
    schedule: Schedule


def build_classification_trainer(
    cfg: TrainConfig,
    data: PreparedData,
    model_path: str,
    out: Path,
    recipe: Recipe | None = None,
    checkpoint: str | None = None,
    search: bool = False,
    per_epoch: bool = False,
    **argument_overrides: Any,
) -> ClassificationTrainer:
    """The Trainer of a classification run: tokenized splits, the recipe's model, metrics, the multi-label loss.

    `search=True` (`baton tune`) gives the Trainer a `model_init` instead of a model, so that every trial starts
    from a fresh head, and no early stopping (epochs is a searched parameter)."""
    import transformers
    from transformers import AutoTokenizer, DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    spec = data.spec
    metric = validation_metric(spec)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    check_max_length(model_path, cfg.max_length)
    tokenizer.model_max_length = cfg.max_length
    splits = _tokenize(data, tokenizer, cfg.max_length)
    transformers.set_seed(cfg.seed)  # the new head's initialisation depends on it
    recipe = recipe or Recipe()
    splits["train"] = recipe.train_split(splits["train"], tokenizer, spec, cfg.max_length)
    cfg, schedule = cfg.scheduled(len(splits["train"]), world_size())
    train_labels = np.asarray(data.train["labels"])
    weighted = spec.is_multi_label and cfg.multi_label_loss == "weighted"

    def new_model(trial: Any = None) -> Any:
        model = recipe.build_model(model_path, spec)
        if weighted and checkpoint is None:
            init_bias_to_prior(model, train_labels)
        # Re-seeded after the head is drawn, as Trainer.__init__ does for a run: a tune trial (whose Trainer calls
        # this at the start of train()) then trains with the same random stream as the run that retrains it.
        transformers.set_seed(cfg.seed)
        return model

    eval_steps = None if search or per_epoch else schedule.eval_steps  # tune's trials report (and prune) by epoch
    args, hw = trainer_arguments(
        cfg, out, len(splits["train"]), metric, evaluate_every=eval_steps, **argument_overrides
    )

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        # multi-label without --threshold: each evaluation at its own best threshold, so early stopping and the
        # best checkpoint follow what the model can do once its threshold is tuned
        threshold = _decision_threshold(cfg, spec.is_multi_label, eval_pred.predictions, eval_pred.label_ids)
        m = classification_metrics(
            eval_pred.predictions, eval_pred.label_ids, spec.labels, spec.is_multi_label, threshold
        )
        return {k: v for k, v in m.items() if k in {"accuracy", "macro_f1", "micro_f1"}}

    trainer_cls: Any = weighted_trainer(Trainer, pos_weights(train_labels)) if weighted else Trainer
    trainer_cls = recipe.trainer_class(trainer_cls)
    stop_early = bool(cfg.patience) and not search
    trainer = trainer_cls(
        **({"model_init": new_model} if search else {"model": new_model()}),
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(cfg.patience or 0)] if stop_early else [],
    )
    return ClassificationTrainer(trainer, splits, hw, metric, cfg, schedule)


@dataclass
class _ClassificationSteps:
    """Text classification's part of the run loop (training/loop.py)."""

    cfg: TrainConfig
    recipe: Recipe
    data: PreparedData | None

    def prepare(self, model_path: str) -> None:
        self.data = self.data or prepare_data(self.cfg)

    def build(self, out: Path, model_path: str, checkpoint: str | None) -> ClassificationTrainer:
        assert self.data is not None
        built = build_classification_trainer(self.cfg, self.data, model_path, out, self.recipe, checkpoint)
        self.cfg = built.cfg  # the schedule resolved
        logger.info("recipe: %s", describe_schedule(built.schedule))
        use_console(built.trainer, built.metric)
        return built

    def before(self, built: ClassificationTrainer) -> dict[str, Any]:
        assert self.data is not None
        return _evaluate(built.trainer, built.splits, self.data, self.cfg) if self.cfg.baseline else {}

    def after(self, built: ClassificationTrainer, before: dict[str, Any]) -> dict[str, Any]:
        assert self.data is not None
        results = _evaluate(built.trainer, built.splits, self.data, self.cfg)
        metrics: dict[str, Any] = dict(results)
        metrics["baseline"] = before
        metrics["trivial_baseline"] = check_trivial(self.data, results["validation"])
        if self.data.spec.is_multi_label:
            metrics["decision_threshold"] = results["validation"]["threshold"]
        metrics["warnings"] = _advice(built, self.data, metrics)
        return metrics

    def sizes(self, built: ClassificationTrainer) -> dict[str, Any]:
        return {"train_samples": len(built.splits["train"])}

    def write(
        self, out: Path, tmp_model: Path, model_path: str, built: ClassificationTrainer, metrics: dict[str, Any]
    ) -> None:
        assert self.data is not None
        history = built.trainer.state.log_history
        extra = {**self.recipe.train_args(), "schedule": built.schedule.to_dict()}
        write_run(out, tmp_model, self.cfg, model_path, self.data, metrics, history, built.metric, extra)


def run_text_classification(
    cfg: TrainConfig, recipe: Recipe | None = None, data: PreparedData | None = None
) -> RunResult:
    """Fine-tune for text classification in the one run loop; `recipe` swaps the model and loss (distill)."""
    return run_loop(cfg, cfg.model, _ClassificationSteps(cfg, recipe or Recipe(), data))


def write_run(
    out: Path,
    tmp_model: Path,
    cfg: TrainConfig,
    model_path: str,
    data: PreparedData,
    metrics: dict[str, Any],
    log_history: list[dict[str, Any]],
    metric: str,
    extra_args: dict[str, Any] | None = None,
) -> None:
    install_model(out, tmp_model, RUN_FILES)
    spec = data.spec
    write_json_atomic(
        out / "train_args.json",
        {
            "config": cfg.to_dict(),
            "resolved_model": model_path,
            "base_model": cfg.model,
            "problem_type": spec.problem_type,
            "labels": list(spec.labels),
            "text_column": spec.text_column,
            "text_pair_column": spec.text_pair_column,
            "label_column": spec.label_column,
            "max_length": cfg.max_length,
            # the decision threshold the bundle serves with: --threshold, or tuned on validation (multi-label)
            "threshold": metrics.get("decision_threshold", cfg.threshold if cfg.threshold is not None else 0.5),
            "validation_source": data.validation_source,
            "dropped_rows": data.dropped,
            **(extra_args or {}),
            "sizes": {
                "train": len(data.train),
                "validation": len(data.validation),
                "test": len(data.test) if data.test is not None else 0,
            },
        },
    )
    for split in ("validation", "test"):
        if split in metrics and "confusion_matrix" in metrics[split]:
            plot_confusion_matrix(
                metrics[split]["confusion_matrix"],
                spec.labels,
                f"{split} confusion matrix",
                out / f"confusion_matrix_{split}.png",
            )
    write_json_atomic(out / LOG_HISTORY, log_history)  # `baton compare` overlays these
    plot_training_curves(log_history, metric, out / "training_curves.png")
    training = metrics["training"]
    write_report(
        out / "report.md",
        f"Training run: {out.name}",
        {
            "base model": cfg.model,
            "task": spec.problem_type,
            "labels": ", ".join(spec.labels),
            "train examples": training["train_samples"],
            "validation": data.validation_source,
            "epochs run": training["epochs_run"],
            "learning rate": cfg.learning_rate,
            "batch size": cfg.batch_size,
            "recipe": (extra_args or {}).get("schedule", {}).get("reason", "as given"),
            "train samples/s": training["train_samples_per_second"],
            "wall time (s)": round(training["wall_time_s"], 1),
            "dropped rows": data.dropped or "none",
            "decision threshold": metrics.get("decision_threshold", "argmax"),
            "trivial baseline (constant answer)": _trivial_line(metrics["trivial_baseline"], spec.labels),
            "warnings": "<br>".join(f"**{w['message']}**. Fix: {w['fix']}" for w in metrics.get("warnings", []))
            or "none",
        },
        {k: v for k, v in metrics.items() if k in ("validation", "test")},
        metrics.get("baseline") or None,
    )
    finish_run(out, metrics)

"""`baton train` for entity recognition (token classification): the same run directory as classification.

    data       training/ner_data.py (three layouts → sentences of words + IOB2 tags)
    alignment  training/ner_align.py (first sub-token tagged; overlapping windows for long sentences)
    metrics    training/ner_metrics.py (entity-level P/R/F1 per type, token accuracy, error kinds)

Early stopping and the best checkpoint follow validation entity F1. Evaluation rows score each word once, in the
window that owns it, and are scored window by window (Trainer returns them in length-grouped order): an entity of a
sentence longer than `max_length` that crosses an ownership boundary counts as two, in the gold and in the
prediction alike.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton._io import write_json_atomic
from baton.errors import DataError
from baton.task import Task
from baton.training.advice import advise, logged
from baton.training.config import TrainConfig
from baton.training.console import use_console
from baton.training.loop import run_loop
from baton.training.models import check_max_length
from baton.training.ner_align import align_rows
from baton.training.ner_data import Sentence, TokenFile, read_token_file, tag_set
from baton.training.ner_metrics import entity_metrics
from baton.training.report import entity_section, plot_training_curves
from baton.training.rundir import (
    LOG_HISTORY,
    RUN_FILES,
    RunResult,
    finish_run,
    hold_out,
    install_model,
    trainer_arguments,
    world_size,
)
from baton.training.schedule import Schedule, describe_schedule

__all__ = [
    "METRIC",
    "TokenData",
    "TokenTrainer",
    "build_token_trainer",
    "prepare_token_data",
    "run_token_training",
    "tags_of_rows",
]

logger = logging.getLogger(__name__)

# The validation metric that picks a run's best checkpoint and that `baton tune` maximises.
METRIC = "entity_f1"

SCHEME = "IOB2"


@dataclass
class TokenData:
    labels: list[str]
    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence] | None
    validation_source: str
    report: dict[str, Any]  # per file: layout, dropped empty sentences, invalid IOB transitions

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}


def _read(path: str, flag: str, cfg: TrainConfig) -> TokenFile:
    return read_token_file(path, flag, cfg.tokens_column, cfg.tags_column, cfg.tag_names)


def prepare_token_data(cfg: TrainConfig) -> TokenData:
    """Read and check the splits; the tag set is the training split's (O, then B-/I- per type)."""
    if cfg.train_file is None:
        raise DataError("--task token-classification reads --train-file (CoNLL text, token/tag rows or spans)")
    files = {"train": _read(cfg.train_file, "--train-file", cfg)}
    for split, path, flag in (
        ("validation", cfg.validation_file, "--validation-file"),
        ("test", cfg.test_file, "--test-file"),
    ):
        if path is not None:
            files[split] = _read(path, flag, cfg)
    labels = tag_set(files["train"].sentences)
    if len(labels) < 3:
        raise DataError(f"--train-file: {cfg.train_file} has no entity tags (only O): nothing to learn")
    known = set(labels)
    for split, f in files.items():
        for s in f.sentences:
            unknown = sorted(set(s.tags) - known)
            if unknown:
                raise DataError(
                    f"--{split}-file: {f.path} line {s.line}: tag(s) never seen in the training split: "
                    f"{', '.join(unknown[:5])} (training tags: {', '.join(labels)})"
                )
    train = list(files["train"].sentences)
    if "validation" in files:
        validation, source = files["validation"].sentences, f"--validation-file {cfg.validation_file}"
    else:
        train, validation = hold_out(train, cfg.validation_fraction, cfg.seed)
        source = f"random {cfg.validation_fraction:.0%} split of the training data (seed {cfg.seed})"
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train):
        rng = random.Random(cfg.seed)
        train = rng.sample(train, cfg.max_train_samples)
    report = {
        split: {"layout": f.layout, "dropped_empty": f.dropped_empty, "invalid_transitions": f.invalid_transitions}
        for split, f in files.items()
    }
    logger.info(
        "task %s, %d tags (%s); %d train / %d validation sentences (%s)",
        Task.ENTITIES,
        len(labels),
        ", ".join(labels),
        len(train),
        len(validation),
        source,
    )
    return TokenData(labels, train, validation, files["test"].sentences if "test" in files else None, source, report)


def _rows(
    tokenizer: Any, sentences: list[Sentence], data: TokenData, cfg: TrainConfig, train: bool
) -> tuple[Any, list[int]]:
    from datasets import Dataset

    ids = data.label2id
    begin_to_inside = {ids[t]: ids["I-" + t[2:]] for t in data.labels if t.startswith("B-")}
    columns, owner = align_rows(
        tokenizer,
        [(s.words, [ids[t] for t in s.tags]) for s in sentences],
        cfg.max_length,
        cfg.stride,
        label_all_tokens=cfg.label_all_tokens and train,
        own_only=not train,
        begin_to_inside=begin_to_inside,
    )
    return Dataset.from_dict(columns), owner


def tags_of_rows(
    logits: np.ndarray, label_ids: np.ndarray, labels: list[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """(gold, predicted) word tags of each row: the positions whose label is not -100."""
    pred = np.asarray(logits).argmax(axis=-1)
    true_rows, pred_rows = [], []
    for p_row, l_row in zip(pred, np.asarray(label_ids), strict=True):
        keep = l_row != -100
        true_rows.append([labels[i] for i in l_row[keep]])
        pred_rows.append([labels[i] for i in p_row[keep]])
    return true_rows, pred_rows


def _score(logits: np.ndarray, label_ids: np.ndarray, labels: list[str]) -> dict[str, Any]:
    true_rows, pred_rows = tags_of_rows(logits, label_ids, labels)
    return entity_metrics(true_rows, pred_rows)


def _sentence_score(output: Any, owner: list[int], sentences: list[Sentence], labels: list[str]) -> dict[str, Any]:
    true_rows, pred_rows = tags_of_rows(output.predictions, output.label_ids, labels)
    true: list[list[str]] = [[] for _ in sentences]
    pred: list[list[str]] = [[] for _ in sentences]
    for index, t, p in zip(owner, true_rows, pred_rows, strict=True):
        true[index] += t
        pred[index] += p
    return entity_metrics(true, pred, [s.words for s in sentences])


@dataclass
class TokenTrainer:
    """A built entity-recognition `Trainer` and what was built with it."""

    trainer: Any
    splits: dict[str, Any]
    owners: dict[str, list[int]]  # per evaluated row: the sentence it came from (long sentences become windows)
    hw: Any
    cfg: TrainConfig  # the config with its recipe resolved for this data (training/schedule.py)
    schedule: Schedule
    metric: str = METRIC


def build_token_trainer(
    cfg: TrainConfig,
    data: TokenData,
    model_path: str,
    out: Path,
    search: bool = False,
    per_epoch: bool = False,
    **argument_overrides: Any,
) -> TokenTrainer:
    """The Trainer of an entity-recognition run: aligned rows, a fresh token head, entity-level metrics.

    `search=True` (`baton tune`) gives it a `model_init` instead of a model, so that every trial starts from a fresh
    head, and no early stopping (epochs is a searched parameter)."""
    import transformers
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        EarlyStoppingCallback,
        Trainer,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not tokenizer.is_fast:
        raise DataError(f"--model: {cfg.model} has no fast tokenizer; entity recognition needs its word ids")
    check_max_length(model_path, cfg.max_length)
    tokenizer.model_max_length = cfg.max_length
    splits = {"train": _rows(tokenizer, data.train, data, cfg, True)[0]}
    owners = {}
    splits["validation"], owners["validation"] = _rows(tokenizer, data.validation, data, cfg, False)
    if data.test:
        splits["test"], owners["test"] = _rows(tokenizer, data.test, data, cfg, False)
    windows = len(splits["train"]) - len(data.train)
    if windows:
        logger.info("%d long training sentence(s) became %d extra overlapping window(s)", windows, windows)

    def new_model(trial: Any = None) -> Any:
        transformers.set_seed(cfg.seed)  # the new head's initialisation depends on it
        model = AutoModelForTokenClassification.from_pretrained(
            model_path,
            num_labels=len(data.labels),
            id2label=dict(enumerate(data.labels)),
            label2id=data.label2id,
            ignore_mismatched_sizes=True,
        )
        transformers.set_seed(cfg.seed)  # as Trainer.__init__ does for a run: a tune trial trains like its retrain
        return model

    cfg, schedule = cfg.scheduled(len(splits["train"]), world_size())
    eval_steps = None if search or per_epoch else schedule.eval_steps  # tune's trials report (and prune) by epoch
    args, hw = trainer_arguments(
        cfg, out, len(splits["train"]), METRIC, evaluate_every=eval_steps, **argument_overrides
    )

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        m = _score(eval_pred.predictions, eval_pred.label_ids, data.labels)
        return {k: m[k] for k in ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")}

    trainer = Trainer(
        **({"model_init": new_model} if search else {"model": new_model()}),
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(cfg.patience or 0)] if cfg.patience and not search else [],
    )
    return TokenTrainer(trainer, splits, owners, hw, cfg, schedule)


@dataclass
class _TokenSteps:
    """Entity recognition's part of the run loop (training/loop.py)."""

    cfg: TrainConfig
    data: TokenData | None = None

    def prepare(self, model_path: str) -> None:
        self.data = prepare_token_data(self.cfg)

    def build(self, out: Path, model_path: str, checkpoint: str | None) -> TokenTrainer:
        assert self.data is not None
        built = build_token_trainer(self.cfg, self.data, model_path, out)
        self.cfg = built.cfg  # the schedule resolved
        logger.info("recipe: %s", describe_schedule(built.schedule))
        use_console(built.trainer, METRIC)
        return built

    def before(self, built: TokenTrainer) -> dict[str, Any]:
        return {}  # an untrained tagger's entity F1 is 0: nothing to learn from scoring it

    def after(self, built: TokenTrainer, before: dict[str, Any]) -> dict[str, Any]:
        """Rows in input order (no length grouping), windows joined back into whole sentences."""
        assert self.data is not None
        data, trainer = self.data, built.trainer
        trainer.args.group_by_length = False
        sentences = {"validation": data.validation, "test": data.test or []}
        results: dict[str, dict[str, Any]] = {}
        for name in ("validation", "test"):
            if name in built.splits:
                output = trainer.predict(built.splits[name], metric_key_prefix=name)
                results[name] = _sentence_score(output, built.owners[name], sentences[name], data.labels)
        validation = results["validation"]
        beaten = validation[METRIC] >= 0.01
        if not beaten:
            logger.warning(
                "THE MODEL DOES NOT BEAT THE TRIVIAL BASELINE: validation entity F1 %.4f; tagging every word O scores "
                "0. `baton export` refuses it without --allow-untrained.",
                validation[METRIC],
            )
        metrics: dict[str, Any] = dict(results)
        metrics["baseline"] = before
        metrics["trivial_baseline"] = {"metric": METRIC, "value": 0.0, "answer": ["O"], "beaten": beaten}
        metrics["warnings"] = logged(
            advise(
                schedule=built.schedule,
                validation={},  # entity F1 is not a proportion of rows: no interval rule
                validation_rows=len(data.validation),
                baseline=metrics["trivial_baseline"],
                dropped={},
                smallest_class=None,
                few_shot=False,
                metric=METRIC,
            )
        )
        return metrics

    def sizes(self, built: TokenTrainer) -> dict[str, Any]:
        assert self.data is not None
        return {"train_samples": len(self.data.train), "train_rows": len(built.splits["train"])}

    def write(self, out: Path, tmp_model: Path, model_path: str, built: TokenTrainer, metrics: dict[str, Any]) -> None:
        assert self.data is not None
        history = built.trainer.state.log_history
        _write_run(out, tmp_model, self.cfg, model_path, self.data, metrics, history, built.schedule)


def run_token_training(cfg: TrainConfig) -> RunResult:
    """Fine-tune `cfg.model` for entity recognition in the one run loop and write the run directory."""
    return run_loop(cfg, cfg.model, _TokenSteps(cfg))


def _write_run(
    out: Path,
    tmp_model: Path,
    cfg: TrainConfig,
    model_path: str,
    data: TokenData,
    metrics: dict[str, Any],
    log_history: list[dict[str, Any]],
    schedule: Schedule,
) -> None:
    install_model(out, tmp_model, RUN_FILES)
    write_json_atomic(
        out / "train_args.json",
        {
            "config": cfg.to_dict(),
            "task": Task.ENTITIES,
            "scheme": SCHEME,
            "resolved_model": model_path,
            "base_model": cfg.model,
            "problem_type": "token_classification",
            "labels": data.labels,
            "text_column": None,
            "text_pair_column": None,
            "label_column": None,
            "tokens_column": cfg.tokens_column,
            "tags_column": cfg.tags_column,
            "max_length": cfg.max_length,
            "stride": min(cfg.stride, cfg.max_length // 2),  # what the windows used (capped at half a window)
            "threshold": 0.5,
            "validation_source": data.validation_source,
            "files": data.report,
            "schedule": schedule.to_dict(),
            "sizes": {
                "train": len(data.train),
                "validation": len(data.validation),
                "test": len(data.test) if data.test else 0,
            },
        },
    )
    write_json_atomic(out / LOG_HISTORY, log_history)  # `baton compare` overlays these
    plot_training_curves(log_history, METRIC, out / "training_curves.png")
    (out / "report.md").write_text(_report(out, cfg, data, metrics, schedule), encoding="utf-8")
    finish_run(out, metrics)


def _report(out: Path, cfg: TrainConfig, data: TokenData, metrics: dict[str, Any], schedule: Schedule) -> str:
    training = metrics["training"]
    lines = [
        f"# Training run: {out.name}",
        "",
        "| | |",
        "|---|---|",
        f"| base model | {cfg.model} |",
        f"| task | {Task.ENTITIES} ({SCHEME}) |",
        f"| tags | {', '.join(data.labels)} |",
        f"| train sentences | {len(data.train)} ({training['train_rows']} rows with windows) |",
        f"| validation | {data.validation_source} |",
        f"| epochs run | {training['epochs_run']} |",
        f"| learning rate | {cfg.learning_rate} |",
        f"| batch size | {cfg.batch_size} |",
        f"| recipe | {schedule.reason} |",
        f"| wall time (s) | {training['wall_time_s']:.1f} |",
        f"| label all sub-tokens | {cfg.label_all_tokens} |",
    ]
    for split, f in data.report.items():
        lines.append(
            f"| {split} file | {f['layout']}; {f['dropped_empty']} empty sentence(s) dropped, "
            f"{f['invalid_transitions']} invalid IOB transition(s) |"
        )
    if not metrics["trivial_baseline"]["beaten"]:
        lines.append("| trivial baseline | **NOT BEATEN: entity F1 below 0.01 (tagging everything O scores 0)** |")
    for split in ("validation", "test"):
        if split not in metrics:
            continue
        m = metrics[split]
        lines += ["", *entity_section(f"{split} ({m['samples']} sentences, {m['entities_true']} entities)", m)]
    lines += ["", "## Training curves", "", "![training curves](training_curves.png)", ""]
    return "\n".join(lines)

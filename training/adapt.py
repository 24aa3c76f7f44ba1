"""`baton adapt`: domain adaptation by continued masked-language-model pre-training on unlabeled in-domain text.

    texts      a .txt file (one document per line) or CSV/JSON/JSONL/parquet with `--text-column`
    blocks     documents tokenized without special tokens and packed end to end into blocks of `max_length`
               ([CLS] … [SEP]), so short lines waste no compute; each token keeps its character offsets, shifted
               per document, so whole-word masking never joins two documents' words
    masking    transformers' MLM collator with whole-word masking (`mlm_probability` of the words)
    head       a checkpoint without an MLM head (the default MiniLM ships none) gets one: its decoder is tied to
               the word embeddings, the transform layer starts fresh; the log says so
    output     a run directory: `model/` (loads with `baton train --model RUN/model` and `from_pretrained`),
               `metrics.json` (held-out perplexity before and after), `train_args.json`, `report.md` + loss curve

Early stopping on held-out loss; `--resume`/`--overwrite` as in `train`. The held-out texts are `--validation-file`
or a seeded `validation_fraction` of the training documents.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton._io import write_json_atomic
from baton.errors import ConfigError, DataError
from baton.training.config import Bf16Mode, ReportTo
from baton.training.loop import run_loop
from baton.training.report import plot_training_curves
from baton.training.rundir import (
    Hardware,
    finish_run,
    hold_out,
    install_model,
    trainer_arguments,
)

__all__ = ["AdaptConfig", "AdaptResult", "fresh_head_keys", "pack_blocks", "read_documents", "run_adaptation"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    train_file: str
    output_dir: str
    validation_file: str | None = None
    text_column: str = "text"
    model: str = "minilm"
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None  # a fresh MLM head's peak rate; None: learning_rate
    max_length: int = 128
    mlm_probability: float = 0.15
    validation_fraction: float = 0.05
    max_train_samples: int | None = None
    patience: int = 2
    seed: int = 42
    bf16: Bf16Mode = Bf16Mode.AUTO
    report_to: ReportTo = ReportTo.NONE
    overwrite: bool = False
    resume: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bf16", Bf16Mode.parse(self.bf16))
        object.__setattr__(self, "report_to", ReportTo.parse(self.report_to))
        checks = [
            (self.epochs > 0, f"--epochs must be > 0 (got {self.epochs})"),
            (self.batch_size > 0, f"--batch-size must be > 0 (got {self.batch_size})"),
            (0 < self.learning_rate < 1, f"--learning-rate must be in (0, 1) (got {self.learning_rate})"),
            (
                self.head_learning_rate is None or 0 < self.head_learning_rate < 1,
                f"--head-learning-rate must be in (0, 1) (got {self.head_learning_rate})",
            ),
            (16 <= self.max_length <= 8192, f"--max-length must be in [16, 8192] (got {self.max_length})"),
            (0 < self.mlm_probability < 1, f"--mlm-probability must be in (0, 1) (got {self.mlm_probability})"),
            (0 < self.validation_fraction < 1, "--validation-fraction must be in (0, 1)"),
            (self.max_train_samples is None or self.max_train_samples > 0, "--max-train-samples must be > 0"),
            (self.patience >= 0, "--patience must be >= 0"),
            (not (self.resume and self.overwrite), "--resume and --overwrite exclude each other"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class AdaptResult:
    output_dir: Path
    metrics: dict[str, Any]


def read_documents(path: str, flag: str, text_column: str, column_flag: str = "--text-column") -> list[str]:
    """Non-empty documents of a .txt file (one per line) or of a labelled-data file's text column."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{flag}: file not found: {p}")
    if p.suffix.lower() == ".txt":
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"{flag}: {p} is not UTF-8 (byte {exc.start})") from exc
        docs = [line.strip() for line in lines if line.strip()]
    else:
        from baton.training.data import load_labelled_file

        ds = load_labelled_file(path, flag)
        if text_column not in ds.column_names:
            raise DataError(
                f"{flag}: no column '{text_column}' ({column_flag}); columns found: {', '.join(ds.column_names)}"
            )
        docs = [str(t).strip() for t in ds[text_column] if t is not None and str(t).strip()]
    if not docs:
        raise DataError(f"{flag}: {p} holds no text")
    return docs


def fresh_head_keys(model: Any, missing_keys: list[str]) -> list[str]:
    """The MLM head's tensors that the checkpoint lacked: the missing ones outside the encoder (BERT's
    `cls.predictions.*`, MPNet's and RoBERTa's `lm_head.*`)."""
    return [k for k in missing_keys if not k.startswith(f"{model.base_model_prefix}.")]


def _head_rate_trainer(trainer_cls: type, head: set[str], rate: float) -> type:
    """A Trainer whose optimizer gives the fresh head's tensors their own peak rate (the scheduler scales each group
    alike). The decoder is tied to the word embeddings, so it stays with the encoder's rate."""

    class _HeadRateTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        def create_optimizer(self) -> Any:
            if self.optimizer is None:  # type: ignore[has-type]
                decay = set(self.get_decay_parameter_names(self.model))
                groups: dict[tuple[bool, bool], list[Any]] = {}
                for name, param in self.model.named_parameters():
                    if param.requires_grad:
                        groups.setdefault((name in head, name in decay), []).append(param)
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
                self.optimizer = cls(
                    [
                        {
                            "params": params,
                            "weight_decay": self.args.weight_decay if decayed else 0.0,
                            **({"lr": rate} if in_head else {}),
                        }
                        for (in_head, decayed), params in groups.items()
                    ],
                    **kwargs,
                )
            return self.optimizer

    return _HeadRateTrainer


def pack_blocks(tokenizer: Any, docs: list[str], max_length: int) -> dict[str, list[list[Any]]]:
    """Documents packed end to end into [CLS] … [SEP] blocks of at most `max_length` tokens, with offsets shifted so
    no two documents' tokens touch (whole-word masking reads word boundaries from offsets)."""
    enc = tokenizer(docs, add_special_tokens=False, return_offsets_mapping=True)
    budget = max_length - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ConfigError("--model: its tokenizer has no [CLS]/[SEP] tokens; baton adapt packs BERT-style blocks")
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    shift = 0
    for doc, doc_ids, doc_offsets in zip(docs, enc["input_ids"], enc["offset_mapping"], strict=True):
        ids += doc_ids
        offsets += [(s + shift, e + shift) for s, e in doc_offsets]
        shift += len(doc) + 2  # a gap: the next document's first token never continues this one's last word
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sep
    blocks: dict[str, list[list[Any]]] = {
        "input_ids": [],
        "attention_mask": [],
        "special_tokens_mask": [],
        "offset_mapping": [],
    }
    for start in range(0, len(ids), budget):
        chunk = ids[start : start + budget]
        fill = budget - len(chunk)  # the last block is padded: every block is max_length long (the collator
        # pads input ids, not offsets)
        blocks["input_ids"].append([cls, *chunk, sep] + [pad] * fill)
        blocks["attention_mask"].append([1] * (len(chunk) + 2) + [0] * fill)
        blocks["special_tokens_mask"].append([1] + [0] * len(chunk) + [1] + [1] * fill)
        blocks["offset_mapping"].append([(0, 0), *offsets[start : start + budget], (0, 0)] + [(0, 0)] * fill)
    return blocks


@dataclass
class _AdaptSteps:
    """Masked-LM domain adaptation's part of the run loop (training/loop.py)."""

    cfg: AdaptConfig
    docs: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    source: str = ""
    fresh: list[str] = field(default_factory=list)

    def prepare(self, model_path: str) -> None:
        cfg = self.cfg
        docs = read_documents(cfg.train_file, "--train-file", cfg.text_column)
        if cfg.validation_file:
            self.held = read_documents(cfg.validation_file, "--validation-file", cfg.text_column)
            self.source = f"--validation-file {cfg.validation_file}"
        else:
            docs, self.held = hold_out(docs, cfg.validation_fraction, cfg.seed)
            self.source = f"random {cfg.validation_fraction:.0%} of --train-file (seed {cfg.seed})"
        if cfg.max_train_samples is not None and cfg.max_train_samples < len(docs):
            docs = random.Random(cfg.seed).sample(docs, cfg.max_train_samples)
        self.docs = docs

    def build(self, out: Path, model_path: str, checkpoint: str | None) -> _Built:
        import transformers
        from datasets import Dataset
        from transformers import (
            AutoModelForMaskedLM,
            AutoTokenizer,
            DataCollatorForLanguageModeling,
            EarlyStoppingCallback,
            Trainer,
        )

        cfg = self.cfg
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        if not tokenizer.is_fast or tokenizer.mask_token is None:
            raise ConfigError(f"--model: {cfg.model} needs a fast tokenizer with a mask token for masked-LM training")
        train = Dataset.from_dict(pack_blocks(tokenizer, self.docs, cfg.max_length))
        validation = Dataset.from_dict(pack_blocks(tokenizer, self.held, cfg.max_length))
        transformers.set_seed(cfg.seed)
        model, info = AutoModelForMaskedLM.from_pretrained(model_path, output_loading_info=True)
        self.fresh = fresh_head_keys(model, info["missing_keys"])
        if self.fresh:
            logger.info(
                "%s has no MLM head: its decoder is tied to the word embeddings, the transform layer starts fresh (%d "
                "tensors)",
                cfg.model,
                len(self.fresh),
            )
        # Whole-word masking in transformers 4.57 replaces every chosen word with [MASK]: it supports no random or
        # kept tokens (asking for them hits a bug in its own warning), so BERT's 80/10/10 split is not available.
        collator = DataCollatorForLanguageModeling(
            tokenizer,
            mlm_probability=cfg.mlm_probability,
            whole_word_mask=True,
            mask_replace_prob=1.0,
            random_replace_prob=0.0,
            seed=cfg.seed,
        )
        steps = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
        by_steps: dict[str, Any] = {} if cfg.epochs >= 1 else {"eval_strategy": "steps", "save_strategy": "steps"}
        args, hw = trainer_arguments(
            cfg,
            out,
            len(train),
            "eval_loss",
            greater_is_better=False,
            eval_steps=max(1, int(steps // 2)),
            save_steps=max(1, int(steps // 2)),
            remove_unused_columns=False,  # the collator reads the offsets and special-token masks
            **by_steps,
        )
        head_rate = cfg.head_learning_rate if self.fresh and cfg.head_learning_rate is not None else None
        if head_rate is not None:
            logger.info("the fresh head trains at a peak rate of %g, the encoder at %g", head_rate, cfg.learning_rate)
        trainer = (_head_rate_trainer(Trainer, set(self.fresh), head_rate) if head_rate is not None else Trainer)(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=collator,
            callbacks=[EarlyStoppingCallback(cfg.patience)] if cfg.patience > 0 else [],
        )
        return _Built(trainer, hw, tokenizer, len(train), len(validation))

    def before(self, built: _Built) -> dict[str, Any]:
        return {"loss": built.trainer.evaluate()["eval_loss"]}

    def after(self, built: _Built, before: dict[str, Any]) -> dict[str, Any]:
        loss_before, after = before.get("loss"), built.trainer.evaluate()["eval_loss"]
        return {
            "validation": {
                "loss_before": loss_before,
                "loss_after": after,
                "perplexity_before": math.exp(loss_before) if loss_before is not None else None,
                "perplexity_after": math.exp(after),
                "blocks": built.validation_blocks,
            }
        }

    def sizes(self, built: _Built) -> dict[str, Any]:
        return {"documents": len(self.docs), "blocks": built.train_blocks}

    def write(self, out: Path, tmp_model: Path, model_path: str, built: _Built, metrics: dict[str, Any]) -> None:
        cfg = self.cfg
        built.tokenizer.save_pretrained(str(tmp_model))
        install_model(out, tmp_model)
        write_json_atomic(
            out / "train_args.json",
            {
                "task": "masked-lm",
                "config": {**dataclasses.asdict(cfg), "bf16": cfg.bf16.value, "report_to": cfg.report_to.value},
                "resolved_model": model_path,
                "validation_source": self.source,
                "fresh_mlm_head": bool(self.fresh),
            },
        )
        plot_training_curves(built.trainer.state.log_history, "loss", out / "training_curves.png")
        v = metrics["validation"]
        (out / "report.md").write_text(
            f"# Domain adaptation: {out.name}\n\n| | |\n|---|---|\n| base model | {cfg.model} |\n"
            f"| documents | {len(self.docs)} ({built.train_blocks} blocks of {cfg.max_length}) |\n"
            f"| held out | {self.source} |\n"
            f"| perplexity before | {v['perplexity_before']} |\n| perplexity after | {v['perplexity_after']:.3f} |\n"
            f"| wall time (s) | {metrics['training']['wall_time_s']:.1f} |\n\n![loss](training_curves.png)\n",
            encoding="utf-8",
        )
        finish_run(out, metrics)


@dataclass
class _Built:
    trainer: Any
    hw: Hardware
    tokenizer: Any
    train_blocks: int
    validation_blocks: int


def run_adaptation(cfg: AdaptConfig) -> AdaptResult:
    """Continue masked-LM pre-training of `cfg.model` on unlabelled text, in the one run loop."""
    result = run_loop(cfg, cfg.model, _AdaptSteps(cfg))
    return AdaptResult(result.output_dir, result.metrics)

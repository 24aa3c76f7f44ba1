"""`baton distill`: a smaller student from a fine-tuned teacher run (DistilBERT's recipe, on our runs).

The student is the teacher with `layers` of its encoder layers, taken evenly spread (6 → 3 keeps layers 0, 2, 4 as
DistilBERT keeps every other one), its embeddings, pooler and classifier head copied. It trains with `Trainer` on
the teacher's own data and labels, with the loss

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

(multi-label: BCE against the teacher's sigmoid probabilities, and against the labels). `unlabeled_file` adds
in-domain texts without labels: they are tokenized like the training texts, marked unlabelled (label -100), and
learn from the teacher's soft labels alone (the CE term averages over the labelled rows of a batch only). The output
is a normal run directory: `baton export` takes it as it takes any run, and its train_args.json says what it came
from.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton.errors import ConfigError, ModelError
from baton.training.adapt import read_documents
from baton.training.classification import Recipe, run_text_classification
from baton.training.config import TrainConfig
from baton.training.fewshot import HEAD_FILE
from baton.training.rundir import RunResult, read_run
from baton.training.tasks import training_task

__all__ = ["DistillConfig", "kept_layers", "run_distillation"]

logger = logging.getLogger(__name__)

_LAYER = re.compile(r"^(.*\.layer\.)(\d+)(\..*)$")


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    run_dir: str
    output_dir: str
    layers: int = 3
    temperature: float = 2.0
    alpha: float = 0.5
    epochs: float | None = None  # None: the teacher's
    learning_rate: float | None = None  # None: the teacher's
    seed: int | None = None
    unlabeled_file: str | None = None
    unlabeled_text_column: str = "text"
    overwrite: bool = False
    resume: bool = False

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise ConfigError(f"--layers must be >= 1 (got {self.layers})")
        if self.temperature <= 0:
            raise ConfigError(f"--temperature must be > 0 (got {self.temperature})")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"--alpha must be in [0, 1] (got {self.alpha})")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"--epochs must be > 0 (got {self.epochs})")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise ConfigError(f"--learning-rate must be in (0, 1) (got {self.learning_rate})")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")


def kept_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spread teacher layers, first one included: 6 → 3 gives [0, 2, 4]; 12 → 6 gives [0, 2, ..., 10]."""
    if not 1 <= student_layers < teacher_layers:
        raise ConfigError(f"--layers must be in [1, {teacher_layers - 1}] for a {teacher_layers}-layer teacher")
    return [int(i * teacher_layers / student_layers) for i in range(student_layers)]


_UNLABELLED = -100  # the label of an unlabelled row (cross-entropy's ignore index)


class _Distill(Recipe):
    def __init__(self, teacher_dir: Path, cfg: DistillConfig, teacher_layers: int, unlabeled: list[str]) -> None:
        self.teacher_dir, self.cfg = teacher_dir, cfg
        self.keep = kept_layers(teacher_layers, cfg.layers)
        self.teacher_layers = teacher_layers
        self.unlabeled = unlabeled
        self.teacher: Any = None

    def train_split(self, train: Any, tokenizer: Any, spec: Any, max_length: int) -> Any:
        if not self.unlabeled:
            return train
        from datasets import Dataset, concatenate_datasets

        width = len(spec.labels)
        label: Any = [float(_UNLABELLED)] * width if spec.is_multi_label else _UNLABELLED
        extra = Dataset.from_dict(
            {
                **tokenizer(self.unlabeled, truncation=True, max_length=max_length),
                "labels": [label] * len(self.unlabeled),
            }
        )
        extra = extra.select_columns(train.column_names).cast(train.features)
        logger.info("distilling on %d labelled and %d unlabelled texts", len(train), len(extra))
        return concatenate_datasets([train, extra])

    def build_model(self, model_path: str, spec: Any) -> Any:
        from transformers import AutoModelForSequenceClassification

        teacher = AutoModelForSequenceClassification.from_pretrained(self.teacher_dir).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher
        config = teacher.config.__class__.from_dict({**teacher.config.to_dict(), "num_hidden_layers": self.cfg.layers})
        student = AutoModelForSequenceClassification.from_config(config)
        position = {old: new for new, old in enumerate(self.keep)}
        state = {}
        for key, value in teacher.state_dict().items():
            m = _LAYER.match(key)
            if m is None:
                state[key] = value
            elif int(m.group(2)) in position:
                state[f"{m.group(1)}{position[int(m.group(2))]}{m.group(3)}"] = value
        missing, unexpected = student.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(
                f"cannot map the teacher's weights onto the student: missing {missing[:3]}, extra {unexpected[:3]}"
            )
        logger.info("student: %d of the teacher's %d layers %s", self.cfg.layers, self.teacher_layers, self.keep)
        return student

    def trainer_class(self, trainer_cls: type) -> type:
        import torch
        import torch.nn.functional as F

        recipe = self

        class _DistillTrainer(trainer_cls):  # type: ignore[misc, valid-type]
            def compute_loss(
                self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
            ) -> Any:
                labels = inputs.pop("labels")
                outputs = model(**inputs)
                student = outputs.logits.float()
                teacher_model = recipe.teacher.to(student.device)
                with torch.no_grad():
                    teacher = teacher_model(**inputs).logits.float()
                t, a = recipe.cfg.temperature, recipe.cfg.alpha
                multi = model.config.problem_type == "multi_label_classification"
                labelled = (labels[:, 0] if multi else labels) != _UNLABELLED
                if multi:
                    soft = F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t
                else:
                    soft = F.kl_div(
                        F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1), reduction="batchmean"
                    ) * (t * t)
                if not labelled.any():  # a batch of unlabelled texts only: the teacher is the whole signal
                    hard = student.sum() * 0.0
                elif multi:
                    hard = F.binary_cross_entropy_with_logits(student[labelled], labels[labelled].to(student.dtype))
                else:
                    hard = F.cross_entropy(student[labelled], labels[labelled])
                loss = a * soft + (1 - a) * hard
                return (loss, outputs) if return_outputs else loss

        return _DistillTrainer

    def train_args(self) -> dict[str, Any]:
        return {
            "distilled_from": {
                "run": str(Path(self.cfg.run_dir).resolve()),
                "teacher_layers": self.teacher_layers,
                "kept_layers": self.keep,
                "temperature": self.cfg.temperature,
                "alpha": self.cfg.alpha,
                "unlabeled_file": self.cfg.unlabeled_file,
                "unlabeled_texts": len(self.unlabeled),
            }
        }


def run_distillation(cfg: DistillConfig) -> RunResult:
    """Distil the run at `cfg.run_dir` into a `cfg.layers`-layer student and write its run directory."""
    teacher = read_run(cfg.run_dir)  # the one reader of a run directory
    run, args, model_dir = teacher.root, teacher.train_args, teacher.root / "model"
    try:
        task = teacher.task
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if not training_task(task).distils:
        raise ConfigError(f"{run} is a {task} run: `baton distill` distils classifiers")
    if (model_dir / HEAD_FILE).is_file():  # its head is not the model's own: the student would start from none
        raise ConfigError(
            f"{run} was trained by the {args.get('method', 'few-shot')} path (a pooled head in {HEAD_FILE}); "
            "`baton distill` needs a teacher with its own classification head: train it with --no-few-shot"
        )
    teacher_layers = int(teacher.config.get("num_hidden_layers", 0))
    kept_layers(teacher_layers, cfg.layers)  # refuse a student as deep as its teacher before loading anything
    unlabeled: list[str] = []
    if cfg.unlabeled_file:  # read before anything in --output is touched
        if args["config"].get("text_pair_column"):
            raise ConfigError("--unlabeled-file: the teacher classifies text pairs; unlabelled texts are single texts")
        unlabeled = read_documents(
            cfg.unlabeled_file, "--unlabeled-file", cfg.unlabeled_text_column, "--unlabeled-text-column"
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base = {k: v for k, v in args["config"].items() if k in fields}
    overrides = {
        "model": str(model_dir),
        "output_dir": cfg.output_dir,
        "overwrite": cfg.overwrite,
        "resume": cfg.resume,
        "baseline": False,
        **({"epochs": cfg.epochs} if cfg.epochs is not None else {}),
        **({"learning_rate": cfg.learning_rate} if cfg.learning_rate is not None else {}),
        **({"seed": cfg.seed} if cfg.seed is not None else {}),
    }
    train_cfg = TrainConfig(**{**base, **overrides})
    return run_text_classification(train_cfg, _Distill(model_dir, cfg, teacher_layers, unlabeled))

"""`baton train --few-shot`: SetFit's method (Tunstall et al. 2022) on our packaged sentence-transformers.

Two stages, as in SetFit:

1. **Contrastive fine-tuning of the body.** Pairs of training texts are drawn from the labels: for each text and
   each of `ITERATIONS` rounds, one text of the same label (target cosine 1) and one of another (target 0). The body
   is trained on the cosine of the pair's mean-pooled embeddings (mean squared error), `PAIR_BATCH` pairs a step,
   at `LEARNING_RATE`, one pass, at most `MAX_PAIRS` pairs.
2. **A logistic-regression head** on the tuned body's embeddings (scikit-learn, C = 1).

**Pooled fine-tuning** (`Method.POOLED`, a few hundred rows) keeps the same model shape, mean pooling and a linear
head, and trains it the other way round, as linear probing then fine-tuning: the logistic-regression head is fitted
on the untouched body's embeddings, then body and head are fine-tuned together with cross-entropy
(`POOLED_LEARNING_RATE` for the body, `POOLED_HEAD_LEARNING_RATE` for the head, batch `SMALL_BATCH`, `MIN_STEPS`
steps, linear warm-up then decay). A head that starts right keeps the first steps from wrecking the body, and the
mean-pooled embeddings are what these sentence-transformers were trained to give (their [CLS] pooler is untrained).

We write the method on `transformers` rather than depend on `setfit`: setfit 1.2 brings sentence-transformers and
`evaluate`, and its model is a SentenceTransformer plus a scikit-learn object, which our Optimum export and parity
gates cannot take as they are. Here the run directory holds the body as a plain transformers model and the head as
`head.json` (pooling, normalisation, weight, bias); `baton export` appends the pooling and the head to Optimum's
feature-extraction graph (export/pooled_head.py), so the bundle answers with `logits` like any classifier.

The figures that set the defaults, and the size below which `baton train` takes this path by itself, are in
docs/training.md, "Few-shot"; the decision is in docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baton.errors import ConfigError
from baton.training.advice import advise, logged
from baton.training.config import TrainConfig
from baton.training.data import PreparedData, prepare_data
from baton.training.metrics import classification_metrics
from baton.training.models import check_max_length, resolve_model
from baton.training.rundir import MODEL_DIR, clear_stale_checkpoints, prepare_output_dir
from baton.training.schedule import MIN_STEPS, SMALL_BATCH, Method, Schedule

__all__ = [
    "HEAD_FILE",
    "ITERATIONS",
    "MAX_PAIRS",
    "PooledHead",
    "check_few_shot",
    "contrastive_pairs",
    "encode",
    "mean_pool",
    "mean_pooled",
    "read_head",
    "run_few_shot",
]

logger = logging.getLogger(__name__)

HEAD_FILE = "head.json"
ITERATIONS = 20
PAIR_BATCH = 16
LEARNING_RATE = 2e-5
MAX_PAIRS = 4000
WARMUP_RATIO = 0.1
POOLED_LEARNING_RATE = 5e-5
POOLED_HEAD_LEARNING_RATE = 1e-3
POOLED_WEIGHT_DECAY = 0.01


@dataclass(frozen=True)
class PooledHead:
    """What sits on the body: masked mean pooling, optional L2 normalisation, then `logits = x @ weight.T + bias`."""

    pooling: str
    normalize: bool
    weight: np.ndarray  # (labels, hidden)
    bias: np.ndarray  # (labels,)

    def __post_init__(self) -> None:
        if self.pooling != "mean":
            raise ValueError(f"unsupported pooling {self.pooling!r} (supported: mean)")
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"head shapes do not fit: weight {self.weight.shape}, bias {self.bias.shape}")

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings @ self.weight.T + self.bias, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "weight": self.weight.tolist(),
            "bias": self.bias.tolist(),
        }


def read_head(model_dir: Path) -> PooledHead | None:
    """The pooled head of a few-shot run's model/, or None for a model with its own classification head."""
    path = model_dir / HEAD_FILE
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return PooledHead(
        str(raw["pooling"]),
        bool(raw["normalize"]),
        np.asarray(raw["weight"], dtype=np.float32),
        np.asarray(raw["bias"], dtype=np.float32),
    )


def _modules(model_path: str) -> list[dict[str, Any]]:
    """A sentence-transformer's modules.json ([] for any other model, or one that cannot be read)."""
    try:
        modules = json.loads((Path(model_path) / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [m for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []


def _normalizes(model_path: str) -> bool:
    """Whether the sentence-transformer L2-normalises its embeddings (a Normalize module in modules.json)."""
    return any(str(m.get("type", "")).endswith(".Normalize") for m in _modules(model_path))


def mean_pooled(model_path: str) -> bool:
    """Whether the model is a sentence-transformer that mean-pools its token states (modules.json, 1_Pooling)."""
    pooling = [m for m in _modules(model_path) if str(m.get("type", "")).endswith(".Pooling")]
    try:
        (module,) = pooling
        config = json.loads((Path(model_path) / module["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(config.get("pooling_mode_mean_tokens"))


def mean_pool(hidden: Any, attention_mask: Any, normalize: bool) -> Any:
    """Masked mean of the token states (and L2 normalisation): what `PooledHead` sits on, in torch. The exported
    graph computes the same in ONNX ops (export/pooled_head.py)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled


def encode(
    model: Any, tokenizer: Any, texts: list[str], max_length: int, normalize: bool, grad: bool = False, batch: int = 64
) -> Any:
    """Mean-pooled (and, if the model does, normalised) embeddings of `texts`, as a torch tensor."""
    import torch

    out = []
    for start in range(0, len(texts), batch):
        enc = tokenizer(
            texts[start : start + batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        with torch.set_grad_enabled(grad):
            out.append(mean_pool(model(**enc).last_hidden_state, enc["attention_mask"], normalize))
    return torch.cat(out)


def contrastive_pairs(labels: list[int], seed: int, iterations: int = ITERATIONS) -> list[tuple[int, int, float]]:
    """(i, j, target) index pairs: per round and text, one partner of its label (1.0) and one of another (0.0);
    shuffled, at most `MAX_PAIRS`. A label with one text pairs it with itself."""
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_label.setdefault(y, []).append(i)
    pairs: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i, y in enumerate(labels):
            same = [j for j in by_label[y] if j != i] or [i]
            other = [j for lab, idx in by_label.items() if lab != y for j in idx]
            pairs.append((i, rng.choice(same), 1.0))
            if other:
                pairs.append((i, rng.choice(other), 0.0))
    rng.shuffle(pairs)
    return pairs[:MAX_PAIRS]


def _tune_body(
    model: Any, tokenizer: Any, texts: list[str], labels: list[int], cfg: TrainConfig, normalize: bool
) -> tuple[int, int, list[dict[str, float]]]:
    """Stage 1: one pass over the contrastive pairs (cosine similarity loss, linear warm-up then decay)."""
    import torch

    pairs = contrastive_pairs(labels, cfg.seed)
    steps = max(1, (len(pairs) + PAIR_BATCH - 1) // PAIR_BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate or LEARNING_RATE, weight_decay=0.0)
    scheduler = _warmup_then_decay(optimizer, steps)
    model.train()
    history = []
    for step in range(steps):
        chunk = pairs[step * PAIR_BATCH : (step + 1) * PAIR_BATCH]
        a = encode(model, tokenizer, [texts[i] for i, _, _ in chunk], cfg.max_length, normalize, grad=True)
        b = encode(model, tokenizer, [texts[j] for _, j, _ in chunk], cfg.max_length, normalize, grad=True)
        target = torch.tensor([t for _, _, t in chunk], dtype=a.dtype)
        loss = torch.nn.functional.mse_loss(torch.nn.functional.cosine_similarity(a, b), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.append({"step": step + 1, "epoch": (step + 1) / steps, "loss": float(loss.detach())})
    model.eval()
    return steps, len(pairs), history


def _warmup_then_decay(optimizer: Any, steps: int) -> Any:
    """Linear warm-up over `WARMUP_RATIO` of `steps`, then linear decay to 0: both stages' schedule."""
    import torch

    warmup = max(1, int(WARMUP_RATIO * steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )


def _pooled_plan(cfg: TrainConfig, rows: int) -> Schedule:
    """Pooled fine-tuning's schedule: batch `SMALL_BATCH`, `MIN_STEPS` steps; --batch-size, --epochs and
    --learning-rate win."""
    batch = cfg.batch_size or SMALL_BATCH
    per_epoch = max(1, -(-rows // batch))
    steps = max(1, round(cfg.epochs * per_epoch)) if cfg.epochs else MIN_STEPS
    lr = cfg.learning_rate or POOLED_LEARNING_RATE
    return Schedule(
        rows=rows,
        batch_size=batch,
        learning_rate=lr,
        epochs=steps / per_epoch,
        warmup_ratio=WARMUP_RATIO,
        patience=0,
        steps_per_epoch=per_epoch,
        steps=steps,
        eval_steps=None,
        reason=f"pooled: a logistic-regression head, then body (lr {lr:g}) and head (lr "
        f"{POOLED_HEAD_LEARNING_RATE:g}) fine-tuned together for {steps} steps",
    )


def _fine_tune_pooled(
    model: Any, tokenizer: Any, head: PooledHead, texts: list[str], labels: list[int], cfg: TrainConfig, plan: Schedule
) -> tuple[PooledHead, list[dict[str, float]]]:
    """Stage 2 of pooled fine-tuning: body and head together, cross-entropy, from the fitted head."""
    import torch

    linear = torch.nn.Linear(head.weight.shape[1], head.weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(head.weight))
        linear.bias.copy_(torch.from_numpy(head.bias))
    optimizer = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": plan.learning_rate},
            {"params": linear.parameters(), "lr": POOLED_HEAD_LEARNING_RATE},
        ],
        weight_decay=POOLED_WEIGHT_DECAY,
    )
    scheduler = _warmup_then_decay(optimizer, plan.steps)
    rng = random.Random(cfg.seed)
    target = torch.tensor(labels)
    order: list[int] = []
    history = []
    model.train()
    for step in range(plan.steps):
        if len(order) < plan.batch_size:
            order += rng.sample(range(len(texts)), len(texts))
        chunk, order = order[: plan.batch_size], order[plan.batch_size :]
        pooled = encode(model, tokenizer, [texts[i] for i in chunk], cfg.max_length, head.normalize, grad=True)
        loss = torch.nn.functional.cross_entropy(linear(pooled), target[chunk])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.append({"step": step + 1, "epoch": (step + 1) / plan.steps_per_epoch, "loss": float(loss.detach())})
    model.eval()
    weight = linear.weight.detach().numpy().astype(np.float32)
    bias = linear.bias.detach().numpy().astype(np.float32)
    return PooledHead(head.pooling, head.normalize, weight, bias), history


def _fit_head(embeddings: np.ndarray, labels: list[int], n_labels: int, seed: int, normalize: bool) -> PooledHead:
    """Stage 2: logistic regression (C = 1, as SetFit), as a weight and bias over all labels. A binary model's
    one decision function z becomes logits (-z/2, z/2), whose softmax is the model's sigmoid(z)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(embeddings, labels)
    coef, intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
    weight = np.zeros((n_labels, embeddings.shape[1]), dtype=np.float32)
    bias = np.zeros(n_labels, dtype=np.float32)
    classes = [int(c) for c in clf.classes_]
    if len(classes) == 2:
        lo, hi = classes
        weight[lo], weight[hi] = -coef[0] / 2, coef[0] / 2
        bias[lo], bias[hi] = -intercept[0] / 2, intercept[0] / 2
    else:
        for row, cls in enumerate(classes):
            weight[cls], bias[cls] = coef[row], intercept[row]
        missing = set(range(n_labels)) - set(classes)
        bias[list(missing)] = -1e4  # a label with no training row is never answered
    return PooledHead("mean", normalize, weight, bias)


def check_few_shot(cfg: TrainConfig, data: PreparedData) -> None:
    if data.spec.is_multi_label:
        raise ConfigError("--few-shot supports single-label classification (this data is multi-label)")
    if data.spec.text_pair_column:
        raise ConfigError("--few-shot supports single texts, not sentence pairs (--text-pair-column)")


def run_few_shot(cfg: TrainConfig, data: PreparedData | None = None, method: Method = Method.FEW_SHOT) -> Any:
    """Train SetFit-style (or by pooled fine-tuning) and write a normal run directory (model/ is the body plus
    head.json)."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    from baton.training.classification import check_trivial, write_run
    from baton.training.rundir import RunResult

    started = time.perf_counter()
    out, _ = prepare_output_dir(cfg)
    model_path = resolve_model(cfg.model)
    data = data or prepare_data(cfg)
    check_few_shot(cfg, data)
    clear_stale_checkpoints(out)
    spec = data.spec
    transformers.set_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    check_max_length(model_path, cfg.max_length)
    tokenizer.model_max_length = cfg.max_length
    model = AutoModel.from_pretrained(model_path, add_pooling_layer=False)
    normalize = _normalizes(model_path)
    texts = list(data.train[spec.text_column])
    labels = [int(y) for y in data.train["labels"]]
    if method is Method.POOLED:
        schedule = _pooled_plan(cfg, len(texts))
        logger.info(
            "pooled: %d texts, a logistic-regression head, then %d steps of fine-tuning", len(texts), schedule.steps
        )
        model.eval()
        frozen = encode(model, tokenizer, texts, cfg.max_length, normalize).numpy()
        head = _fit_head(frozen, labels, len(spec.labels), cfg.seed, normalize)
        head, history = _fine_tune_pooled(model, tokenizer, head, texts, labels, cfg, schedule)
        n_pairs = 0
    else:
        logger.info("few-shot: %d texts, contrastive pairs on the body, then a logistic-regression head", len(texts))
        steps, n_pairs, history = _tune_body(model, tokenizer, texts, labels, cfg, normalize)
        train_emb = encode(model, tokenizer, texts, cfg.max_length, normalize).numpy()
        head = _fit_head(train_emb, labels, len(spec.labels), cfg.seed, normalize)
        schedule = Schedule(
            rows=len(texts),
            batch_size=PAIR_BATCH,
            learning_rate=cfg.learning_rate or LEARNING_RATE,
            epochs=1.0,
            warmup_ratio=WARMUP_RATIO,
            patience=0,
            steps_per_epoch=steps,
            steps=steps,
            eval_steps=None,
            reason=f"few-shot: {n_pairs} contrastive pairs in {steps} steps, then a logistic-regression head",
        )
    results: dict[str, Any] = {}
    for name, split in (("validation", data.validation), ("test", data.test)):
        if split is not None:
            emb = encode(model, tokenizer, list(split[spec.text_column]), cfg.max_length, normalize).numpy()
            results[name] = classification_metrics(head.logits(emb), np.asarray(split["labels"]), spec.labels, False)

    tmp_model = out / f".{MODEL_DIR}.tmp"
    model.config.update(
        {"id2label": dict(enumerate(spec.labels)), "label2id": spec.label2id, "problem_type": spec.problem_type}
    )
    model.save_pretrained(tmp_model)
    tokenizer.save_pretrained(tmp_model)
    (tmp_model / HEAD_FILE).write_text(json.dumps(head.to_dict()), encoding="utf-8")
    metrics: dict[str, Any] = dict(results)
    metrics["baseline"] = {}
    metrics["trivial_baseline"] = check_trivial(data, results["validation"])
    wall = time.perf_counter() - started
    metrics["training"] = {
        "train_samples": len(texts),
        "pairs": n_pairs,
        "epochs_run": schedule.epochs,
        "best_checkpoint": None,
        "train_runtime_s": wall,
        "train_samples_per_second": (n_pairs * 2 or schedule.steps * schedule.batch_size) / wall,
        "bf16": False,
        "group_by_length": False,
        "world_size": 1,
        "wall_time_s": wall,
    }
    metrics["warnings"] = logged(
        advise(
            schedule=schedule,
            validation=results["validation"],
            validation_rows=len(data.validation),
            baseline=metrics["trivial_baseline"],
            dropped=data.dropped,
            smallest_class=None,
            few_shot=method is Method.FEW_SHOT,
            metric="accuracy",
        )
    )
    extra = {"few_shot": method is Method.FEW_SHOT, "method": str(method), "schedule": schedule.to_dict()}
    resolved = dataclasses.replace(
        cfg,
        few_shot=True if method is Method.FEW_SHOT else cfg.few_shot,
        batch_size=schedule.batch_size,
        epochs=schedule.epochs,
        patience=0,
        learning_rate=schedule.learning_rate,
    )
    write_run(out, tmp_model, resolved, model_path, data, metrics, history, "loss", extra)
    return RunResult(out, metrics)

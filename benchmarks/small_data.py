"""Learning curves of the small-data recipes, side by side (issue 28; figures in docs/training.md, "Small data").

For each size and seed, one sample of the training file (stratified by label; `--per-class N` draws N rows of each
label, `--sizes N` draws N rows keeping each label's share), scored on the whole validation file, with each arm:

  old       the recipe before issue 28: batch 16, lr 1e-4, 3 epochs, patience 2, fine-tuning
  default   `baton train` with no flags (training/schedule.py; the few-shot path where it applies)
  finetune  the new schedule, always fine-tuning (--no-few-shot)
  fewshot   always the few-shot path (--few-shot)
  frozen    the packaged encoder's mean-pooled embeddings, frozen, and a logistic regression
  fewshot-lr5e-5, fewshot-pairs40, fewshot-normalized
            the few-shot path with one change: body learning rate 5e-5, 40 rounds of contrastive pairs (not 20),
            or embeddings L2-normalised whatever the model's modules.json says (variants measured, not shipped)

    python benchmarks/small_data.py ../shared/data/sst2_sentence --per-class 8,16 --sizes 200 --seeds 3 \
        --arms old,default,frozen --json bench-results/small-data-sst2.json

Prints one Markdown table (mean and per-seed validation accuracy) and writes the rows as JSON with the machine.
`--samples DIR --arms ''` only writes the samples (per_class8-s0.jsonl, size200-s0.jsonl, ...), to rerun one with
`baton train`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from _harness import run

ARMS = {
    "old": {"epochs": 3.0, "batch_size": 16, "learning_rate": 1e-4, "patience": 2, "few_shot": False},
    "default": {},
    "finetune": {"few_shot": False},
    "fewshot": {"few_shot": True},
    "lr2e-4": {"learning_rate": 2e-4},  # the default schedule at twice its learning rate
    "pooled": {},  # pooled fine-tuning at any size (training/fewshot.py, Method.POOLED)
    "fewshot-lr5e-5": {"few_shot": True, "learning_rate": 5e-5},
    "fewshot-pairs40": {"few_shot": True},
    "fewshot-normalized": {"few_shot": True},
}

# Arms that change the few-shot method itself: (attribute of training/fewshot.py, its replacement given the original)
_PATCHES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "fewshot-pairs40": ("contrastive_pairs", lambda original: functools.partial(original, iterations=40)),
    "fewshot-normalized": ("_normalizes", lambda original: lambda path: True),
}


def _sample(rows: list[dict[str, Any]], seed: int, per_class: int | None, size: int | None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["label"]), []).append(r)
    if per_class is not None:
        picked = [r for label in sorted(by) for r in rng.sample(by[label], min(per_class, len(by[label])))]
    else:
        assert size is not None
        picked = [
            r for label in sorted(by) for r in rng.sample(by[label], max(1, round(size * len(by[label]) / len(rows))))
        ]
    rng.shuffle(picked)
    return picked


def _frozen(model: str, train: list[dict[str, Any]], val: list[dict[str, Any]]) -> float:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    from baton.training.fewshot import _normalizes, encode
    from baton.training.models import resolve_model

    path = resolve_model(model)
    tok, body = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    norm = _normalizes(path)
    x = encode(body, tok, [r["text"] for r in train], 128, norm).numpy()
    v = encode(body, tok, [r["text"] for r in val], 128, norm).numpy()
    clf = LogisticRegression(max_iter=2000).fit(x, [r["label"] for r in train])
    return float(np.mean(clf.predict(v) == np.array([r["label"] for r in val])))


def _train(arm: str, model: str, train: Path, val: Path) -> float:
    import baton.training.fewshot as fewshot
    from baton.training import TrainConfig, run_training
    from baton.training.fewshot import run_few_shot
    from baton.training.schedule import Method

    with tempfile.TemporaryDirectory() as out, contextlib.ExitStack() as stack:
        if arm in _PATCHES:
            name, replace = _PATCHES[arm]
            stack.enter_context(mock.patch.object(fewshot, name, replace(getattr(fewshot, name))))
        cfg = TrainConfig(model=model, train_file=str(train), validation_file=str(val), output_dir=out, **ARMS[arm])
        result = run_few_shot(cfg, method=Method.POOLED) if arm == "pooled" else run_training(cfg)
        return float(result.metrics["validation"]["accuracy"])


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="a folder with train.jsonl and validation.jsonl ({text, label})")
    parser.add_argument("--per-class", default="", help="comma-separated rows per label")
    parser.add_argument("--sizes", default="", help="comma-separated total rows")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arms", default="old,default,frozen")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--samples", type=Path, default=None, help="also write each sample here (to rerun one)")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    rows = [json.loads(x) for x in (args.data / "train.jsonl").read_text().splitlines()]
    val_file = args.data / "validation.jsonl"
    val = [json.loads(x) for x in val_file.read_text().splitlines()]
    points = [("per_class", int(n)) for n in args.per_class.split(",") if n] + [
        ("size", int(n)) for n in args.sizes.split(",") if n
    ]
    arms = [a for a in args.arms.split(",") if a]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n in points:
            for seed in range(args.seeds):
                sample = _sample(rows, seed, n if kind == "per_class" else None, n if kind == "size" else None)
                train = Path(tmp) / f"{kind}{n}-s{seed}.jsonl"
                train.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in sample))
                if args.samples:
                    args.samples.mkdir(parents=True, exist_ok=True)
                    (args.samples / train.name).write_bytes(train.read_bytes())
                for arm in arms:
                    started = time.perf_counter()
                    if arm == "frozen":
                        acc = _frozen(args.model, sample, val)
                    else:
                        acc = _train(arm, args.model, train, val_file)
                    row = {
                        "point": f"{n} {'per class' if kind == 'per_class' else 'rows'}",
                        "rows": len(sample),
                        "seed": seed,
                        "arm": arm,
                        "accuracy": acc,
                        "seconds": time.perf_counter() - started,
                    }
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"| sample | {' | '.join(arms)} |\n|---|" + "---|" * len(arms))
    for point in dict.fromkeys(r["point"] for r in results):
        cells = []
        for arm in arms:
            accs = [r["accuracy"] for r in results if r["point"] == point and r["arm"] == arm]
            cells.append(f"{statistics.fmean(accs):.3f} ({', '.join(f'{a:.3f}' for a in accs)})")
        print(f"| {point} | {' | '.join(cells)} |")
    return {"model": args.model, "rows": results}


run(__name__, __doc__, configure, measure)

"""How much a text's answer depends on its batch-mates, per variant: dynamic int8 scales activations per batch.

    python benchmarks/int8_batch_effect.py BUNDLE DATA.jsonl [--text-column text] [--samples 872]

Scores every text alone (batch 1), then in the batches the server forms (length-sorted neighbours, 8 and 32) and
in random batches of 8, and prints per variant: label flips against alone (count, rate), the largest change of the
top score, and how close to the decision boundary the flipped texts were (their top-2 margin alone).
Figures: docs/benchmarks.md, "Batched or alone".
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import numpy as np
from _harness import run

from baton.serving import load_bundle
from baton.serving.encoder import length_sorted_chunks
from baton.serving.engine import Engine, sigmoid, softmax
from baton.tools.bench import load_texts


def _probs(engine: Engine, texts: list[str], chunks: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(texts), len(engine.labels)), dtype=np.float64)
    for idx in chunks:
        logits = engine.run(engine.preprocess([texts[i] for i in idx]))
        out[idx] = sigmoid(logits) if engine.multi_label else softmax(logits)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--samples", type=int, default=872)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    texts = load_texts(str(args.data), args.text_column, args.samples)
    bundle = load_bundle(args.bundle)
    rng = random.Random(0)
    shuffled = list(range(len(texts)))
    rng.shuffle(shuffled)
    layouts = {
        "sorted batches of 8": length_sorted_chunks(len(texts), lambda i: len(texts[i]), 8),
        "sorted batches of 32": length_sorted_chunks(len(texts), lambda i: len(texts[i]), 32),
        "random batches of 8": [shuffled[s : s + 8] for s in range(0, len(shuffled), 8)],
    }
    print(f"{bundle.root}: {len(texts)} texts from {args.data}")
    print("| variant | batches | label flips | flip rate | max abs diff of top score | top-2 margin alone of flips |")
    print("|---|---|---|---|---|---|")
    rows = []
    for variant in sorted(bundle.models):
        if variant == "fp16":
            continue
        engine = Engine(bundle, variant, "cpu", threads=1)
        alone = _probs(engine, texts, [[i] for i in range(len(texts))])
        labels_alone = alone.argmax(-1)
        top2 = np.sort(alone, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        for name, chunks in layouts.items():
            batched = _probs(engine, texts, chunks)
            flips = np.nonzero(batched.argmax(-1) != labels_alone)[0]
            top_diff = np.abs(batched.max(-1) - alone.max(-1)).max()
            margins = ", ".join(f"{margin[i]:.3f}" for i in flips[:8]) or "-"
            rows.append(
                {
                    "variant": variant,
                    "batches": name,
                    "flips": len(flips),
                    "texts": len(texts),
                    "max_top_score_change": float(top_diff),
                    "margins_alone_of_flips": [float(margin[i]) for i in flips],
                }
            )
            print(
                f"| {variant} | {name} | {len(flips)} | {len(flips) / len(texts):.2%} | {top_diff:.2e} | {margins} |",
                flush=True,
            )
    return {"bundle": str(bundle.root), "rows": rows}


run(__name__, __doc__, configure, measure)

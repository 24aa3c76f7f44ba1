"""Texts past the window: truncate against chunks (mean, max) where the evidence is spread out, and what a document
costs by its length.

Usage: python benchmarks/long_text.py BUNDLE DATA.jsonl [--docs 200] [--sentences 16] [--threads 2]

Quality: documents of `--sentences` sentences of DATA (a labelled single-label file, e.g. SST-2 validation), five
eighths of them of one label and the rest of another, shuffled; the document's label is the majority's. Each is
scored truncated at the window, and in chunks combined by mean and by max (the bundle's served variant).

Cost: one document of about 128, 512, 2k, 8k and 32k tokens (sentences of DATA repeated), scored in chunks with
`max_chunks` raised to fit it; seconds per document (median of 3) and the process's peak resident memory so far.
Figures: docs/benchmarks.md, "Long documents".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import run

from baton.serving import Predictor
from baton.serving.long_text import MAX_CHUNKS, ChunkCombine, LongText, LongTextSpec
from baton.tools.bench.accounting import memory_mib

LENGTHS = (128, 512, 2048, 8192, 32768)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)


def _documents(rows: list[dict[str, Any]], count: int, sentences: int) -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    by_label: dict[str, list[str]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r["text"])
    labels = sorted(by_label)
    docs, gold = [], []
    major = (sentences * 5 + 7) // 8
    for _ in range(count):
        label, other = rng.sample(labels, 2)
        parts = rng.sample(by_label[label], major) + rng.sample(by_label[other], sentences - major)
        rng.shuffle(parts)
        docs.append(" ".join(parts))
        gold.append(label)
    return docs, gold


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    predictor = Predictor.load(args.bundle, device="cpu", threads=args.threads)
    docs, gold = _documents(rows, args.docs, args.sentences)
    tokens = [len(t) for t in predictor.engine.tokenize(docs, None, LongTextSpec(mode=LongText.CHUNK))]
    print(
        f"{args.bundle} ({predictor.engine.variant}): {len(docs)} documents of {args.sentences} sentences, "
        f"{statistics.median(tokens):.0f} tokens (median; window {predictor.engine.max_length})",
        flush=True,
    )
    quality: dict[str, float] = {}
    for name, mode, combine in (
        ("truncate", LongText.TRUNCATE, None),
        ("chunk, mean", LongText.CHUNK, ChunkCombine.MEAN),
        ("chunk, max", LongText.CHUNK, ChunkCombine.MAX),
    ):
        answers = predictor.predict(docs, long_text=mode.value, chunk_combine=combine and combine.value)
        quality[name] = sum(a.label == g for a, g in zip(answers, gold, strict=True)) / len(docs)
        print(f"| {name} | accuracy {quality[name]:.3f} |", flush=True)
    text = " ".join(r["text"] for r in rows)
    cost = []
    for length in LENGTHS:
        ids = predictor.engine.tokenize([text], None, LongTextSpec(mode=LongText.CHUNK, max_chunks=MAX_CHUNKS))[0].ids
        while len(ids) < length:
            text = text + " " + text
            ids = predictor.engine.tokenize([text], None, LongTextSpec(mode=LongText.CHUNK, max_chunks=MAX_CHUNKS))[
                0
            ].ids
        # cut the text at the character where its `length`-th token ends (a whole document of that many tokens)
        doc = text[: len(text) * length // len(ids)]
        spec = LongTextSpec(mode=LongText.CHUNK, max_chunks=MAX_CHUNKS)
        (item,) = predictor.engine.tokenize([doc], None, spec)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            (answer,) = predictor.predict([doc], long_text=spec)
            times.append(time.perf_counter() - started)
        row = {
            "tokens": len(item.ids),
            "windows": item.rows,
            "seconds": statistics.median(times),
            "ms_per_1k_tokens": 1000 * statistics.median(times) / len(item.ids) * 1000,
            "peak_rss_mib": memory_mib(os.getpid()).get("VmHWM", float("nan")),
            "truncated": answer.truncated,
        }
        cost.append(row)
        print(
            f"| {row['tokens']} | {row['windows']} | {row['seconds'] * 1000:.0f} ms | "
            f"{row['ms_per_1k_tokens']:.0f} ms per 1k tokens | peak {row['peak_rss_mib']:.0f} MiB |",
            flush=True,
        )
    return {"bundle": str(args.bundle), "variant": predictor.engine.variant, "quality": quality, "cost": cost}


run(__name__, __doc__, configure, measure)

"""`baton adapt`: packed blocks, whole-word masking, a run whose model/ fine-tunes with `baton train --model`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from support import REVIEWS

from baton.errors import ConfigError, DataError
from baton.training.adapt import AdaptConfig, fresh_head_keys, pack_blocks, read_documents, run_adaptation


def test_blocks_pack_documents_and_keep_them_apart(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs = ["great battery", "broke after a week", "ok"]
    blocks = pack_blocks(tok, docs, 8)
    content = [
        i
        for ids, mask, special in zip(
            blocks["input_ids"], blocks["attention_mask"], blocks["special_tokens_mask"], strict=True
        )
        for i, m, sp in zip(ids, mask, special, strict=True)
        if m and not sp
    ]
    assert content == [i for d in docs for i in tok(d, add_special_tokens=False)["input_ids"]]  # nothing lost
    for ids, mask in zip(blocks["input_ids"], blocks["attention_mask"], strict=True):
        real = [i for i, m in zip(ids, mask, strict=True) if m]
        assert len(ids) == 8 and real[0] == tok.cls_token_id and real[-1] == tok.sep_token_id
    ends = [
        o
        for offs, special in zip(blocks["offset_mapping"], blocks["special_tokens_mask"], strict=True)
        for o, sp in zip(offs, special, strict=True)
        if not sp
    ]
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(ends))  # offsets only move forward
    # the first token of each document starts after a gap: whole-word masking cannot join two documents' words
    first = tok(docs[1], add_special_tokens=False)["input_ids"]
    at = content.index(first[0], len(tok(docs[0], add_special_tokens=False)["input_ids"]))
    assert ends[at][0] > ends[at - 1][1]


def test_adapt_then_fine_tune(tiny_model_dir: Path, tmp_path: Path) -> None:
    from baton.training import TrainConfig, run_training

    texts = tmp_path / "reviews.txt"
    texts.write_text(
        "\n".join(json.loads(x)["text"] for x in (REVIEWS / "train.jsonl").read_text().splitlines()), encoding="utf-8"
    )
    result = run_adaptation(
        AdaptConfig(
            train_file=str(texts),
            output_dir=str(tmp_path / "adapted"),
            model=str(tiny_model_dir),
            epochs=3,
            learning_rate=2e-3,
            max_length=32,
            batch_size=16,
        )
    )
    v = result.metrics["validation"]
    assert v["perplexity_after"] < v["perplexity_before"]  # it learned the domain's words
    assert (tmp_path / "adapted" / "model" / "config.json").is_file()
    assert json.loads((tmp_path / "adapted" / "train_args.json").read_text())["fresh_mlm_head"] is True
    run = run_training(
        TrainConfig(
            model=str(tmp_path / "adapted" / "model"),
            train_file=str(REVIEWS / "train.jsonl"),
            validation_file=str(REVIEWS / "validation.jsonl"),
            output_dir=str(tmp_path / "run"),
            epochs=1,
            max_length=32,
            baseline=False,
        )
    )
    assert run.metrics["validation"]["samples"] == 150


def test_bad_inputs_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--train-file: file not found"):
        read_documents(str(tmp_path / "missing.txt"), "--train-file", "text")
    with pytest.raises(DataError, match="no column 'body' \\(--text-column\\); columns found: text, label"):
        read_documents(str(REVIEWS / "train.jsonl"), "--train-file", "body")
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        read_documents(str(tmp_path / "empty.txt"), "--train-file", "text")


def test_a_fresh_head_gets_its_own_rate(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM, Trainer, TrainingArguments

    from baton.training.adapt import _head_rate_trainer

    model, info = AutoModelForMaskedLM.from_pretrained(tiny_model_dir, output_loading_info=True)
    fresh = set(fresh_head_keys(model, info["missing_keys"]))
    assert fresh and all(k.startswith("cls.predictions.") for k in fresh)  # the tiny BERT, like MiniLM, has no head
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=5e-5, weight_decay=0.01, report_to=[])
    trainer = _head_rate_trainer(Trainer, fresh, 1e-3)(model=model, args=args)
    groups = trainer.create_optimizer().param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    head = [g for g in groups if g["lr"] == 1e-3]
    assert {names[id(p)] for g in head for p in g["params"]} == fresh & set(names.values())
    assert all(g["lr"] == 5e-5 for g in groups if g not in head)
    embeddings = model.get_input_embeddings().weight  # the decoder is tied to it: the encoder's rate
    assert any(p is embeddings for g in groups if g["lr"] == 5e-5 for p in g["params"])
    with pytest.raises(ConfigError, match="--head-learning-rate must be in"):
        AdaptConfig(train_file="x", output_dir="y", head_learning_rate=2.0)


def test_an_mpnet_head_is_found_by_where_it_lies(tmp_path: Path) -> None:
    """MPNet (the second packaged choice) names its head lm_head.*: it is found as fresh all the same."""
    from transformers import AutoModelForMaskedLM, MPNetConfig, MPNetModel

    MPNetModel(
        MPNetConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(tmp_path)
    model, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    fresh = fresh_head_keys(model, info["missing_keys"])
    assert fresh and all(k.startswith("lm_head.") for k in fresh)
    assert "lm_head.dense.weight" in fresh

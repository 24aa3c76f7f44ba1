"""Shared fixtures: a tiny random BERT with its own WordPiece tokenizer, and a trained run of it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from testdata import COMMITTED_BUNDLE, NER, REPO, REVIEWS, SHARED_DATA

__all__ = ["COMMITTED_BUNDLE", "NER", "REPO", "REVIEWS", "SHARED_DATA", "build_tiny_model", "train_tiny", "write_jsonl"]


_OWN_CACHE: list[str] = []


# BATON_TESTS_WITHOUT_TORCH=1: the training stack cannot be imported, as on a serving machine
# (tests/e2e/test_packaging.py runs the serving stage so, on the committed bundle).
_TRAINING_STACK = ("torch", "transformers", "optimum", "datasets", "sklearn")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("BATON_TESTS_WITHOUT_TORCH") == "1":
        for name in _TRAINING_STACK:
            sys.modules[name] = None  # type: ignore[assignment]
    # Keep the datasets cache out of $HOME and never reach for the Hub in tests.
    if "HF_DATASETS_CACHE" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="baton-ds-cache-"))
        os.environ["HF_DATASETS_CACHE"] = _OWN_CACHE[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _OWN_CACHE:  # the session's own cache only (a few MB a run, left behind before)
        shutil.rmtree(folder, ignore_errors=True)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def train_tiny(model: Path, data: Path, out: Path, **overrides: Any) -> Any:
    """The tiny models' recipe (6 epochs at 3e-3: enough to be confident) on `data`/{train,validation}.jsonl."""
    from baton.training import TrainConfig, run_training

    recipe: dict[str, Any] = {"epochs": 6, "learning_rate": 3e-3, "batch_size": 16, "patience": 0, "max_length": 64}
    return run_training(
        TrainConfig(
            model=str(model),
            train_file=str(data / "train.jsonl"),
            validation_file=str(data / "validation.jsonl"),
            output_dir=str(out),
            **{**recipe, **overrides},
        )
    )


def build_tiny_model(out: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and a WordPiece tokenizer trained on the demo texts, seeded."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    texts = [json.loads(line)["text"] for line in (REVIEWS / "train.jsonl").read_text().splitlines()]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(texts, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(out)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    # Seeded, so that the tiny model (and every gate on it) does not depend on which tests ran first: its 32-sample
    # int8 gates sit near their limit (one flipped sample is 3.1 points).
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `baton train` run of the tiny model on the demo reviews (trained enough to be confident)."""
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train_tiny(tiny_model_dir, REVIEWS, out, test_file=str(REVIEWS / "test.jsonl"))
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported with real Optimum and quantized to int8 (gates must pass)."""
    from baton.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    export_bundle(ExportConfig(run_dir=str(tiny_run), output=str(out)))
    return out


@pytest.fixture(scope="session")
def tiny_ner_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished entity-recognition run of the tiny model on the shipped NER demo sentences."""
    out = tmp_path_factory.mktemp("tiny-ner-run") / "run"
    train_tiny(tiny_model_dir, NER, out, stride=8)
    return out


@pytest.fixture(scope="session")
def tiny_ner_bundle(tiny_ner_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from baton.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("tiny-ner-bundle") / "bundle"
    export_bundle(ExportConfig(run_dir=str(tiny_ner_run), output=str(out), allow_fallback=True))
    return out

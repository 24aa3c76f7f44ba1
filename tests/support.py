"""What the tests share, importable from every stage folder (conftest.py's name repeats, so nothing is imported
from it): where the data lives, and the tiny model every stage trains, exports and serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COMMITTED_BUNDLE",
    "FEW_TEXTS",
    "NER",
    "REPO",
    "REVIEWS",
    "SHARED_DATA",
    "build_tiny_model",
    "tagging_logits",
    "train_tiny",
    "write_jsonl",
]

REPO = Path(__file__).resolve().parent.parent
REVIEWS = REPO / "examples" / "reviews"
NER = REPO / "examples" / "ner"
SHARED_DATA = REPO.parent / "shared" / "data"
COMMITTED_BUNDLE = REPO / "tests" / "data" / "tiny-bundle"  # tests/make_tiny_bundle.py writes it


def _few_texts() -> Any:
    from baton.export.config import GateThresholds

    return GateThresholds(min_int8_evidence=16)


# The tiny model's export tests gate int8 on 32 texts for speed: they test the gate's mechanics, so they lower its
# evidence floor (100 sure decisions by default) explicitly.
FEW_TEXTS = _few_texts()


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


def tagging_logits(task, encoded, wanted: list[tuple[int, int, str]]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Logits that tag exactly the tokens inside each wanted (start, end, type) character span."""
    ids = encoded.inputs["input_ids"]
    logits = np.zeros((*ids.shape, len(task.labels)), dtype=np.float32)
    logits[..., task.labels.index("O")] = 5.0
    skip = len(task._windows.prefix)
    for index, item in enumerate(encoded.items):
        first_row, _ = encoded.rows[index]
        for r, window in enumerate(item.spans):
            start, end = window.start, window.end
            for g in range(start, end):
                s, e = item.offsets[g]
                for a, b, kind in wanted:
                    if a <= s and e <= b:
                        begin = item.offsets[g - 1][1] <= a if g else True
                        tag = f"{'B' if begin or s == a else 'I'}-{kind}"
                        logits[first_row + r, skip + g - start, task.labels.index(tag)] = 10.0
    return logits

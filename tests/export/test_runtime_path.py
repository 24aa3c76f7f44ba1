"""The runtime's encoder (shared with the parity gates), the gates' decisions, and the export's recoverable swap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from baton._io import recover_replaced
from baton.errors import BundleError
from baton.export import parity
from baton.export.exporter import remove_stale_work_dirs
from baton.serving import load_bundle
from baton.serving.encoder import CHARS_PER_TOKEN_CAP, TextEncoder
from baton.serving.manifest import TokenizerSpec


def _encoder(bundle: Path, side: str, max_length: int = 16, pool: bool = True) -> TextEncoder:
    spec = TokenizerSpec(
        file="tokenizer.json", max_length=max_length, truncation_side=side, pad_id=0, pad_token="[PAD]", lowercase=True
    )
    return TextEncoder(bundle / "tokenizer.json", spec, ["input_ids", "attention_mask"], pool=pool)


@pytest.mark.parametrize("count", [1, 8, 9, 40])
def test_the_tokenizer_pool_and_the_plain_loop_encode_alike(tiny_bundle: Path, count: int) -> None:
    """A server tokenizes without the tokenizers' thread pool; it must get what the pool (the export's gates) gets,
    for single texts and pairs, on both sides of the size where the pool takes over."""
    texts = [f"text number {i} " + "word " * (i % 23) for i in range(count)]
    pairs = [f"pair {i}" + " more" * (i % 7) for i in range(count)]
    pooled, plain = _encoder(tiny_bundle, "right", pool=True), _encoder(tiny_bundle, "right", pool=False)
    assert plain.tokenize(texts) == pooled.tokenize(texts)
    assert plain.tokenize(texts, pairs) == pooled.tokenize(texts, pairs)


def test_truncation_and_the_pre_cut_keep_the_side_the_manifest_names(tiny_bundle: Path) -> None:
    head, tail = "great " * 5, "awful " * 5
    long_text = head + "fine " * 2000 + tail  # longer than the pre-cut (16 tokens x 24 characters)
    assert len(long_text) > 16 * CHARS_PER_TOKEN_CAP
    right, left = _encoder(tiny_bundle, "right"), _encoder(tiny_bundle, "left")
    (r,) = right.tokenize([long_text])
    (lt,) = left.tokenize([long_text])
    assert r.truncated and lt.truncated and len(r) == len(lt) == 16
    great, awful = (right.tokenize([w])[0].ids[1:-1] for w in ("great", "awful"))
    assert r.ids[1 : 1 + len(great)] == great  # right truncation keeps the start
    assert lt.ids[-1 - len(awful) : -1] == awful  # left truncation keeps the end, through the pre-cut too


def test_multi_label_gates_decide_at_the_trained_threshold() -> None:
    a = np.array([[0.2, -3.0]])  # sigmoid 0.55, 0.05
    b = np.array([[-0.2, -3.0]])  # sigmoid 0.45, 0.05
    assert parity.agreement(a, b, multi_label=True, threshold=0.5) == 0.0  # one label crosses 0.5
    assert parity.agreement(a, b, multi_label=True, threshold=0.7) == 1.0  # at 0.7 neither model picks it


def test_stale_export_folders_are_removed_only_when_their_process_is_gone(tmp_path: Path) -> None:
    output = tmp_path / "bundle"
    dead = tmp_path / ".bundle.export-999999999-abc"
    alive = tmp_path / f".bundle.export-{os.getpid()}-def"
    other = tmp_path / ".other.export-999999999-abc"
    for folder in (dead, alive, other):
        (folder / "onnx").mkdir(parents=True)
    assert remove_stale_work_dirs(output) == [dead]
    assert not dead.exists() and alive.is_dir() and other.is_dir()


def test_an_interrupted_swap_is_recovered(tiny_bundle: Path, tmp_path: Path) -> None:
    output = tmp_path / "bundle"
    old = tmp_path / ".bundle.old"
    shutil.copytree(tiny_bundle, old)  # killed between the two renames: the old bundle is aside, none in place
    with pytest.raises(BundleError, match=r"an interrupted export left the previous bundle at .*\.bundle\.old"):
        load_bundle(output)
    recover_replaced(output)
    assert load_bundle(output).name == load_bundle(tiny_bundle).name and not old.exists()
    shutil.copytree(tiny_bundle, old)  # a finished swap's leftover beside a bundle in place: deleted
    recover_replaced(output)
    assert not old.exists() and output.is_dir()

"""Fixed-scale int8 (export/fixed_int8.py) on real graphs: calibration over real tokens, the rewrite into
onnxruntime's integer kernels, and a text's logits that do not depend on its batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baton.export import fixed_int8
from baton.export import onnx as steps
from baton.serving import load_bundle
from baton.serving.engine import Engine


def _batches(bundle: Path, texts: list[str]) -> tuple[Engine, dict[str, np.ndarray]]:
    engine = Engine(load_bundle(bundle), "fp32", "cpu", threads=1)
    return engine, engine.preprocess(texts).inputs


TEXTS = ["fine", "a long and winding review of a film that went on and on and on without end", "bad", "ok then"]


def test_a_range_covers_zero_and_says_when_it_saw_nothing() -> None:
    r = fixed_int8.Range()
    with pytest.raises(ValueError, match="no calibration values"):
        r.params()
    r.add(np.array([0.5, 2.0], dtype=np.float32))
    scale, zero = r.params()
    assert zero == 0 and scale == pytest.approx(2.0 / 255)  # 0 is representable exactly: low is taken as 0
    r.add(np.array([-1.0], dtype=np.float32))
    scale, zero = r.params()
    assert scale == pytest.approx(3.0 / 255) and zero == 85  # -1 / scale = -85: the zero point puts -1 at 0


def test_calibration_sees_real_tokens_only(tiny_bundle: Path) -> None:
    """Ranges from a padded batch equal those from each text alone (no padding): padding rows are not counted.
    The padded rows' own values do fall outside those ranges, so counting them would change the result."""
    import onnx

    model = tiny_bundle / "model.onnx"
    names = fixed_int8.quantized_inputs(onnx.load(str(model)))
    engine, padded = _batches(tiny_bundle, TEXTS)
    alone = [engine.preprocess([t]).inputs for t in TEXTS]
    together = fixed_int8.calibrate(model, [padded], names)
    one_by_one = fixed_int8.calibrate(model, alone, names)
    for name in names:
        assert together[name].low == pytest.approx(one_by_one[name].low, abs=1e-5)
        assert together[name].high == pytest.approx(one_by_one[name].high, abs=1e-5)
    # Counting the padded rows would change the ranges: their values reach outside the real tokens' range.
    from onnx import TensorProto, helper

    from baton._ort import new_session

    graph = onnx.load(str(model))
    graph.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    values = new_session(graph.SerializeToString()).run(names, padded)
    assert any(
        (float(v.min()), float(v.max())) != pytest.approx((together[n].low, together[n].high), abs=1e-5)
        for n, v in zip(names, values, strict=True)
    )


def test_the_rewrite_uses_integer_kernels_keeps_excluded_nodes_and_shrinks_the_vocabulary(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    monkeypatch.setattr(fixed_int8, "_MIN_EMBEDDING", 10_000)  # the tiny model's vocabulary is below the real limit
    model = tiny_bundle / "model.onnx"
    _, batch = _batches(tiny_bundle, TEXTS)
    ranges = fixed_int8.calibrate(model, [batch], fixed_int8.quantized_inputs(onnx.load(str(model))))
    keep = steps.int8_exclusions(model, "keep-ffn-down-fp32")
    out = fixed_int8.quantize_fixed(model, tmp_path / "int8.onnx", ranges, keep)
    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    kept = [n.name for n in graph.node if n.op_type == "MatMul"]
    assert sorted(kept) == sorted(keep) and len(keep) == 2  # the two FFN down-projections stay fp32
    assert ops.count("QAttention") == 2 and ops.count("MatMulIntegerToFloat") == 4  # 2 layers: out + up each
    vocab = next(i for i in graph.initializer if i.name.endswith("word_embeddings.weight/uint8"))
    assert vocab.data_type == onnx.TensorProto.UINT8
    assert not any(i.name == vocab.name.removesuffix("/uint8") for i in graph.initializer)  # fp32 table dropped
    positions = next(i for i in graph.initializer if i.name.endswith("position_embeddings.weight"))
    assert positions.data_type == onnx.TensorProto.FLOAT  # a small table stays fp32


def test_logits_do_not_depend_on_the_batch_or_its_padding(tiny_bundle: Path, tmp_path: Path) -> None:
    """The same text alone, beside a long one (padded) and in another order: the same logits to float rounding.
    Dynamic int8 on the same graph moves them, which is what this scheme exists to stop."""
    import onnx

    from baton._ort import new_session

    model = tiny_bundle / "model.onnx"
    engine, batch = _batches(tiny_bundle, TEXTS)
    ranges = fixed_int8.calibrate(model, [batch], fixed_int8.quantized_inputs(onnx.load(str(model))))
    fixed = new_session(fixed_int8.quantize_fixed(model, tmp_path / "fixed.onnx", ranges))
    typed, _ = steps.quantizable_graph(model, tmp_path / "unused.onnx")
    dynamic = new_session(steps.quantize_int8(typed, steps.QuantPreset.AVX512_VNNI))

    def spread(session: object) -> float:
        run = session.run  # type: ignore[attr-defined]
        alone = np.concatenate([run(["logits"], engine.preprocess([t]).inputs)[0] for t in TEXTS])
        together = run(["logits"], batch)[0]
        backwards = run(["logits"], engine.preprocess(TEXTS[::-1]).inputs)[0][::-1]
        return float(max(np.abs(alone - together).max(), np.abs(alone - backwards).max()))

    assert spread(fixed) <= 1e-5
    assert spread(dynamic) > 1e-3


def test_an_attention_qattention_cannot_take_stays_fp32(tiny_bundle: Path, tmp_path: Path) -> None:
    """A fused Attention with an attribute QAttention does not know (here unequal q/k/v sizes declared) is left in
    fp32 rather than quantized with the attribute silently dropped."""
    import onnx
    from onnx import helper

    model = onnx.load(str(tiny_bundle / "model.onnx"))
    first = next(n for n in model.graph.node if n.op_type == "Attention")
    hidden = next(i for i in model.graph.initializer if i.name == first.input[1]).dims[1] // 3
    first.attribute.append(helper.make_attribute("qkv_hidden_sizes", [hidden, hidden, hidden]))
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    _, batch = _batches(tiny_bundle, TEXTS)
    ranges = fixed_int8.calibrate(changed, [batch], fixed_int8.quantized_inputs(onnx.load(str(changed))))
    out = onnx.load(str(fixed_int8.quantize_fixed(changed, tmp_path / "int8.onnx", ranges)))
    ops = [n.op_type for n in out.graph.node]
    assert ops.count("Attention") == 1 and ops.count("QAttention") == 1  # the second layer's is still quantized

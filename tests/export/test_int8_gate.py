"""The int8 gate: agreement where fp32 is sure, and the quality drop against its paired 95 % interval."""

from __future__ import annotations

import numpy as np
import pytest

from baton.export import parity
from baton.export.config import ExportConfig, GateThresholds
from baton.export.gates import int8_verdict
from baton.serving.encoder import Encoded


def _judge(labels: np.ndarray) -> parity.ClassificationJudge:
    n = len(labels)
    batch = Encoded({"input_ids": np.zeros((n, 1), dtype=np.int64)}, [False] * n)
    inputs = parity.ParityInputs([batch], list(range(n)), labels, "test")
    return parity.ClassificationJudge(inputs, multi_label=False)


def _logits(p_positive: list[float]) -> list[np.ndarray]:
    p = np.asarray(p_positive)
    return [np.log(np.stack([1 - p, p], axis=1))]


def _cfg(gate: str, evidence: int = 1) -> ExportConfig:
    """The gate's mechanics on a handful of synthetic decisions: its evidence floor is set by each test."""
    return ExportConfig(run_dir="r", output="o", gates=GateThresholds(int8_gate=gate, min_int8_evidence=evidence))


def test_a_flip_of_an_unsure_decision_passes_the_confident_gate_only() -> None:
    n = 200
    fp32 = [0.9] * n
    fp32[:3] = [0.51, 0.52, 0.49]  # three coin-toss decisions
    int8 = list(fp32)
    int8[:3] = [0.49, 0.48, 0.51]  # all three flip: raw agreement 98.5 %
    labels = np.asarray([1] * n)
    judge = _judge(labels)
    strict = int8_verdict(judge, _logits(fp32), _logits(int8), _cfg("agreement"))
    sure = int8_verdict(judge, _logits(fp32), _logits(int8), _cfg("confident"))
    assert strict["argmax_agreement"] == pytest.approx(0.985) and not strict["passed"]
    assert sure["confident_agreement"] == 1.0 and sure["confident_share"] == pytest.approx(197 / 200)
    assert sure["passed"]


def test_a_flip_of_a_sure_decision_fails() -> None:
    fp32 = [0.95] * 100
    labels = np.ones(100, dtype=int)
    labels[:2] = 0  # the flips below turn wrong answers right: accuracy does not drop, agreement alone decides
    int8 = list(fp32)
    int8[0] = 0.3  # fp32 was sure (margin 0.9)
    verdict = int8_verdict(_judge(labels), _logits(fp32), _logits(int8), _cfg("confident"))
    assert verdict["confident_agreement"] == pytest.approx(0.99) and verdict["passed"]  # exactly at the limit
    int8[1] = 0.3
    verdict = int8_verdict(_judge(labels), _logits(fp32), _logits(int8), _cfg("confident"))
    assert verdict["confident_agreement"] == pytest.approx(0.98) and not verdict["passed"]
    assert verdict["accuracy_drop"] < 0


def test_a_drop_over_the_limit_fails_only_when_it_is_real() -> None:
    n = 400
    fp32 = [0.9] * n
    labels = np.ones(n, dtype=int)
    int8 = list(fp32)
    for i in range(8):  # 8 sure answers turn wrong: 2 points, clearly real — and they disagree with fp32
        int8[i] = 0.2
    verdict = int8_verdict(_judge(labels), _logits(fp32), _logits(int8), _cfg("confident"))
    assert verdict["accuracy_drop"] == pytest.approx(0.02) and verdict["accuracy_drop_95ci"][0] > 0
    assert not verdict["passed"]
    noisy = [0.9] * 100
    noisy_labels = np.ones(100, dtype=int)
    noisy_labels[[10, 11]] = 0
    noisy[10], noisy[11] = 0.45, 0.45  # unsure in fp32 (right by a hair) ...
    noisy_int8 = list(noisy)
    noisy_int8[10], noisy_int8[11] = 0.55, 0.55  # ... and wrong in int8: 2 points on 100 samples, within noise
    verdict = int8_verdict(_judge(noisy_labels), _logits(noisy), _logits(noisy_int8), _cfg("confident"))
    assert verdict["accuracy_drop"] == pytest.approx(0.02) and verdict["accuracy_drop_95ci"][0] <= 0
    assert verdict["passed"]
    noisy_int8[12] = noisy_int8[13] = 0.45  # two more (4 points): over 3x the limit fails whatever the noise
    noisy[12] = noisy[13] = 0.55
    verdict = int8_verdict(_judge(noisy_labels), _logits(noisy), _logits(noisy_int8), _cfg("confident"))
    assert verdict["accuracy_drop"] == pytest.approx(0.04) and not verdict["passed"]


def test_the_drop_interval_decides_when_the_drop_is_noisy() -> None:
    right32 = np.ones(400)
    right8 = np.ones(400)
    right8[:2] = 0  # 2 of 400 newly wrong: drop 0.5 point, interval about -0.19..+1.19
    drop, low, high = parity.paired_drop(right32, right8)
    assert drop == pytest.approx(0.005) and low < 0 < 0.01 < high
    right8[2] = 0
    right8[3:5] = 0
    right32[5:7] = 0  # wrong in fp32, right in int8: they cancel in the mean and widen the interval
    right8[5:7] = 1
    d2, _, hi2 = parity.paired_drop(right32, right8)
    assert d2 == pytest.approx(0.0075) and hi2 > high


def test_the_gate_judges_only_on_enough_decisions_fp32_is_sure_of() -> None:
    """Issue 29: when fp32 was sure of 0 % of decisions, the confident gate compared nothing and passed."""
    labels = [1, 0, 1, 0]
    unsure = [0.55, 0.45, 0.52, 0.48]  # fp32 sure of none of them (margin < 0.4)
    verdict = int8_verdict(_judge(labels), _logits(unsure), _logits(unsure), _cfg("confident", evidence=2))
    assert verdict["evidence"] == 0 and not verdict["judged"] and not verdict["passed"]
    sure = [0.95, 0.05, 0.9, 0.1]
    verdict = int8_verdict(_judge(labels), _logits(sure), _logits(sure), _cfg("confident", evidence=4))
    assert verdict["evidence"] == 4 and verdict["judged"] and verdict["passed"]
    verdict = int8_verdict(_judge(labels), _logits(sure), _logits(sure), _cfg("confident", evidence=5))
    assert not verdict["judged"] and not verdict["passed"]

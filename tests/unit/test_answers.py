"""What a classification answer says, from logits alone (no model): multi-label answers lead with their labels."""

from __future__ import annotations

import numpy as np

from baton.serving.encoder import Encoded
from baton.serving.tasks.classification import Classification


def _answers(logits: list[list[float]], multi_label: bool, threshold: float = 0.5) -> list:
    task = Classification(["joy", "anger", "neutral"], None, multi_label, threshold)  # type: ignore[arg-type]
    rows = np.asarray(logits, dtype=np.float32)
    return task.postprocess(rows, Encoded({}, [False] * len(rows)))


def test_a_multi_label_answer_never_names_a_label_below_the_threshold() -> None:
    """Issue 29: {"label": "neutral", "score": 0.34, "labels": []}: the top label was reported though the model
    decided against it. Now `label` is the best label that clears the threshold, or "" with score 0."""
    none, two = _answers([[-1.0, -2.0, -0.66], [2.0, 1.0, -3.0]], multi_label=True)
    assert none.labels == [] and none.label == "" and none.score == 0.0
    assert none.top_k[0][0] == "neutral" and none.scores["neutral"] < 0.5  # the ranking is still there
    assert two.labels == ["joy", "anger"] and two.label == "joy" and two.score > 0.5


def test_a_single_label_answer_is_the_argmax() -> None:
    (answer,) = _answers([[0.1, 0.3, -2.0]], multi_label=False)
    assert answer.label == "anger" and answer.labels is None
    assert abs(sum(answer.scores.values()) - 1.0) < 1e-6

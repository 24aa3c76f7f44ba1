"""The default recipe follows the training set's size (training/schedule.py), and flags win."""

from __future__ import annotations

import itertools
import math

import pytest

from baton.training import TrainConfig
from baton.training.schedule import (
    BATCH,
    EPOCHS,
    EVALUATIONS,
    FEW_SHOT_PER_CLASS,
    LEARNING_RATE,
    MAX_EPOCHS,
    MIN_STEPS,
    PATIENCE,
    PATIENCE_STEPS,
    POOLED_MAX_ROWS,
    SMALL_BATCH,
    SMALL_DATA_ROWS,
    Method,
    pick_method,
    plan_schedule,
)

SIZES = [1, 2, 7, 16, 64, 200, 300, 999, 1000, 1001, 2000, 4800, 5000, 20_000, 67_349]


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("world", [1, 2])
def test_the_rules_over_a_grid_of_sizes(rows: int, world: int) -> None:
    s = plan_schedule(rows, world=world)
    assert s.batch_size == (SMALL_BATCH if rows <= SMALL_DATA_ROWS else BATCH)
    per_epoch = math.ceil(rows / (s.batch_size * world))
    assert s.steps_per_epoch == per_epoch
    assert EPOCHS <= s.epochs <= MAX_EPOCHS
    # the step floor is met unless the epoch cap stops it; and no more epochs than the floor needs
    assert s.steps >= MIN_STEPS or s.epochs == MAX_EPOCHS
    if s.epochs > EPOCHS:
        assert per_epoch * (s.epochs - 1) < MIN_STEPS
    # evaluated about EVALUATIONS times at most, never more often than once an epoch
    if s.eval_steps is None:
        assert s.epochs <= EVALUATIONS and s.patience == PATIENCE
    else:
        assert s.eval_steps >= per_epoch and s.steps / s.eval_steps <= EVALUATIONS + 1
        assert s.patience == PATIENCE_STEPS
    assert s.learning_rate == LEARNING_RATE and s.reason


def test_more_rows_never_mean_fewer_steps_or_a_smaller_batch() -> None:
    plans = [plan_schedule(rows) for rows in range(1, 3000, 7)]
    for a, b in itertools.pairwise(plans):
        assert b.batch_size >= a.batch_size
        assert b.steps >= min(a.steps, MIN_STEPS)


def test_the_case_that_failed_now_gets_the_step_floor() -> None:
    """200 SST-2 sentences got 39 optimizer steps (batch 16, 3 epochs, 10 % held out) under the old default."""
    old_steps = math.ceil(180 / 16) * 3
    new = plan_schedule(180)
    assert old_steps < 40 and new.steps >= MIN_STEPS and new.batch_size == SMALL_BATCH
    assert "step floor" in new.reason


def test_flags_win_and_the_rest_follows_them() -> None:
    s = plan_schedule(200, batch_size=32, learning_rate=3e-5, patience=0)
    assert (s.batch_size, s.learning_rate, s.patience) == (32, 3e-5, 0)
    assert s.steps >= MIN_STEPS  # epochs still follow the floor, for the given batch size
    fixed = plan_schedule(200, epochs=2.0, warmup_ratio=0.0)
    assert fixed.epochs == 2.0 and fixed.warmup_ratio == 0.0 and fixed.steps == 2 * math.ceil(200 / SMALL_BATCH)
    assert plan_schedule(50_000, batch_size=16, epochs=3.0, learning_rate=1e-4).reason == "as given"


def test_a_config_resolves_only_what_was_left_auto(tmp_path: object) -> None:
    cfg = TrainConfig(train_file="x.jsonl", learning_rate=5e-5)
    assert cfg.epochs is None and cfg.batch_size is None and cfg.patience is None
    resolved, schedule = cfg.scheduled(200)
    assert resolved.learning_rate == 5e-5 and resolved.batch_size == SMALL_BATCH
    assert resolved.epochs == schedule.epochs and resolved.patience == schedule.patience
    assert resolved.to_dict()["epochs"] == schedule.epochs  # train_args.json records what ran
    with pytest.raises(ValueError, match="rows must be >= 1"):
        plan_schedule(0)


@pytest.mark.parametrize(
    ("rows", "smallest", "few_shot", "mean_pooled", "method"),
    [
        (16, 8, None, True, Method.FEW_SHOT),
        (200, FEW_SHOT_PER_CLASS, None, True, Method.FEW_SHOT),
        (200, FEW_SHOT_PER_CLASS + 1, None, True, Method.POOLED),
        (POOLED_MAX_ROWS, 100, None, True, Method.POOLED),
        (POOLED_MAX_ROWS + 1, 100, None, True, Method.FINE_TUNE),
        (200, 100, None, False, Method.FINE_TUNE),  # an encoder with its own head keeps it
        (16, 8, None, False, Method.FEW_SHOT),
        (200, None, None, True, Method.FINE_TUNE),  # multi-label, pairs or a resumed run
        (200, 100, True, True, Method.FEW_SHOT),  # flags win
        (16, 8, False, True, Method.FINE_TUNE),
        (67_349, 100, True, False, Method.FEW_SHOT),
    ],
)
def test_the_method_follows_the_data(
    rows: int, smallest: int | None, few_shot: bool | None, mean_pooled: bool, method: Method
) -> None:
    picked, why = pick_method(rows, smallest, few_shot, mean_pooled)
    assert picked is method and why

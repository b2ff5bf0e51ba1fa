"""Baselines by hand on small fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.statistics.baselines import (
    baseline_positions,
    best_baseline,
    edge,
    majority_class,
    majority_positions,
)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        pytest.param([1, 1, -1], 1, id="up"),
        pytest.param([-1, -1, 1, 0], -1, id="down"),
        pytest.param([1, -1], 1, id="tie-goes-up"),
        pytest.param([-1, 0, 0, -1], 0, id="tie-nearest-up"),
        pytest.param([0, 0, 1], 0, id="flat"),
    ],
)
def test_majority_class(targets, expected):
    assert majority_class(np.array(targets)) == expected


def test_majority_uses_the_rows_each_model_was_fit_on():
    #         rows 0  1  2   3   4   5  6  7
    targets = np.array([1, 1, -1, -1, -1, -1, 1, 1])
    refits = [(slice(0, 3), slice(3, 5)), (slice(0, 5), slice(5, 7)), (slice(2, 7), slice(7, 8))]
    # [0, 3): +1 +1 -1 -> +1; [0, 5): 2 up, 3 down -> -1; [2, 7): 4 down, 1 up -> -1
    assert majority_positions(targets, refits).tolist() == [1, 1, -1, -1, -1]


def test_momentum_and_reversal_follow_todays_sign():
    positions = baseline_positions(np.array([1, -1, 0, 1]), np.array([1, 1, 1, 1]))
    assert positions["long"].tolist() == [1, 1, 1, 1]
    assert positions["momentum"].tolist() == [1, -1, 0, 1]
    assert positions["reversal"].tolist() == [-1, 1, 0, -1]
    assert positions["majority"].tolist() == [1, 1, 1, 1]


def test_best_baseline_and_edge():
    values = {"long": 0.3, "majority": 0.3, "momentum": float("nan"), "reversal": -0.2}
    assert best_baseline(values) == "long"  # ties in the listed order
    assert edge(0.5, values) == pytest.approx(0.2)
    assert np.isnan(edge(0.5, dict.fromkeys(values, float("nan"))))


@settings(max_examples=80, deadline=None)
@given(
    targets=st.lists(st.sampled_from([-1, 0, 1]), min_size=30, max_size=120),
    train_days=st.integers(5, 20),
    retrain_every=st.integers(1, 9),
    rolling=st.booleans(),
)
def test_majority_positions_equal_the_definition_per_refit(
    targets, train_days, retrain_every, rolling
):
    """Each predicted row's position is the most common class of its model's training rows,
    ties to the largest, counted directly on each window."""
    targets = np.array(targets, dtype=np.int8)
    starts = range(train_days, len(targets), retrain_every)
    refits = [
        (slice(j - train_days if rolling else 0, j), slice(j, min(j + retrain_every, len(targets))))
        for j in starts
    ]
    expected = []
    for train, predict in refits:
        classes, counts = np.unique(targets[train], return_counts=True)
        winner = classes[counts == counts.max()].max()
        expected += [int(winner)] * (predict.stop - predict.start)
    found = majority_positions(targets, refits)
    assert found.dtype == np.int8
    assert found.tolist() == expected

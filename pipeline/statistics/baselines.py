"""Trivial rules evaluated on the model's own evaluation rows (METHOD.md, "Baselines").

Alignment as in backtest.metrics: one value per evaluation row t; `today_signs` hold sign r_t
(the first feature of row t), known at the close of day t. A baseline's position pos_t is held
over day t+1 like the model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

BASELINES: tuple[str, ...] = ("long", "majority", "momentum", "reversal")


def majority_class(targets: NDArray) -> int:
    """The most common class of `targets`; a tie goes to the class nearest +1 (the largest)."""
    classes, counts = np.unique(np.asarray(targets), return_counts=True)
    return int(classes[counts == counts.max()].max())


def majority_positions(targets: NDArray, refits: Sequence[tuple[slice, slice]]) -> NDArray:
    """pos_t = the majority class of the rows the model predicting row t was fit on.

    `refits` are (train, predict) row slices of the design, in order; the result has one value
    per predicted row, in the same order as the model's positions. Ties go to the class nearest
    +1. Class counts of each training window come from running totals: O(rows + refits).
    """
    targets = np.asarray(targets)
    classes = np.unique(targets)
    if not refits or not len(classes):
        return np.zeros(0, dtype=np.int8)
    running = np.vstack([np.zeros(len(classes)), np.cumsum(targets[:, None] == classes, axis=0)])
    bounds = np.array([(t.start, t.stop, p.start, p.stop) for t, p in refits], dtype=np.intp)
    counts = running[bounds[:, 1]] - running[bounds[:, 0]]  # one row of class counts per refit
    # The largest class among the most common (classes ascend): the last column at the max.
    at_max = counts == counts.max(axis=1, keepdims=True)
    winners = classes[len(classes) - 1 - np.argmax(at_max[:, ::-1], axis=1)]
    return np.repeat(winners.astype(np.int8), bounds[:, 3] - bounds[:, 2])


def baseline_positions(today_signs: NDArray, majority: NDArray) -> dict[str, NDArray]:
    """Every baseline's positions over the same evaluation rows, in BASELINES order."""
    signs = np.asarray(today_signs, dtype=np.int8)
    return {
        "long": np.ones(len(signs), dtype=np.int8),
        "majority": np.asarray(majority, dtype=np.int8),
        "momentum": signs,
        "reversal": -signs,
    }


def best_baseline(values: Mapping[str, float]) -> str:
    """The baseline with the highest value (NaN counts as lowest); ties in BASELINES order."""

    def key(name: str) -> float:
        value = values[name]
        return -np.inf if np.isnan(value) else value

    return max(BASELINES, key=key)


def edge(model_value: float, baseline_values: Mapping[str, float]) -> float:
    """The model's value less the best baseline's value in the same metric (METHOD.md)."""
    finite = [v for v in baseline_values.values() if not np.isnan(v)]
    return float(model_value - max(finite)) if finite else float("nan")

"""Fit a model on one block of design rows and predict another: the plain fit, and the exact
fast path of METHOD.md ("Exactness of a weighted fit").

The features are L signs, so thousands of rows hold a few hundred distinct (features, target)
pairs. The fast path fits each pair present in the training rows once, with sample_weight = its
count there, and predicts each distinct feature row of the predicted block once. It keeps the
pair counts as running totals over a training window that only moves forward (walk-forward
refits add the block that joined and, for a rolling window, subtract the rows that left).

Whichever path, a training block holding one target class only gets a constant model that
predicts that class: a classifier cannot be fit on one class.

A learner also gives its last model's prediction of every sign pattern (`pattern_table`, 3^L
values), which the results store keeps so that a later run predicts new rows of that model's
block without fitting it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.backtest.models import make_estimator, weighted_fit_is_exact
from pipeline.config import ModelConfig

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin


# A prediction table holds one prediction per sign pattern, 3^L of them: up to 8 lags
# (6,561 patterns, as many bytes in the store); longer patterns are refit instead.
MAX_TABLE_LAGS = 8


class Learner(Protocol):
    def fit_predict(self, train: slice, predict: slice) -> tuple[np.ndarray, bool]:
        """Fit on rows `train`, return (int8 predictions of rows `predict`, one-class flag)."""
        ...

    def pattern_table(self) -> np.ndarray:
        """The last fitted model's int8 prediction of every sign pattern, by `pattern_codes`."""
        ...


def tabulable(lags: int) -> bool:
    return lags <= MAX_TABLE_LAGS


def pattern_codes(features: np.ndarray) -> np.ndarray:
    """Each row of sign features (rows, L) as a number in 0..3^L-1: sum of (s_l + 1) 3^l."""
    digits = np.asarray(features, dtype=np.int64) + 1
    return digits @ (3 ** np.arange(digits.shape[1], dtype=np.int64))


def all_patterns(lags: int) -> np.ndarray:
    """Every sign pattern of `lags` features (3^L, L) int8, row c the pattern of code c."""
    codes = np.arange(3**lags, dtype=np.int64)
    digits = (codes[:, None] // 3 ** np.arange(lags, dtype=np.int64)) % 3
    return (digits - 1).astype(np.int8)


def table_predictions(table: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The predictions a model's `pattern_table` gives rows of sign features (rows, L).

    The same as that model's predict on the rows: a classifier predicts each row from that
    row alone (the fast path already predicts each distinct pattern once), so a row's
    prediction does not depend on which other rows it was predicted with.
    """
    return table[pattern_codes(features)]


def make_learner(model: ModelConfig, features: np.ndarray, targets: np.ndarray) -> Learner:
    """The fast path where `model.fast_path` is set and it is exact for the estimator."""
    if model.fast_path and weighted_fit_is_exact(model.kind, model.params):
        return FastLearner(model, features, targets)
    return PlainLearner(model, features, targets)


class PlainLearner:
    """Fits every training row as it is: the reference the fast path must agree with."""

    def __init__(self, model: ModelConfig, features: np.ndarray, targets: np.ndarray) -> None:
        self._estimator = make_estimator(model.kind, model.params)
        self._features = features
        self._targets = targets
        self._fitted: _Predictor | None = None

    def fit_predict(self, train: slice, predict: slice) -> tuple[np.ndarray, bool]:
        self._fitted, one_class = _fit(
            self._estimator, self._features[train], self._targets[train], weights=None
        )
        return _as_positions(self._fitted.predict(self._features[predict])), one_class

    def pattern_table(self) -> np.ndarray:
        return _pattern_table(self._fitted, self._features.shape[1])


class FastLearner:
    """Fits distinct (features, target) pairs weighted by their counts in the training rows."""

    def __init__(self, model: ModelConfig, features: np.ndarray, targets: np.ndarray) -> None:
        self._estimator = make_estimator(model.kind, model.params)
        self._rows = group_rows(features, targets)
        self._counts = RunningCounts(self._rows.pair_of_row, len(self._rows.pair_targets))
        self._lags = features.shape[1]
        self._fitted: _Predictor | None = None

    def fit_predict(self, train: slice, predict: slice) -> tuple[np.ndarray, bool]:
        rows = self._rows
        counts = self._counts.slide_to(train.start, train.stop)
        present = np.flatnonzero(counts)
        features, targets = rows.pair_features[present], rows.pair_targets[present]
        self._fitted, one_class = _fit(self._estimator, features, targets, counts[present])
        patterns, inverse = np.unique(rows.pattern_of_row[predict], return_inverse=True)
        return _as_positions(self._fitted.predict(rows.patterns[patterns]))[inverse], one_class

    def pattern_table(self) -> np.ndarray:
        return _pattern_table(self._fitted, self._lags)


@dataclass(frozen=True, slots=True)
class DistinctRows:
    """A design's rows grouped by content.

    pair_features (D, L) / pair_targets (D,): the distinct (features, target) pairs;
    pair_of_row (rows with a target,): each row's pair. patterns (F, L): the distinct feature
    rows; pattern_of_row (rows,): each row's pattern.
    """

    pair_features: np.ndarray
    pair_targets: np.ndarray
    pair_of_row: np.ndarray
    patterns: np.ndarray
    pattern_of_row: np.ndarray


def group_rows(features: np.ndarray, targets: np.ndarray) -> DistinctRows:
    """Distinct pairs and feature rows of `features` (rows, L) and `targets` (rows,).

    `features` may hold rows past the last target (the as-of day's row, which is predicted but
    has no target yet): they get a pattern, never a pair.
    """
    pairs = np.column_stack([features[: len(targets)], targets])
    pair_first, pair_of_row = _distinct(pairs)
    pattern_first, pattern_of_row = _distinct(features)
    return DistinctRows(
        pair_features=features[pair_first],
        pair_targets=targets[pair_first],
        pair_of_row=pair_of_row,
        patterns=features[pattern_first],
        pattern_of_row=pattern_of_row,
    )


class RunningCounts:
    """How often each id occurs in a window of rows [start, stop) that only moves forward."""

    def __init__(self, ids: np.ndarray, n_ids: int) -> None:
        self._ids = ids
        self._counts = np.zeros(n_ids, dtype=np.int64)
        self._start = self._stop = 0

    def slide_to(self, start: int, stop: int) -> np.ndarray:
        """The counts over [start, stop); a view, valid until the next call."""
        if start < self._start or stop < self._stop or start > stop:
            raise ValueError(
                f"The window can only move forward: from [{self._start}, {self._stop}) "
                f"to [{start}, {stop}) is not allowed."
            )
        n_ids = len(self._counts)
        # Rows that both joined and left (a jump past the old window) cancel out.
        self._counts += np.bincount(self._ids[self._stop : stop], minlength=n_ids)
        self._counts -= np.bincount(self._ids[self._start : start], minlength=n_ids)
        self._start, self._stop = start, stop
        return self._counts


class _Predictor(Protocol):
    def predict(self, features: np.ndarray) -> np.ndarray: ...


class ConstantModel:
    """Predicts one class for every row: the model of a one-class training block."""

    def __init__(self, label: int) -> None:
        self.label = label

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(len(features), self.label, dtype=np.int8)


def _fit(
    estimator: ClassifierMixin,
    features: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[_Predictor, bool]:
    """`estimator` refit in place (its predictions are used before the next refit)."""
    classes = np.unique(targets)
    if len(classes) == 1:
        return ConstantModel(int(classes[0])), True
    return estimator.fit(features, targets, sample_weight=weights), False


def _pattern_table(fitted: _Predictor | None, lags: int) -> np.ndarray:
    if fitted is None:
        raise RuntimeError("pattern_table before any fit")
    if not tabulable(lags):
        raise ValueError(f"{lags} lags make {3**lags} patterns: too many for a table")
    return _as_positions(fitted.predict(all_patterns(lags)))


def _as_positions(predictions: np.ndarray) -> np.ndarray:
    return np.asarray(predictions, dtype=np.int8)


def _distinct(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each distinct row's first occurrence, each row's distinct-row id)."""
    # One opaque bytes value per row: a 1-D unique, far faster than np.unique(axis=0).
    rows = np.ascontiguousarray(matrix, dtype=np.int8)
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse

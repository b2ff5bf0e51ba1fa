"""Which rows each model is fit on and which rows it predicts, per mode (METHOD.md, "Modes").

Rows are indexed 0..n-1 in date order (row i is decision day t = L + i). A refit is fit on rows
[train.start, train.stop) and predicts rows [predict.start, predict.stop); every mode's
evaluation rows are one contiguous run [first_row, n) covered by the refits in order.
- in_sample: one model fit on all rows predicts all rows (a description of the past).
- holdout: one model fit on the first floor(train_fraction * n) rows predicts the rest.
- walk_forward: rows 0..T-1 only train; refits at j = T, T+k, ... are fit on [0, j) (expanding)
  or [j-T, j) (rolling) and predict rows j..j+k-1. Row j-1's target is r at day L+j, known at
  the close of day L+j, the decision day of row j: no prediction sees a price after its day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.backtest.fitting import make_learner
from pipeline.config import BacktestConfig, ModelConfig
from pipeline.errors import DataError

# A fit needs two rows at least: one row is one class.
MIN_TRAIN_ROWS = 2


class TooFewRowsError(DataError):
    """The ticker has too few rows for the mode: it is skipped, not failed."""


class OneClassError(DataError):
    """Every target the mode trains on is one class: no classifier can be fit."""


@dataclass(frozen=True, slots=True)
class Refit:
    train: slice
    predict: slice


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Positions pos_t of the evaluation rows [first_row, first_row + len(positions))."""

    positions: np.ndarray
    first_row: int
    n_refits: int
    one_class_refits: int


def plan_refits(n_rows: int, backtest: BacktestConfig) -> tuple[Refit, ...]:
    """The refits of `backtest.mode` over `n_rows` rows; TooFewRowsError when they do not fit."""
    if backtest.mode == "in_sample":
        _require_rows(n_rows, n_rows, n_rows, MIN_TRAIN_ROWS, backtest)
        return (Refit(slice(0, n_rows), slice(0, n_rows)),)
    if backtest.mode == "holdout":
        split = int(n_rows * backtest.train_fraction)
        _require_rows(n_rows, split, n_rows - split, MIN_TRAIN_ROWS, backtest)
        return (Refit(slice(0, split), slice(split, n_rows)),)
    train_days = backtest.train_days
    _require_rows(n_rows, min(train_days, n_rows), n_rows - train_days, train_days, backtest)
    return walk_forward_refits(n_rows, train_days, backtest.retrain_every, backtest.window)


def walk_forward_refits(
    n_rows: int, train_days: int, retrain_every: int, window: str
) -> tuple[Refit, ...]:
    """Refits at rows j = T, T+k, ... < n_rows, each predicting rows j..j+k-1."""
    return tuple(
        Refit(
            train=slice(j - train_days if window == "rolling" else 0, j),
            predict=slice(j, min(j + retrain_every, n_rows)),
        )
        for j in range(train_days, n_rows, retrain_every)
    )


def evaluate(
    features: np.ndarray,
    targets: np.ndarray,
    model: ModelConfig,
    backtest: BacktestConfig,
) -> Evaluation:
    """Positions of the mode's evaluation rows; features (rows, L) and targets (rows,) as in
    features.Design.

    Raises TooFewRowsError (skip the ticker), OneClassError (every training target is one
    class), or whatever the estimator raises.
    """
    refits = plan_refits(len(targets), backtest)
    _require_two_classes(targets[: max(refit.train.stop for refit in refits)])
    learner = make_learner(model, features, targets)
    blocks, one_class = [], 0
    for refit in refits:
        positions, single = learner.fit_predict(refit.train, refit.predict)
        blocks.append(positions)
        one_class += single
    return Evaluation(
        positions=np.concatenate(blocks),
        first_row=refits[0].predict.start,
        n_refits=len(refits),
        one_class_refits=one_class,
    )


def _require_rows(
    n_rows: int, train_rows: int, eval_rows: int, need_train: int, backtest: BacktestConfig
) -> None:
    if train_rows >= need_train and eval_rows >= backtest.min_eval_days:
        return
    raise TooFewRowsError(
        f"too few rows for {backtest.mode}: {n_rows} rows give {train_rows} training and "
        f"{max(eval_rows, 0)} evaluation rows; need {need_train} training and "
        f"min_eval_days={backtest.min_eval_days} evaluation rows"
    )


def _require_two_classes(train_targets: np.ndarray) -> None:
    classes = np.unique(train_targets)
    if len(classes) < 2:
        raise OneClassError(
            f"every one of the {len(train_targets)} training targets is {int(classes[0]):+d} "
            "(one class); a classifier needs two"
        )

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
from functools import lru_cache

import numpy as np

from pipeline.backtest.fitting import make_learner, table_predictions, tabulable
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
    """Positions pos_t of the evaluation rows [first_row, first_row + len(positions)).

    With the as-of day's features given, `signal` is the prediction of row n (the position for
    the next session) and `signal_fit_rows` the rows [start, stop) its model was fit on.
    `predictions` holds every prediction made, the signal last, and `one_class` the indices of
    the one-class refits of the schedule that made them: what a later run may resume from.
    `refits_computed` counts the models fit by this call (fewer than n_refits when resumed).
    In walk_forward with the signal, `table` is the last refit's prediction of every sign
    pattern (`fitting.pattern_table`) and `table_refit` that refit's index in the schedule:
    a later run whose new rows stay in that refit's block predicts them from it, unfit.
    """

    positions: np.ndarray
    first_row: int
    n_refits: int
    one_class_refits: int
    signal: int | None = None
    signal_fit_rows: tuple[int, int] | None = None
    predictions: np.ndarray | None = None
    one_class: tuple[int, ...] = ()
    refits_computed: int = 0
    table: np.ndarray | None = None
    table_refit: int | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Predictions an earlier run made for rows [first_row, first_row + len(predictions)),
    on the same settings and the same prices up to its last row, and the indices of its
    one-class refits. They stand; only the rows after them are predicted. `table` (with
    `table_refit`) is the earlier run's `Evaluation.table`: the model of that refit, which
    predicts the new rows of its block without being fit again (walk_forward only)."""

    first_row: int
    predictions: np.ndarray
    one_class: tuple[int, ...] = ()
    table: np.ndarray | None = None
    table_refit: int | None = None

    @property
    def next_row(self) -> int:
        return self.first_row + len(self.predictions)


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


# A ticker's task plans the schedule of its n rows, and of n + 1 with the signal, several times
# (evaluation, baselines); building a few hundred Refits each time cost 2 ms a ticker. They are
# frozen, so one tuple serves every caller.
@lru_cache(maxsize=16)
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


def prediction_refits(n_rows: int, backtest: BacktestConfig) -> tuple[Refit, ...]:
    """The mode's refits over the n_rows rows with a target plus row n, the as-of day's
    (METHOD.md, "Next-session positions"): every model is fit on rows before n only.

    in_sample and holdout: the one model also predicts row n. walk_forward: the schedule
    continues, so row n is predicted by the refit at j = T + k * floor((n - T) / k), a new
    refit on every known row when n - T is a multiple of k.
    """
    refits = plan_refits(n_rows, backtest)
    if backtest.mode != "walk_forward":
        (refit,) = refits
        return (Refit(refit.train, slice(refit.predict.start, n_rows + 1)),)
    return walk_forward_refits(
        n_rows + 1, backtest.train_days, backtest.retrain_every, backtest.window
    )


def evaluate(
    features: np.ndarray,
    targets: np.ndarray,
    model: ModelConfig,
    backtest: BacktestConfig,
    signal_features: np.ndarray | None = None,
    resume: Resume | None = None,
) -> Evaluation:
    """Positions of the mode's evaluation rows; features (rows, L) and targets (rows,) as in
    features.Design. `signal_features` (1, L), the as-of day's row, adds the signal.

    `resume` gives the predictions of an earlier run whose rows stand: only the refits whose
    blocks hold a later row are fit (walk_forward; other modes refit on every new row, so there
    a resume must cover every row). The result is the same as without it, bit for bit.

    Raises TooFewRowsError (skip the ticker), OneClassError (every training target is one
    class), or whatever the estimator raises.
    """
    n_rows = len(targets)
    refits = plan_refits(n_rows, backtest)
    _require_two_classes(targets[: max(refit.train.stop for refit in refits)])
    if signal_features is not None:
        features = np.concatenate([features, signal_features.reshape(1, -1).astype(np.int8)])
        refits = prediction_refits(n_rows, backtest)
    first_row = refits[0].predict.start
    stop_row = refits[-1].predict.stop
    from_row = _check_resume(resume, first_row, stop_row, backtest)
    predictions = np.empty(stop_row - first_row, dtype=np.int8)
    one_class = set()
    if resume is not None:
        predictions[: from_row - first_row] = resume.predictions[: from_row - first_row]
        one_class.update(i for i in resume.one_class if refits[i].predict.stop <= from_row)
    has_signal = signal_features is not None
    keep_table = has_signal and backtest.mode == "walk_forward" and tabulable(features.shape[1])
    table, table_refit = None, None
    learner = None  # built only when a refit is due: grouping the rows costs as much as a fit
    computed = 0
    for index, refit in enumerate(refits):
        if refit.predict.stop <= from_row:
            continue
        begin = max(refit.predict.start, from_row)
        reused = _table_of(resume, index) if keep_table else None
        if reused is not None:
            positions = table_predictions(reused, features[begin : refit.predict.stop])
            single = index in resume.one_class
            table, table_refit = reused, index
        else:
            learner = learner or make_learner(model, features, targets)
            block, single = learner.fit_predict(refit.train, refit.predict)
            positions = block[begin - refit.predict.start :]
            computed += 1
            if keep_table and index == len(refits) - 1:
                table, table_refit = learner.pattern_table(), index
        predictions[begin - first_row : refit.predict.stop - first_row] = positions
        if single:
            one_class.add(index)
    if keep_table and table is None and _table_of(resume, len(refits) - 1) is not None:
        table, table_refit = resume.table, resume.table_refit  # nothing new: it stands
    backtest_refits = [i for i, refit in enumerate(refits) if refit.predict.start < n_rows]
    return Evaluation(
        positions=predictions[: n_rows - first_row] if has_signal else predictions,
        first_row=first_row,
        n_refits=len(backtest_refits),
        one_class_refits=len(one_class.intersection(backtest_refits)),
        signal=int(predictions[-1]) if has_signal else None,
        signal_fit_rows=(refits[-1].train.start, refits[-1].train.stop) if has_signal else None,
        predictions=predictions,
        one_class=tuple(sorted(one_class)),
        refits_computed=computed,
        table=table,
        table_refit=table_refit,
    )


def _table_of(resume: Resume | None, index: int) -> np.ndarray | None:
    """The stored table when it is refit `index`'s model: its training rows are the earlier
    run's, which stand, so the model is the one that run fit."""
    if resume is None or resume.table is None or resume.table_refit != index:
        return None
    return resume.table


def _check_resume(
    resume: Resume | None, first_row: int, stop_row: int, backtest: BacktestConfig
) -> int:
    """The first row to predict: after the resumed rows, or the first evaluation row."""
    if resume is None:
        return first_row
    if resume.first_row != first_row or not first_row < resume.next_row <= stop_row:
        raise ValueError(
            f"cannot resume rows [{resume.first_row}, {resume.next_row}) on a schedule of "
            f"rows [{first_row}, {stop_row})"
        )
    if backtest.mode != "walk_forward" and resume.next_row != stop_row:
        raise ValueError(f"{backtest.mode} refits on every new row: a resume must cover them all")
    return resume.next_row


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

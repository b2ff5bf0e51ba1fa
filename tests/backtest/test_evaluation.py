from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.svm import SVC

from pipeline.backtest.evaluation import (
    OneClassError,
    TooFewRowsError,
    evaluate,
    plan_refits,
    walk_forward_refits,
)
from pipeline.backtest.task import backtest_ticker
from pipeline.config import BacktestConfig, BacktestSettings, FeaturesConfig, ModelConfig


def _spans(refits) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return [((r.train.start, r.train.stop), (r.predict.start, r.predict.stop)) for r in refits]


@pytest.mark.parametrize(
    ("backtest", "expected"),
    [
        (BacktestConfig(mode="in_sample", min_eval_days=5), [((0, 30), (0, 30))]),
        (
            BacktestConfig(mode="holdout", train_fraction=0.7, min_eval_days=5),
            [((0, 21), (21, 30))],
        ),
        (
            BacktestConfig(mode="walk_forward", train_days=10, retrain_every=7, min_eval_days=5),
            [((0, 10), (10, 17)), ((0, 17), (17, 24)), ((0, 24), (24, 30))],
        ),
        (
            BacktestConfig(
                mode="walk_forward",
                train_days=10,
                retrain_every=7,
                window="rolling",
                min_eval_days=5,
            ),
            [((0, 10), (10, 17)), ((7, 17), (17, 24)), ((14, 24), (24, 30))],
        ),
    ],
    ids=["in_sample", "holdout", "walk_forward-expanding", "walk_forward-rolling"],
)
def test_refits_of_each_mode_over_thirty_rows(backtest: BacktestConfig, expected: list) -> None:
    assert _spans(plan_refits(30, backtest)) == expected


@given(
    n_rows=st.integers(11, 400),
    train_days=st.integers(1, 60),
    retrain_every=st.integers(1, 40),
    window=st.sampled_from(["expanding", "rolling"]),
)
@settings(max_examples=200, deadline=None)
def test_walk_forward_predicts_each_row_from_t_once_and_trains_on_the_past_only(
    n_rows: int, train_days: int, retrain_every: int, window: str
) -> None:
    refits = walk_forward_refits(n_rows, train_days, retrain_every, window)
    predicted = np.concatenate([np.arange(n_rows)[r.predict] for r in refits]) if refits else []
    assert list(predicted) == list(range(train_days, n_rows))
    for refit in refits:
        assert refit.train.stop == refit.predict.start
        assert refit.train.stop - refit.train.start == (
            train_days if window == "rolling" else refit.train.stop
        )
        assert refit.predict.stop - refit.predict.start <= retrain_every


@pytest.mark.parametrize(
    ("n_rows", "backtest", "message"),
    [
        (19, BacktestConfig(mode="in_sample"), r"19 rows give 19 training and 19 evaluation"),
        (
            60,
            BacktestConfig(mode="holdout", train_fraction=0.7),
            r"60 rows give 42 training and 18 evaluation rows; need 2 training and "
            r"min_eval_days=20",
        ),
        (
            523,
            BacktestConfig(mode="walk_forward"),
            r"523 rows give 504 training and 19 evaluation rows; need 504 training",
        ),
        (100, BacktestConfig(mode="walk_forward"), r"100 rows give 100 training and 0 evaluation"),
        (0, BacktestConfig(mode="in_sample"), r"0 rows give 0 training and 0 evaluation"),
    ],
    ids=["in_sample", "holdout", "walk_forward-one-short", "walk_forward-no-eval", "no-rows"],
)
def test_too_few_rows_for_the_mode_says_how_many(
    n_rows: int, backtest: BacktestConfig, message: str
) -> None:
    with pytest.raises(TooFewRowsError, match=message):
        plan_refits(n_rows, backtest)


def test_just_enough_rows_is_enough() -> None:
    assert len(plan_refits(524, BacktestConfig(mode="walk_forward"))) == 1


def test_one_class_over_all_training_rows_is_an_error() -> None:
    features = np.ones((40, 2), dtype=np.int8)
    targets = np.ones(40, dtype=np.int8)
    targets[-5:] = -1  # only evaluation rows of the holdout hold the other class
    backtest = BacktestConfig(mode="holdout", train_fraction=0.8, min_eval_days=5)
    with pytest.raises(OneClassError, match=r"every one of the 32 training targets is \+1"):
        evaluate(features, targets, ModelConfig(), backtest)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "plain"])
def test_a_one_class_refit_predicts_that_class_and_is_counted(fast_path: bool) -> None:
    rng = np.random.default_rng(0)
    features = rng.choice(np.array([-1, 1], dtype=np.int8), size=(60, 2))
    targets = rng.choice(np.array([-1, 1], dtype=np.int8), size=60)
    targets[:10] = 1  # the first rolling window holds +1 only
    backtest = BacktestConfig(
        mode="walk_forward", train_days=10, retrain_every=10, window="rolling", min_eval_days=5
    )
    result = evaluate(features, targets, ModelConfig(fast_path=fast_path), backtest)
    assert (result.first_row, result.n_refits, result.one_class_refits) == (10, 5, 1)
    assert result.positions[:10].tolist() == [1] * 10
    assert len(result.positions) == 50


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_walk_forward_positions_follow_the_method_step_by_step(window: str) -> None:
    """An independent reading of METHOD.md: refit at j = T, T+k, ... on [0, j) or [j-T, j)."""
    prices = pd.Series(
        100 * np.exp(np.cumsum(np.random.default_rng(11).normal(0, 0.01, 200))),
        index=pd.bdate_range("2018-01-01", periods=200),
    )
    settings_ = _walk_forward_settings(window, fast_path=True)
    train_days, every = settings_.backtest.train_days, settings_.backtest.retrain_every
    signs = np.sign(np.diff(np.log(prices.to_numpy())))
    features = np.column_stack([signs[1:-1], signs[:-2]])  # rows t = 2..N-2: (s_t, s_{t-1})
    targets = signs[2:]
    expected = []
    for j in range(train_days, len(targets), every):
        start = j - train_days if window == "rolling" else 0
        model = SVC(gamma="auto", tol=1e-6).fit(features[start:j], targets[start:j])
        expected.extend(model.predict(features[j : j + every]))
    daily = backtest_ticker("T", prices, settings_).daily
    assert daily["position"].tolist() == expected
    assert list(daily["date"]) == list(prices.index[2 + train_days + 1 :])


# No look-ahead: whatever happens to the prices after day T, no position decided at or before
# the close of day T changes.
@pytest.mark.slow
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(14, 58),
    window=st.sampled_from(["expanding", "rolling"]),
    fast_path=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_no_walk_forward_position_depends_on_a_later_price(
    seed: int, cut: int, window: str, fast_path: bool
) -> None:
    rng = np.random.default_rng(seed)
    n_prices = 60
    dates = pd.bdate_range("2015-01-01", periods=n_prices)
    steps = rng.choice([-0.02, -0.01, 0.0, 0.01, 0.02], size=n_prices - 1)
    prices = pd.Series(100 * np.exp(np.concatenate([[0.0], np.cumsum(steps)])), index=dates)
    changed = prices.copy()
    changed.iloc[cut + 1 :] *= np.exp(rng.normal(0, 0.05, n_prices - cut - 1))
    settings_ = _walk_forward_settings(window, fast_path)
    before = backtest_ticker("T", prices, settings_).daily
    after = backtest_ticker("T", changed, settings_).daily
    decided_by_cut = before["date"] <= dates[cut + 1]  # held on day t+1 <= T+1: decided t <= T
    pd.testing.assert_series_equal(
        before.loc[decided_by_cut, "position"], after.loc[decided_by_cut, "position"]
    )


def _walk_forward_settings(window: str, fast_path: bool) -> BacktestSettings:
    return BacktestSettings(
        features=FeaturesConfig(lags=2),
        model=ModelConfig(fast_path=fast_path),
        backtest=BacktestConfig(
            mode="walk_forward", train_days=10, retrain_every=3, window=window, min_eval_days=5
        ),
    )

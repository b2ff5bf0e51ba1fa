from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.features import (
    RETURN_COLUMN,
    TARGET_COLUMN,
    build_design,
    feature_columns,
    lag_features,
    log_returns,
    next_day_target,
)

# Seven hand-checkable prices: up 10%, flat, down 10%, up 10%, flat, up.
DATES = pd.bdate_range("2020-01-06", periods=7, name="date")
PRICES = pd.Series([100.0, 110.0, 110.0, 99.0, 108.9, 108.9, 120.0], index=DATES)
RETURNS = [math.log(1.1), 0.0, math.log(0.9), math.log(108.9 / 99), 0.0, math.log(120 / 108.9)]


def test_log_returns_are_ln_of_price_ratios_on_their_own_day() -> None:
    returns = log_returns(PRICES)
    np.testing.assert_allclose(returns.to_numpy(), RETURNS, rtol=1e-12)
    assert list(returns.index) == list(DATES[1:])
    assert returns.name == RETURN_COLUMN


def test_lag_features_hold_signs_newest_first_on_the_decision_day() -> None:
    features = lag_features(log_returns(PRICES), lags=2)
    # Days t = 2..6: (sign r_t, sign r_{t-1}).
    expected = [[0, 1], [-1, 0], [1, -1], [0, 1], [1, 0]]
    assert features.to_numpy().tolist() == expected
    assert list(features.index) == list(DATES[2:])
    assert list(features.columns) == ["sign_lag_1", "sign_lag_2"]
    assert (features.dtypes == np.int8).all()


def test_next_day_target_is_the_sign_of_the_next_return() -> None:
    target = next_day_target(log_returns(PRICES))
    assert target.tolist() == [0, -1, 1, 0, 1]
    assert list(target.index) == list(DATES[1:6])
    assert target.name == TARGET_COLUMN


def test_design_rows_run_from_lags_to_the_second_last_day() -> None:
    design = build_design(PRICES, lags=2)
    assert design.n_rows == len(PRICES) - 2 - 1
    assert design.features.tolist() == [[0, 1], [-1, 0], [1, -1], [0, 1]]
    assert design.targets.tolist() == [-1, 1, 0, 1]
    np.testing.assert_allclose(design.next_returns, RETURNS[2:], rtol=1e-12)
    assert list(design.decision_dates) == list(DATES[2:6])
    assert list(design.holding_dates) == list(DATES[3:7])
    assert design.features.dtype == np.int8
    assert design.targets.dtype == np.int8


@pytest.mark.parametrize(
    ("n_prices", "lags", "rows"),
    [(7, 2, 4), (100, 6, 93), (8, 6, 1), (7, 6, 0), (3, 6, 0), (1, 1, 0), (0, 6, 0)],
    ids=["hand", "hundred", "one-row", "no-target", "shorter-than-lags", "one-price", "empty"],
)
def test_n_prices_give_n_minus_lags_minus_one_rows(
    n_prices: int, lags: int, rows: int, walk
) -> None:
    prices = walk(max(n_prices, 2)).iloc[:n_prices]
    design = build_design(prices, lags)
    assert design.n_rows == rows
    assert design.features.shape == (rows, lags)
    assert (
        len(design.next_returns) == len(design.holding_dates) == len(design.decision_dates) == rows
    )


def test_design_agrees_with_the_pandas_functions(walk) -> None:
    prices = walk(300, seed=3, zero_share=0.1)
    returns = log_returns(prices)
    design = build_design(prices, lags=6)
    features = lag_features(returns, lags=6).iloc[:-1]
    target = next_day_target(returns).loc[features.index]
    np.testing.assert_array_equal(design.features, features.to_numpy())
    np.testing.assert_array_equal(design.targets, target.to_numpy())
    np.testing.assert_array_equal(design.next_returns, returns.loc[design.holding_dates].to_numpy())
    assert list(design.decision_dates) == list(features.index)


def test_returns_and_features_never_share_a_name() -> None:
    """Article bug 1: its lag-1 feature column overwrote the log-return column."""
    for lags in (1, 6, 64):
        names = set(feature_columns(lags))
        assert len(names) == lags
        assert RETURN_COLUMN not in names
        assert TARGET_COLUMN not in names


def test_lag_one_feature_is_the_sign_not_the_return(walk) -> None:
    prices = walk(50, seed=1)
    returns = log_returns(prices)
    features = lag_features(returns, lags=3)
    np.testing.assert_array_equal(features["sign_lag_1"], np.sign(returns.loc[features.index]))
    assert not np.allclose(features["sign_lag_1"], returns.loc[features.index])


def test_doubling_every_price_leaves_returns_bit_identical(walk) -> None:
    prices = walk(500, seed=2)
    np.testing.assert_array_equal(log_returns(prices), log_returns(2.0 * prices))


def test_inputs_are_not_changed(walk) -> None:
    prices = walk(40, seed=4)
    before = prices.copy()
    build_design(prices, lags=3)
    lag_features(log_returns(prices), lags=3)
    pd.testing.assert_series_equal(prices, before)


@pytest.mark.parametrize("lags", [0, -1], ids=["zero", "negative"])
def test_lags_below_one_are_rejected(lags: int, walk) -> None:
    with pytest.raises(ValueError, match="'lags' argument must be an int >= 1"):
        build_design(walk(20), lags)

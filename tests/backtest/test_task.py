from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.result import BASELINE_DAILY_COLUMNS, DAILY_COLUMNS
from pipeline.backtest.task import backtest_ticker

DATES = pd.bdate_range("2020-01-06", periods=7, name="date")
PRICES = pd.Series([100.0, 110.0, 110.0, 99.0, 108.9, 108.9, 120.0], index=DATES)
# Rows t = 2..5 with lags = 2: the day each position is held and the return earned on it.
HOLDING_DAYS = list(DATES[3:7])
NEXT_RETURNS = [math.log(0.9), math.log(108.9 / 99), 0.0, math.log(120 / 108.9)]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "plain"])
def test_hand_checked_daily_frame_of_a_momentum_model(
    fast_path: bool, stub_models, make_settings
) -> None:
    settings = make_settings(
        lags=2,
        model={"kind": "momentum", "fast_path": fast_path},
        mode="in_sample",
        min_eval_days=1,
    )
    result = backtest_ticker("HAND", PRICES, settings)
    assert result.status == "ok", result.reason
    daily = result.daily
    assert tuple(daily.columns) == DAILY_COLUMNS + BASELINE_DAILY_COLUMNS
    assert list(daily["date"]) == HOLDING_DAYS
    # pos_t = sign r_t, held over day t+1.
    assert daily["position"].tolist() == [0, -1, 1, 0]
    assert daily["position"].dtype == np.int8
    np.testing.assert_allclose(daily["asset_log_return"], NEXT_RETURNS, rtol=1e-12)
    np.testing.assert_allclose(
        daily["strategy_log_return"], [0.0, -math.log(108.9 / 99), 0.0, 0.0], rtol=1e-12
    )
    metrics = result.metrics
    assert metrics["n_days"] == 4
    assert metrics["accuracy"] == 0.0  # targets -1, +1, 0, +1: every call wrong
    assert metrics["first_day"] == "2020-01-09"
    assert metrics["last_day"] == "2020-01-14"
    assert metrics["cum_return"] == pytest.approx(99 / 108.9, rel=1e-12)
    assert metrics["buy_hold"] == pytest.approx(120 / 110, rel=1e-12)


@pytest.mark.parametrize("mode", ["in_sample", "holdout", "walk_forward"])
def test_always_long_earns_buy_and_hold_and_always_short_its_inverse(
    mode: str, stub_models, make_settings, walk
) -> None:
    prices = walk(400, seed=5)
    common = {"mode": mode, "train_days": 100, "retrain_every": 21}
    long = backtest_ticker("L", prices, make_settings(model={"kind": "constant"}, **common))
    short = backtest_ticker(
        "S", prices, make_settings(model={"kind": "constant", "params": {"label": -1}}, **common)
    )
    assert long.metrics["cum_return"] == long.metrics["buy_hold"]
    assert short.metrics["cum_return"] == pytest.approx(1 / short.metrics["buy_hold"], rel=1e-12)
    assert long.metrics["buy_hold"] != pytest.approx(1.0)


@pytest.mark.parametrize(
    "backtest",
    [
        {"mode": "in_sample"},
        {"mode": "holdout"},
        {"mode": "walk_forward", "train_days": 250, "retrain_every": 50},
        {"mode": "walk_forward", "train_days": 250, "retrain_every": 50, "window": "rolling"},
    ],
    ids=["in_sample", "holdout", "walk_forward-expanding", "walk_forward-rolling"],
)
def test_doubling_every_price_changes_nothing(backtest: dict, make_settings, walk) -> None:
    prices = walk(600, seed=6, zero_share=0.05)
    settings = make_settings(**backtest)
    once = backtest_ticker("T", prices, settings)
    twice = backtest_ticker("T", 2.0 * prices, settings)
    assert once.status == "ok"
    assert once.metrics == twice.metrics
    pd.testing.assert_frame_equal(once.daily, twice.daily)


def test_the_strategy_earns_real_log_returns_not_signs(make_settings, walk) -> None:
    """Article bug 1: its "strategy return" was position * sign, so its cumulative return was
    exp(right calls - wrong calls), e.g. 10^36 on real data."""
    prices = walk(800, seed=7)
    result = backtest_ticker("T", prices, make_settings(mode="in_sample"))
    daily = result.daily
    real = np.log(prices / prices.shift(1)).loc[daily["date"]].to_numpy()
    np.testing.assert_allclose(daily["asset_log_return"], real, rtol=1e-12)
    positions = daily["position"].to_numpy()
    np.testing.assert_allclose(daily["strategy_log_return"], positions * real, rtol=1e-12)
    assert math.log(result.metrics["cum_return"]) == pytest.approx(np.sum(positions * real))
    right = np.sum(positions == np.sign(real))
    wrong = np.sum(positions == -np.sign(real))
    assert right - wrong > 10  # in-sample, the SVC is right more often than wrong
    assert result.metrics["cum_return"] < 0.01 * math.exp(right - wrong)


@pytest.mark.parametrize("mode", ["in_sample", "holdout", "walk_forward"])
def test_results_are_labelled_with_their_mode(mode: str, make_settings, walk) -> None:
    """Article bug 4: it scored the model on its own training rows without saying so."""
    result = backtest_ticker("T", walk(700, seed=8), make_settings(mode=mode))
    assert result.metrics["mode"] == mode


def test_holdout_and_walk_forward_evaluate_only_unseen_rows(make_settings, walk) -> None:
    prices = walk(1000, seed=9)
    in_sample = backtest_ticker("T", prices, make_settings(mode="in_sample")).metrics
    holdout = backtest_ticker("T", prices, make_settings(mode="holdout")).metrics
    walk_forward = backtest_ticker("T", prices, make_settings()).metrics
    rows = 1000 - 6 - 1
    assert in_sample["n_days"] == rows
    assert holdout["n_days"] == rows - int(rows * 0.7)
    assert walk_forward["n_days"] == rows - 504


def test_too_few_prices_is_skipped_with_the_counts(make_settings, walk) -> None:
    result = backtest_ticker("T", walk(100), make_settings())
    assert result.status == "skipped"
    assert result.reason == (
        "too few rows for walk_forward: 93 rows give 93 training and 0 evaluation rows; "
        "need 504 training and min_eval_days=20 evaluation rows (100 prices, lags=6)"
    )
    assert result.metrics == {} and result.daily is None


def test_one_target_class_fails_with_the_reason(make_settings) -> None:
    prices = pd.Series(np.linspace(10, 20, 200), index=pd.bdate_range("2020-01-01", periods=200))
    result = backtest_ticker("UP", prices, make_settings(mode="in_sample"))
    assert result.status == "failed"
    assert "every one of the 193 training targets is +1 (one class)" in result.reason


def test_non_positive_prices_fail_with_the_reason(make_settings, walk) -> None:
    prices = walk(700).copy()
    prices.iloc[300] = 0.0
    result = backtest_ticker("ZERO", prices, make_settings())
    assert result.status == "failed"
    assert "1 prices are zero or negative" in result.reason


def test_cleaning_warnings_reach_the_result(make_settings, walk) -> None:
    prices = walk(700).copy()
    prices.iloc[[10, 20]] = np.nan
    result = backtest_ticker("GAPS", prices, make_settings())
    assert result.status == "ok"
    assert result.warnings == (
        "dropped 2 rows with a missing date or a missing or infinite price (first 2010-01-18)",
    )
    assert result.metrics["n_days"] == 700 - 2 - 6 - 1 - 504


def test_one_class_refits_are_noted(make_settings, walk) -> None:
    steady = pd.Series(np.linspace(10, 11, 40), index=pd.bdate_range("2009-11-02", periods=40))
    noisy = walk(300, seed=10) * (11 / 50)
    prices = pd.concat([steady, noisy.iloc[1:]])
    settings = make_settings(mode="walk_forward", train_days=20, retrain_every=10, window="rolling")
    result = backtest_ticker("T", prices, settings)
    assert result.status == "ok"
    # 40 rising prices: the rolling windows of the refits at rows 20 and 30 hold +1 only.
    assert result.warnings == (
        "2 of 32 refits had one target class in their training rows and predicted that class",
    )


def test_a_model_exception_fails_the_ticker_only(stub_models, make_settings, walk) -> None:
    result = backtest_ticker("T", walk(700), make_settings(model={"kind": "failing"}))
    assert result.status == "failed"
    assert result.reason == "the model raised RuntimeError: solver blew up"


def test_inputs_are_not_changed(make_settings, walk) -> None:
    prices = walk(700).iloc[::-1]
    before = prices.copy()
    backtest_ticker("T", prices, make_settings())
    pd.testing.assert_series_equal(prices, before)


def test_the_task_and_its_result_pickle(make_settings, walk) -> None:
    settings = make_settings(mode="holdout")
    result = backtest_ticker("T", walk(300), settings)
    assert pickle.loads(pickle.dumps(backtest_ticker)) is backtest_ticker
    assert pickle.loads(pickle.dumps(settings)) == settings
    copy = pickle.loads(pickle.dumps(result))
    assert copy.metrics == result.metrics
    pd.testing.assert_frame_equal(copy.daily, result.daily)

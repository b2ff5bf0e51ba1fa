"""The pipeline's backtest against an independent plain implementation of METHOD.md, on real
prices from the shared sample (skipped with a reason when the sample is absent)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.task import backtest_ticker
from tests.backtest.conftest import build_settings
from tests.backtest.reference import reference_frame, reference_positions, reference_summary

LAGS = 6
IN_SAMPLE_SPAN = ("1999-12-31", "2019-12-31")
WALK_SPAN = ("2013-12-31", "2019-12-31")
WALK = {"train_days": 504, "retrain_every": 63}
# Tickers of different kinds: a steady consumer stock, an energy stock, a volatile tech stock.
TICKERS = ["KO", "XOM", "MU"]

SamplePrices = Callable[[str, str, str], pd.Series]


def pipeline_run(prices: pd.Series, fast_path: bool, mode: str, **backtest: object):
    settings = build_settings(LAGS, model={"fast_path": fast_path}, mode=mode, **backtest)
    result = backtest_ticker("T", prices, settings)
    assert result.status == "ok", result.reason
    return result


def reference_run(prices: pd.Series, mode: str, **backtest: object):
    frame = reference_frame(prices, LAGS)
    positions = reference_positions(frame, mode, **backtest)
    return frame, positions, reference_summary(frame, positions)


def assert_same_summary(metrics: dict, expected: dict) -> None:
    assert metrics["n_days"] == expected["n_days"]
    for name in ("accuracy", "cum_return", "buy_hold", "sharpe"):
        assert metrics[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


@pytest.mark.slow
@pytest.mark.parametrize("ticker", TICKERS)
@pytest.mark.parametrize(
    ("mode", "span", "backtest"),
    [("in_sample", IN_SAMPLE_SPAN, {}), ("walk_forward", WALK_SPAN, WALK)],
    ids=["in_sample", "walk_forward"],
)
def test_the_plain_fit_equals_the_reference_day_by_day(
    sample_prices: SamplePrices, ticker: str, mode: str, span: tuple[str, str], backtest: dict
) -> None:
    prices = sample_prices(ticker, *span)
    frame, positions, expected = reference_run(prices, mode, **backtest)
    result = pipeline_run(prices, fast_path=False, mode=mode, **backtest)
    daily = result.daily
    assert daily["date"].tolist() == frame.loc[positions.index, "held_on"].tolist()
    np.testing.assert_array_equal(daily["position"].to_numpy(), positions.to_numpy())
    assert_same_summary(result.metrics, expected)


@pytest.mark.slow
@pytest.mark.parametrize("ticker", TICKERS)
def test_the_fast_path_agrees_with_the_reference_in_sample(
    sample_prices: SamplePrices, ticker: str
) -> None:
    prices = sample_prices(ticker, *IN_SAMPLE_SPAN)
    _, positions, expected = reference_run(prices, "in_sample")
    result = pipeline_run(prices, fast_path=True, mode="in_sample")
    agree = (result.daily["position"].to_numpy() == positions.to_numpy()).mean()
    assert agree >= 0.995
    assert result.metrics["n_days"] == expected["n_days"]
    assert result.metrics["buy_hold"] == pytest.approx(expected["buy_hold"], rel=1e-12)
    assert result.metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("cut", ["2016-06-30", "2018-03-15"])
def test_prices_cut_at_a_day_give_the_same_walk_forward_positions_up_to_it(
    sample_prices: SamplePrices, fast_path: bool, cut: str
) -> None:
    full = sample_prices("XOM", *WALK_SPAN)
    whole = pipeline_run(full, fast_path, "walk_forward", **WALK).daily
    cut_short = pipeline_run(full.loc[:cut], fast_path, "walk_forward", **WALK).daily
    assert cut_short["date"].iloc[-1] == full.loc[:cut].index[-1]
    pd.testing.assert_frame_equal(cut_short, whole.iloc[: len(cut_short)])

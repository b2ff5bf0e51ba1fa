"""Next-session positions (METHOD.md, "Next-session positions"): against an independent plain
implementation, and free of look-ahead: the signal for prices cut at day d is what a full run
holds over day d+1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.backtest.task import backtest_ticker
from pipeline.signals import assemble_signals, format_signal_counts, signal_counts
from tests.backtest.conftest import build_settings, random_walk
from tests.backtest.reference import reference_signal

TOL = {"tol": 1e-6}
PLAIN = {"fast_path": False, "params": {"gamma": "auto", **TOL}}


def run(prices: pd.Series, lags: int = 3, model: dict | None = None, **backtest: object):
    result = backtest_ticker("T", prices, build_settings(lags, model=model or PLAIN, **backtest))
    assert result.status == "ok", result.reason
    return result


def fit_stop_date(prices: pd.Series, lags: int, stop: int) -> pd.Timestamp:
    """The decision day of row `stop`: the close at which row stop-1's target is known."""
    return prices.index[lags + stop]


WALKS = [
    # (n_prices, train_days, retrain_every, window): n - T a multiple of k in the second.
    (160, 40, 10, "expanding"),
    (40 + 3 + 1 + 50, 40, 10, "expanding"),
    (173, 40, 7, "rolling"),
    (150, 30, 1, "rolling"),
]


@pytest.mark.parametrize(("n_prices", "train_days", "every", "window"), WALKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walk_forward_signal_equals_the_reference(
    n_prices: int, train_days: int, every: int, window: str, seed: int
) -> None:
    prices = random_walk(n_prices, seed=seed, zero_share=0.05)
    backtest = {"train_days": train_days, "retrain_every": every, "window": window}
    result = run(prices, mode="walk_forward", min_eval_days=5, **backtest)
    expected = reference_signal(prices, 3, "walk_forward", svc_params=TOL, **backtest)
    signal = result.signal
    assert signal["position"] == expected["position"]
    fit_from, fit_to = expected["fit_rows"]
    assert signal["train_rows"] == fit_to - fit_from
    assert signal["refit_date"] == fit_stop_date(prices, 3, fit_to).date().isoformat()
    assert signal["as_of"] == prices.index[-1].date().isoformat()
    assert signal["mode"] == "walk_forward" and signal["in_sample"] is False
    assert signal["last_close"] == prices.iloc[-1]


def test_a_refit_is_due_on_the_as_of_day_when_n_minus_t_is_a_multiple_of_k() -> None:
    lags, train_days, every = 3, 40, 10
    n_rows = train_days + 5 * every  # rows with a target
    prices = random_walk(n_rows + lags + 1, seed=4)
    result = run(prices, lags, mode="walk_forward", train_days=train_days, retrain_every=every)
    # The new refit is fit on every known row, and its last target became known at the close
    # of the as-of day itself.
    assert result.signal["train_rows"] == n_rows
    assert result.signal["refit_date"] == prices.index[-1].date().isoformat()
    # One price fewer: the last backtest block's model, refit 10 rows earlier.
    shorter = run(
        prices.iloc[:-1], lags, mode="walk_forward", train_days=train_days, retrain_every=every
    )
    assert shorter.signal["train_rows"] == n_rows - every


@pytest.mark.parametrize("mode", ["in_sample", "holdout"])
@pytest.mark.parametrize("seed", [0, 3])
def test_in_sample_and_holdout_signals_equal_the_reference(mode: str, seed: int) -> None:
    prices = random_walk(220, seed=seed)
    result = run(prices, mode=mode)
    expected = reference_signal(prices, 3, mode, svc_params=TOL)
    assert result.signal["position"] == expected["position"]
    fit_from, fit_to = expected["fit_rows"]
    assert result.signal["train_rows"] == fit_to - fit_from
    assert result.signal["in_sample"] is (mode == "in_sample")
    assert result.signal["refit_date"] == fit_stop_date(prices, 3, fit_to).date().isoformat()


def test_the_signal_is_the_prediction_of_the_as_of_days_own_lags() -> None:
    # A model that predicts the sign of the latest return: the signal must be the sign of the
    # as-of day's return, not of any earlier day.
    for seed in range(6):
        prices = random_walk(120, seed=seed)
        last = np.sign(np.log(prices.iloc[-1] / prices.iloc[-2]))
        stub = backtest_ticker(
            "T", prices, build_settings(3, model={"kind": "momentum"}, mode="in_sample")
        )
        assert stub.signal["position"] == last


@pytest.fixture(autouse=True)
def _stubs(stub_models: None) -> None:
    """The momentum stub is registered for every test here."""


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    lags=st.integers(1, 4),
    train_days=st.integers(10, 40),
    every=st.integers(1, 12),
    window=st.sampled_from(["expanding", "rolling"]),
    extra=st.integers(25, 60),
    cut_back=st.integers(1, 20),
)
def test_the_signal_for_prices_cut_at_a_day_is_what_a_full_run_holds_the_next_day(
    seed: int, lags: int, train_days: int, every: int, window: str, extra: int, cut_back: int
) -> None:
    prices = random_walk(lags + 1 + train_days + extra, seed=seed, zero_share=0.1)
    backtest = {
        "mode": "walk_forward",
        "train_days": train_days,
        "retrain_every": every,
        "window": window,
        "min_eval_days": 1,
    }
    fast = {"params": {"gamma": "auto", **TOL}}
    full = run(prices, lags, model=fast, **backtest).daily
    cut = prices.iloc[: len(prices) - cut_back]
    signal = run(cut, lags, model=fast, **backtest).signal
    held = full.loc[full["date"] == prices.index[len(cut)], "position"]
    assert held.tolist() == [signal["position"]]


def ok(ticker: str, as_of: str, position: int):
    prices = random_walk(80, seed=len(ticker))
    result = run(prices, mode="in_sample")
    return type(result)(
        ticker, "ok", signal={**result.signal, "as_of": as_of, "position": position}
    )


def test_signals_keep_the_requested_order_and_flag_stale_tickers() -> None:
    results = [
        ok("B", "2024-03-28", 1),
        ok("A", "2024-03-27", -1),
        type(ok("C", "2024-03-28", 0))("C", "failed", "broken"),
        ok("D", "2024-03-28", 0),
    ]
    signals = assemble_signals(["A", "B", "C", "D"], results)
    assert signals["ticker"].tolist() == ["A", "B", "D"]
    assert signals["stale"].tolist() == [True, False, False]
    assert signals["side"].tolist() == ["short", "long", "flat"]
    counts = signal_counts(signals)
    assert (counts["long"], counts["flat"], counts["short"]) == (1, 1, 1)
    assert counts["stale"] == ["A"] and counts["as_of"] == "2024-03-28"
    assert "1 stale" in format_signal_counts(counts) and "A" in format_signal_counts(counts)


def test_no_ok_ticker_gives_an_empty_signals_table_with_its_columns() -> None:
    signals = assemble_signals(["A"], [type(ok("A", "2024-01-02", 1))("A", "skipped", "short")])
    assert signals.empty and "position" in signals.columns
    assert signal_counts(signals)["long"] == 0

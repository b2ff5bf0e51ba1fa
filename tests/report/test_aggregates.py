"""Aggregates against numbers worked out by hand on the conftest's three ok tickers + one failed."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.backtest.metrics import max_drawdown
from pipeline.report.aggregates import (
    PORTFOLIO_DEFINITION,
    bh_q_values,
    compute_aggregates,
    drawdown_curve,
    group_reasons,
    portfolio_returns,
    position_changes,
    reason_kind,
)
from tests.report.conftest import (
    combined_daily,
    sample_results,
    sample_tables,
    summary_frame,
)


@pytest.fixture
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return sample_tables()


def test_counts_and_reasons(tables):
    agg = compute_aggregates(*tables)
    assert agg.n_tickers == 4
    assert dict(agg.counts) == {"ok": 3, "skipped": 0, "failed": 1}
    assert [(g.status, g.kind, g.tickers) for g in agg.reasons] == [
        ("failed", "download", ("DDD",))
    ]


def test_distributions_by_hand(tables):
    agg = compute_aggregates(*tables)
    accuracy = agg.distributions["accuracy"]
    # accuracy of the ok tickers: 0.60, 0.50, 0.55 -> sorted 0.50, 0.55, 0.60
    # mean 0.55, median 0.55; linear quartiles at positions 0.5 and 1.5: 0.525 and 0.575
    assert accuracy.count == 3
    assert accuracy.mean == pytest.approx(0.55)
    assert accuracy.median == pytest.approx(0.55)
    assert (accuracy.q1, accuracy.q3) == pytest.approx((0.525, 0.575))
    assert (accuracy.min, accuracy.max) == pytest.approx((0.50, 0.60))
    # cum_return 1.20, 0.90, 1.50 -> mean 1.2, median 1.2, q1 1.05, q3 1.35
    growth = agg.distributions["cum_return"]
    assert (growth.mean, growth.median, growth.q1, growth.q3) == pytest.approx(
        (1.2, 1.2, 1.05, 1.35)
    )
    # sharpe 1.0, -0.5, 2.0 -> mean 2.5 / 3; max_drawdown 0.10, 0.20, 0.05 -> median 0.10
    assert agg.distributions["sharpe"].mean == pytest.approx(2.5 / 3)
    assert agg.distributions["max_drawdown"].median == pytest.approx(0.10)
    # the failed ticker counts nowhere: buy_hold 1.00, 1.10, 1.45 -> mean 3.55 / 3
    assert agg.distributions["buy_hold"].mean == pytest.approx(3.55 / 3)
    # majority rates 0.50, 0.55, 0.52 -> mean 1.57 / 3
    assert agg.mean_majority_rate == pytest.approx(1.57 / 3)
    # every ok ticker has fewer than 252 evaluation days
    assert agg.n_short_history == 3


def test_share_beating_buy_and_hold(tables):
    agg = compute_aggregates(*tables)
    # gross: AAA 1.20 > 1.00 yes, BBB 0.90 > 1.10 no, CCC 1.50 > 1.45 yes -> 2/3
    assert agg.share_beat_buy_hold == pytest.approx(2 / 3)
    # net:   AAA 1.10 > 1.00 yes, BBB 0.85 > 1.10 no, CCC 1.40 > 1.45 no  -> 1/3
    assert agg.share_beat_buy_hold_net == pytest.approx(1 / 3)


def test_bh_share_of_the_sample(tables):
    agg = compute_aggregates(*tables)
    # p = 0.01, 0.04, 0.50 (m = 3): p * m / rank = 0.03, 0.06, 0.50 -> q = 0.03, 0.06, 0.50
    # only AAA has q <= 0.05; DDD (failed, p NaN) is not a test
    assert agg.n_tested == 3
    assert agg.n_significant == 1
    assert agg.share_significant == pytest.approx(1 / 3)
    q = bh_q_values(tables[0])
    assert q.tolist()[:3] == pytest.approx([0.03, 0.06, 0.50])
    assert math.isnan(q.iloc[3])


@pytest.mark.parametrize(
    ("p_values", "expected_significant"),
    [
        # Step-up: p * 4 / rank = 0.04 for every rank, so all four pass, although only the
        # first would pass Bonferroni (0.02 * 4 = 0.08 > 0.05).
        pytest.param([0.01, 0.02, 0.03, 0.04], 4, id="step-up-all-pass"),
        # m = 10: p * m / rank = 0.01, 0.04, 0.13, 0.1025, 0.084, ... -> q = 0.01, 0.04, 0.084..
        pytest.param(
            [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216], 2, id="ten"
        ),
        pytest.param([0.2, 0.5, 0.9], 0, id="none"),
        pytest.param([0.05], 1, id="boundary-is-significant"),
    ],
)
def test_bh_share_known_p_values(p_values, expected_significant):
    ok_rows = {
        f"T{i}": dict(n_days=300, accuracy=0.5, cum_return=1.0, cum_return_net=1.0, buy_hold=1.0,
                      sharpe=0.0, max_drawdown=0.0, majority_rate=0.5, p_value=p)
        for i, p in enumerate(p_values)
    }  # fmt: skip
    results = sample_results(ok_rows, failed={})
    agg = compute_aggregates(summary_frame(results), combined_daily(results))
    assert agg.n_significant == expected_significant
    assert agg.share_significant == pytest.approx(expected_significant / len(p_values))


def _book(*log_returns: float) -> float:
    """ln(1 + mean simple return): one day of a daily-rebalanced equal-weight book."""
    return math.log(sum(math.exp(r) for r in log_returns) / len(log_returns))


def test_portfolio_by_hand(tables):
    summary, daily = tables
    curves = portfolio_returns(daily)
    # strategy log returns (position * asset):
    #   AAA  d1 +0.01  d2 -0.02  d3 -0.01
    #   BBB  d1 -0.02  d2 +0.03  d3  0.00
    #   CCC            d2 +0.03  d3  0.00     (CCC has no row on d1: it is not in that day's mean)
    days = [_book(0.01, -0.02), _book(-0.02, 0.03, 0.03), _book(-0.01, 0.0, 0.0)]
    # d1: (e^0.01 + e^-0.02) / 2 = (1.010050 + 0.980199) / 2 = 0.995125 -> ln = -0.004887
    assert days[0] == pytest.approx(-0.004887, abs=1e-6)
    assert curves["strategy"].tolist() == pytest.approx(days, rel=1e-12)
    assert curves["n_tickers"].tolist() == [2, 3, 3]
    holding = [_book(0.01, -0.02), _book(0.02, 0.03, -0.03), _book(-0.01, 0.01, 0.0)]
    assert curves["buy_hold"].tolist() == pytest.approx(holding, rel=1e-12)

    agg = compute_aggregates(summary, daily)
    strategy = agg.portfolio_strategy
    assert strategy.cum_return == pytest.approx(math.exp(sum(days)))
    # the worst fall is the first day, from the start at 1
    assert strategy.max_drawdown == pytest.approx(1 - math.exp(days[0]))
    mean = sum(days) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in days) / 2)
    assert strategy.sharpe == pytest.approx(mean / std * math.sqrt(252))
    assert (strategy.n_days, strategy.first_date, strategy.last_date) == (
        3,
        "2021-03-01",
        "2021-03-03",
    )
    assert agg.portfolio_buy_hold.cum_return == pytest.approx(math.exp(sum(holding)))
    assert agg.portfolio_strategy_net is None  # no costs given


def test_portfolio_net_of_costs_by_hand(tables):
    # cost 10 bps = 0.001 per unit of position traded, the first row entering from flat:
    #   AAA positions 1, -1, 1 -> traded 1, 2, 2 -> net 0.009, -0.022, -0.012
    #   BBB positions 1, 1, 0  -> traded 1, 0, 1 -> net -0.021, 0.030, -0.001
    #   CCC positions -1, -1   -> traded 1, 0    -> net         0.029,  0.000
    # each ticker's net log return first, then the book of simple returns
    agg = compute_aggregates(*tables, cost_bps=10.0)
    expected = [_book(0.009, -0.021), _book(-0.022, 0.030, 0.029), _book(-0.012, -0.001, 0.0)]
    assert agg.curves["strategy_net"].tolist() == pytest.approx(expected, rel=1e-12)
    assert agg.portfolio_strategy_net.cum_return == pytest.approx(math.exp(sum(expected)))


def test_portfolio_matches_a_book_rebalanced_in_cash():
    """An independent simulation: each day the book's value is split equally in cash across the
    day's tickers, each slice grows by its ticker's exp(log return)."""
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2020-01-01", periods=40)
    frames, returns = [], {}
    for i in range(4):
        present = dates[i * 3 :]  # tickers enter on different days
        r = rng.normal(0.0, 0.03, len(present))
        returns[f"T{i}"] = pd.Series(r, index=present)
        frames.append(pd.DataFrame({"ticker": f"T{i}", "date": present, "position": 1,
                                    "asset_log_return": r, "strategy_log_return": r}))  # fmt: skip
    value = 1.0
    for day in dates:
        todays = [series[day] for series in returns.values() if day in series.index]
        value = sum(value / len(todays) * math.exp(r) for r in todays)
    curves = portfolio_returns(pd.concat(frames, ignore_index=True))
    assert math.exp(curves["strategy"].sum()) == pytest.approx(value, rel=1e-12)


def test_portfolio_is_not_the_mean_of_log_returns():
    # +50% and -50% simple returns: the book is flat, the mean of the logs says -14%
    dates = pd.bdate_range("2020-01-01", periods=1)
    daily = pd.DataFrame({"ticker": ["A", "B"], "date": [dates[0]] * 2, "position": [1, 1],
                          "asset_log_return": [math.log(1.5), math.log(0.5)],
                          "strategy_log_return": [math.log(1.5), math.log(0.5)]})  # fmt: skip
    assert portfolio_returns(daily)["strategy"].iloc[0] == pytest.approx(0.0, abs=1e-15)


def test_portfolio_ignores_row_order(tables):
    summary, daily = tables
    shuffled = daily.sample(frac=1.0, random_state=3)
    expected = compute_aggregates(summary, daily, cost_bps=10.0).curves
    pd.testing.assert_frame_equal(
        compute_aggregates(summary, shuffled, cost_bps=10.0).curves, expected
    )


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_position_changes_of_a_run_s_layout_equal_those_of_any_order(lengths, seed):
    """A run's daily rows (each ticker's together, in date order) take a path without the sort;
    it must give exactly what the sorted path gives for the same rows in any order."""
    rng = np.random.default_rng(seed)
    frames = [
        pd.DataFrame({
            "ticker": f"T{number}",
            "date": pd.bdate_range("2020-01-01", periods=length) + pd.offsets.BDay(number),
            "position": rng.choice([-1, 0, 1], length).astype("int8"),
        })
        for number, length in enumerate(lengths)
    ]  # fmt: skip
    daily = pd.concat(frames, ignore_index=True)
    daily["ticker"] = daily["ticker"].astype("category")
    shuffled = daily.sample(frac=1.0, random_state=seed % 2**31)
    in_run_order = position_changes(daily)
    assert in_run_order.equals(position_changes(shuffled).reindex(daily.index))
    first_rows = daily.groupby("ticker", observed=True).head(1).index
    assert (in_run_order[first_rows] == daily["position"][first_rows].abs()).all()
    curves = portfolio_returns(daily.assign(asset_log_return=0.01, strategy_log_return=0.01), 5.0)
    again = portfolio_returns(
        shuffled.assign(asset_log_return=0.01, strategy_log_return=0.01), 5.0
    )
    pd.testing.assert_frame_equal(curves, again, check_exact=False, rtol=1e-12)


def test_nan_return_propagates_into_that_day(tables):
    daily = tables[1].copy()
    daily.loc[0, "strategy_log_return"] = np.nan  # AAA on d1
    curves = portfolio_returns(daily)
    assert math.isnan(curves["strategy"].iloc[0])
    assert curves["strategy"].iloc[1] == pytest.approx(_book(-0.02, 0.03, 0.03))


def test_no_ok_ticker_gives_no_figures():
    """A portfolio of no ticker has no return, Sharpe ratio or drawdown (not 1.0x, 0.00, 0%)."""
    results = sample_results({}, failed={"X": "boom"}, skipped={"Y": "too few rows: 3"})
    agg = compute_aggregates(summary_frame(results), combined_daily(results), cost_bps=5.0)
    assert dict(agg.counts) == {"ok": 0, "skipped": 1, "failed": 1}
    assert agg.distributions["accuracy"].count == 0
    assert math.isnan(agg.share_beat_buy_hold)
    for stats in (agg.portfolio_strategy, agg.portfolio_strategy_net, agg.portfolio_buy_hold):
        assert stats.n_days == 0 and stats.first_date is None
        for figure in (stats.cum_return, stats.annual_return, stats.sharpe, stats.max_drawdown):
            assert math.isnan(figure)
    assert agg.n_tested == 0
    assert agg.short_history_tickers == ()


def test_to_dict_is_json_ready():
    results = sample_results({}, failed={"X": "boom"})
    plain = compute_aggregates(summary_frame(results), combined_daily(results)).to_dict()
    text = json.dumps(plain, allow_nan=False)  # raises on NaN or a numpy scalar
    assert plain["share_beat_buy_hold"] is None
    assert plain["distributions"]["accuracy"]["median"] is None
    assert plain["portfolio_definition"] == PORTFOLIO_DEFINITION
    assert "curves" not in plain
    assert json.loads(text) == plain


def test_to_dict_values(tables):
    plain = compute_aggregates(*tables).to_dict()
    assert plain["counts"] == {"ok": 3, "skipped": 0, "failed": 1}
    assert type(plain["n_significant"]) is int
    assert type(plain["distributions"]["accuracy"]["mean"]) is float
    assert plain["reasons"] == [{"status": "failed", "kind": "download", "tickers": ["DDD"]}]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        pytest.param("download: HTTP 404 (after 4 tries)", "download", id="prefix"),
        pytest.param(
            "too few rows for walk_forward: 300 rows give 300 training and 0 evaluation rows",
            "too few rows for walk_forward",
            id="details-after-colon",
        ),
        pytest.param(
            "3 prices are zero or negative (first 2001-01-02: 0.0); log returns need positive "
            "prices",
            "N prices are zero or negative; log returns need positive prices",
            id="numbers-and-parentheses",
        ),
        pytest.param("", "(no reason given)", id="empty"),
    ],
)
def test_reason_kind(reason, kind):
    assert reason_kind(reason) == kind


def test_group_reasons_groups_kinds_largest_first():
    results = sample_results(
        {},
        failed={"F1": "download: timeout", "F2": "download: HTTP 500", "F3": "model raised X"},
        skipped={"S1": "too few rows for holdout: 10 rows"},
    )
    groups = group_reasons(summary_frame(results))
    assert [(g.status, g.kind, g.tickers) for g in groups] == [
        ("failed", "download", ("F1", "F2")),
        ("failed", "model raised X", ("F3",)),
        ("skipped", "too few rows for holdout", ("S1",)),
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-0.1, 0.1, allow_nan=False), min_size=5, max_size=5),
        min_size=1,
        max_size=6,
    )
)
def test_portfolio_lies_between_mean_log_and_best_ticker(returns_by_ticker):
    """Jensen: each day's book is at least the mean of the logs and at most the best ticker."""
    dates = pd.bdate_range("2020-01-01", periods=5)
    daily = pd.concat(
        pd.DataFrame({"ticker": f"T{i}", "date": dates, "position": 1,
                      "asset_log_return": r, "strategy_log_return": r})
        for i, r in enumerate(returns_by_ticker)
    )  # fmt: skip
    book = portfolio_returns(daily)["strategy"].to_numpy()
    matrix = np.array(returns_by_ticker)
    assert np.all(book >= matrix.mean(axis=0) - 1e-12)
    assert np.all(book <= matrix.max(axis=0) + 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=1, max_size=60))
def test_drawdown_curve_peaks_at_max_drawdown(log_returns):
    curve = drawdown_curve(pd.Series(log_returns))
    assert curve.min() >= 0.0
    assert curve.max() == pytest.approx(max_drawdown(log_returns), abs=1e-12)

"""The metrics against independent implementations written here from their definitions, in
plain Python (no numpy, nothing from the code under test): Sharpe in both conventions (daily
log returns, as this project reports it, and simple returns, as empyrical and quantstats do),
maximum drawdown, cumulative return, annualised return and volatility."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.backtest.metrics import cum_return, max_drawdown, sharpe_ratio
from pipeline.report.aggregates import portfolio_stats

DAYS_PER_YEAR = 252


def reference_sharpe(returns: list[float]) -> float:
    """mean / sample standard deviation * sqrt(252), 0 for fewer than 2 or equal values."""
    if len(returns) < 2 or len(set(returns)) == 1:
        return 0.0
    return statistics.fmean(returns) / statistics.stdev(returns) * math.sqrt(DAYS_PER_YEAR)


def empyrical_sharpe(simple: list[float]) -> float:
    """empyrical.sharpe_ratio / quantstats' sharpe without a risk-free rate: simple returns."""
    return statistics.fmean(simple) / statistics.stdev(simple) * math.sqrt(DAYS_PER_YEAR)


def reference_drawdown(log_returns: list[float]) -> float:
    """Largest fall of the equity from its running peak, the starting 1 counted as a peak."""
    equity, peak, worst = 1.0, 1.0, 0.0
    for value in log_returns:
        equity *= math.exp(value)
        peak = max(peak, equity)
        worst = max(worst, 1.0 - equity / peak)
    return worst


def reference_cum_return(log_returns: list[float]) -> float:
    value = 1.0
    for r in log_returns:
        value *= 1.0 + math.expm1(r)
    return value


def reference_annual_return(log_returns: list[float]) -> float:
    """Compound annual growth (empyrical's annual_return): growth ** (252 / days) - 1."""
    return reference_cum_return(log_returns) ** (DAYS_PER_YEAR / len(log_returns)) - 1.0


def reference_annual_volatility(returns: list[float]) -> float:
    return statistics.stdev(returns) * math.sqrt(DAYS_PER_YEAR)


# A fixture worked by hand: +10%, -20%, +5% simple returns.
SIMPLE = [0.10, -0.20, 0.05]
LOG = [math.log1p(x) for x in SIMPLE]


def test_fixture_by_hand():
    assert cum_return(LOG) == pytest.approx(1.10 * 0.80 * 1.05, rel=1e-12)  # 0.924
    assert max_drawdown(LOG) == pytest.approx(0.20, rel=1e-12)  # peak 1.10, trough 0.88
    mean = sum(LOG) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in LOG) / 2)
    assert sharpe_ratio(LOG) == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    # empyrical's convention on the same days: simple returns, another number
    assert sharpe_ratio(SIMPLE) == pytest.approx(empyrical_sharpe(SIMPLE), rel=1e-12)
    assert abs(sharpe_ratio(LOG) - empyrical_sharpe(SIMPLE)) > 0.5


def test_a_first_day_loss_is_a_drawdown_from_the_start():
    """The starting equity is a peak (METHOD.md): -10% on day one is a 10% drawdown."""
    returns = [math.log(0.9), math.log(1.05)]
    assert max_drawdown(returns) == pytest.approx(0.10, rel=1e-12)
    assert max_drawdown(returns) == pytest.approx(reference_drawdown(returns), rel=1e-12)


daily_log_returns = st.lists(
    st.floats(min_value=-0.25, max_value=0.25, allow_nan=False, allow_subnormal=False),
    min_size=2,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(daily_log_returns)
def test_sharpe_in_both_conventions_matches_the_definitions(log_returns):
    assume(statistics.stdev(log_returns) > 1e-6)
    simple = [math.expm1(r) for r in log_returns]
    assert sharpe_ratio(log_returns) == pytest.approx(
        reference_sharpe(log_returns), rel=1e-8, abs=1e-10
    )
    assert sharpe_ratio(simple) == pytest.approx(empyrical_sharpe(simple), rel=1e-8, abs=1e-10)


@settings(max_examples=200, deadline=None)
@given(daily_log_returns)
def test_drawdown_and_cumulative_return_match_the_definitions(log_returns):
    assert max_drawdown(log_returns) == pytest.approx(
        reference_drawdown(log_returns), rel=1e-9, abs=1e-12
    )
    assert cum_return(log_returns) == pytest.approx(
        reference_cum_return(log_returns), rel=1e-9, abs=1e-300
    )


@settings(max_examples=100, deadline=None)
@given(daily_log_returns)
def test_portfolio_figures_match_the_definitions(log_returns):
    import pandas as pd

    series = pd.Series(log_returns, index=pd.bdate_range("2020-01-01", periods=len(log_returns)))
    stats = portfolio_stats(series)
    assert stats.annual_return == pytest.approx(
        reference_annual_return(log_returns), rel=1e-8, abs=1e-12
    )
    assert stats.cum_return == pytest.approx(reference_cum_return(log_returns), rel=1e-9)
    assert stats.max_drawdown == pytest.approx(reference_drawdown(log_returns), abs=1e-12)
    if statistics.stdev(log_returns) > 1e-6:
        # Sharpe * annual volatility = annualised mean daily return (the same daily returns)
        volatility = reference_annual_volatility(log_returns)
        assert stats.sharpe * volatility == pytest.approx(
            statistics.fmean(log_returns) * DAYS_PER_YEAR, rel=1e-8, abs=1e-12
        )

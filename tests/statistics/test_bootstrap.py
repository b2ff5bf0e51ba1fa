"""The vectorised stationary bootstrap against arch's, and interval coverage on AR(1) returns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from pipeline.statistics.bootstrap import (
    block_sums,
    optimal_block_length,
    sharpe_from_sums,
    ticker_intervals,
    ticker_seed,
)


def ar1(rng: np.random.Generator, n: int, phi: float, mu: float, sigma: float) -> np.ndarray:
    shocks = rng.normal(0, sigma, n + 200)
    x = np.zeros(n + 200)
    for t in range(1, n + 200):
        x[t] = phi * x[t - 1] + shocks[t]
    return mu + x[200:]


@pytest.mark.parametrize("block_length", [1.0, 3.5, 20.0])
def test_resampled_means_agree_with_arch_in_distribution(block_length):
    rng = np.random.default_rng(11)
    series = ar1(rng, 600, 0.4, 0.001, 0.01)
    ours = block_sums(series[:, None], block_length, 2000, np.random.default_rng(1))[:, 0] / 600
    theirs = StationaryBootstrap(block_length, series, seed=2).apply(np.mean, 2000).ravel()
    assert ks_2samp(ours, theirs).pvalue > 0.001
    assert ours.std() == pytest.approx(theirs.std(), rel=0.1)
    assert ours.mean() == pytest.approx(theirs.mean(), abs=0.1 * theirs.std())


def test_resampled_sharpe_agrees_with_arch():
    rng = np.random.default_rng(12)
    series = rng.standard_t(4, 1000) * 0.01 + 0.0005
    both = np.column_stack([series, series**2])
    sums = block_sums(both, 2.0, 2000, np.random.default_rng(3))
    ours = sharpe_from_sums(sums[:, 0], sums[:, 1], 1000)
    theirs = (
        StationaryBootstrap(2.0, series, seed=4)
        .apply(lambda x: np.array([x.mean() / x.std(ddof=1) * math.sqrt(252)]), 2000)
        .ravel()
    )
    assert ks_2samp(ours, theirs).pvalue > 0.001


def test_every_resample_has_exactly_t_days():
    rng = np.random.default_rng(0)
    counts = block_sums(np.ones((37, 1)), 5.0, 500, rng)[:, 0]
    assert np.all(counts == 37)


@pytest.mark.slow
def test_coverage_near_nominal_on_ar1_returns_with_known_sharpe():
    """95% intervals of the Sharpe ratio of AR(1) returns (phi 0.3) cover the true value in
    about 95% of samples; an i.i.d. bootstrap would under-cover here."""
    phi, mu, sigma, n = 0.3, 0.0008, 0.01, 1500
    true_sharpe = mu / (sigma / math.sqrt(1 - phi**2)) * math.sqrt(252)
    rng = np.random.default_rng(2024)
    covered, repeats = 0, 150
    for i in range(repeats):
        series = ar1(rng, n, phi, mu, sigma)
        found = ticker_intervals(series, np.zeros(n), n_samples=400, confidence=0.95,
                                 seed=ticker_seed(i, "ar1"))  # fmt: skip
        covered += found.sharpe.low <= true_sharpe <= found.sharpe.high
    assert 0.87 <= covered / repeats <= 0.995


def test_intervals_contain_the_point_estimates_and_are_seeded():
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0005, 0.01, 800)
    correct = rng.random(800) < 0.52
    first = ticker_intervals(returns, correct, n_samples=500, confidence=0.9,
                             seed=ticker_seed(0, "X"))  # fmt: skip
    again = ticker_intervals(returns, correct, n_samples=500, confidence=0.9,
                             seed=ticker_seed(0, "X"))  # fmt: skip
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    assert first == again
    assert first.sharpe.low < sharpe < first.sharpe.high
    assert first.accuracy.low < correct.mean() < first.accuracy.high


@pytest.mark.parametrize(
    "returns",
    [
        pytest.param(np.zeros(50), id="flat"),
        pytest.param(np.full(50, 0.01), id="constant"),
        pytest.param(np.tile([0.01, -0.01], 25), id="alternating"),
    ],
)
def test_degenerate_series_give_finite_intervals(returns):
    found = ticker_intervals(returns, np.ones(50), n_samples=200, confidence=0.95,
                             seed=ticker_seed(0, "D"))  # fmt: skip
    assert math.isfinite(found.sharpe.low) and math.isfinite(found.sharpe.high)
    assert found.accuracy.low == found.accuracy.high == 1.0
    assert 1.0 <= optimal_block_length(returns) <= 50


def test_no_samples_or_a_nan_return_give_no_interval():
    off = ticker_intervals(np.ones(10), np.ones(10), n_samples=0, confidence=0.95,
                           seed=ticker_seed(0, "A"))  # fmt: skip
    broken = ticker_intervals(np.array([0.1, np.nan, 0.2]), np.ones(3), n_samples=10,
                              confidence=0.95, seed=ticker_seed(0, "A"))  # fmt: skip
    assert math.isnan(off.sharpe.low) and math.isnan(broken.accuracy.high)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("block_length", [1.0, 2.5])
def test_every_column_is_summed_over_the_same_resampled_days(width, block_length):
    """Columns share each resample's days: column j = (j + 1) x gives sums (j + 1) times the
    first column's, whatever the pairing of columns inside the resampler."""
    x = np.random.default_rng(3).normal(size=41)
    series = np.column_stack([(j + 1) * x for j in range(width)])
    sums = block_sums(series, block_length, 300, np.random.default_rng(4))
    assert sums.shape == (300, width)
    for j in range(width):
        np.testing.assert_allclose(sums[:, j], (j + 1) * sums[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_length", [1.0, 1.6, 3.0, 40.0])
def test_resampled_days_follow_arch_exactly_in_distribution(block_length):
    """On five days worth 1, 10, 100, 1000, 10000 a resample's sum names how often each day was
    drawn: the frequencies of those outcomes match arch's stationary bootstrap (chi-square)."""
    from scipy.stats import chi2_contingency

    x = 10.0 ** np.arange(5)
    n = 30_000
    ours = block_sums(x[:, None], block_length, n, np.random.default_rng(7))[:, 0].round()
    sampler = StationaryBootstrap(block_length, x, seed=8)
    theirs = np.array([x[sampler.update_indices()].sum() for _ in range(n)]).round()
    outcomes, counts = np.unique(np.concatenate([ours, theirs]), return_counts=True)
    common = outcomes[counts >= 40]  # rare outcomes pooled into one cell
    table = [
        [*(np.sum(sums == value) for value in common), np.sum(~np.isin(sums, common))]
        for sums in (ours, theirs)
    ]
    assert chi2_contingency(np.array(table)).pvalue > 0.001


def _arch_block_length(values: np.ndarray) -> float:
    from arch.bootstrap import optimal_block_length as arch_block_length

    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            length = float(arch_block_length(values)["stationary"].iloc[0])
    except ValueError:  # arch's lags run past a series of 7 days or fewer
        return 1.0
    if not math.isfinite(length):
        return 1.0
    return min(max(length, 1.0), float(len(values)))


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=3000),
    phi=st.floats(min_value=-0.95, max_value=0.95),
    decimals=st.sampled_from([None, 3, 1]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_block_length_is_arch_s_on_random_series(n, phi, decimals, seed):
    """Our Politis-White estimate equals arch's (to rounding) on AR(1) series with fat tails,
    short ones, and rounded ones (ties and constant stretches)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, n) * 0.01
    for t in range(1, n):
        x[t] += phi * x[t - 1]
    if decimals is not None:
        x = np.round(x, decimals)
    expected = _arch_block_length(x) if np.ptp(x) > 0 else 1.0
    assert optimal_block_length(x) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([0.0, 1.0, 0.0], id="three_days"),
        pytest.param([1.0, 2.0, 3.0, 4.0], id="trend"),
        pytest.param(np.tile([0.01, -0.01], 40), id="alternating"),
        pytest.param(np.r_[np.zeros(99), 1.0], id="one_jump"),
        pytest.param(np.sin(np.arange(500) / 5.0), id="smooth_cycle"),
    ],
)
def test_block_length_is_arch_s_on_regular_series(values):
    x = np.asarray(values, dtype=np.float64)
    assert optimal_block_length(x) == pytest.approx(_arch_block_length(x), rel=1e-9)

"""PSR and DSR against the formulas worked by hand, the published example, and a simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from pipeline.statistics.sharpe import (
    ReturnMoments,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    return_moments,
)


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_psr_of_normal_returns_by_hand():
    # SR 0.1 a day, T = 253, g3 = 0, g4 = 3:
    # (0.1 - 0) * sqrt(252) / sqrt(1 - 0 + (3 - 1) / 4 * 0.01) = 1.587451 / 1.002497 = 1.583497
    moments = ReturnMoments(sharpe=0.1, n_days=253, skewness=0.0, kurtosis=3.0)
    assert probabilistic_sharpe(moments) == pytest.approx(phi(1.583497), abs=1e-6)
    assert probabilistic_sharpe(moments) == pytest.approx(0.94335, abs=1e-4)


def test_psr_against_a_benchmark_penalises_negative_skew_and_fat_tails():
    plain = ReturnMoments(0.1, 1000, 0.0, 3.0)
    skewed = ReturnMoments(0.1, 1000, -2.0, 9.0)
    assert probabilistic_sharpe(skewed, 0.05) < probabilistic_sharpe(plain, 0.05)
    # at SR = SR* the probability is one half whatever the moments
    assert probabilistic_sharpe(skewed, 0.1) == pytest.approx(0.5)


def test_sr0_by_hand():
    # N = 10 trials of standard deviation 0.02: Phi^-1(0.9) = 1.281552,
    # Phi^-1(1 - 1 / (10 e)) = Phi^-1(0.963212) = 1.789242 (scipy, checked below)
    trials = [0.02 * z for z in (-1.5, -1, -0.5, 0, 0, 0, 0, 0.5, 1, 1.5)]
    sd = float(np.std(trials, ddof=1))
    assert norm.ppf(1 - 1 / (10 * math.e)) == pytest.approx(1.789242, abs=1e-5)
    gamma = 0.5772156649
    expected = sd * ((1 - gamma) * 1.281552 + gamma * 1.789242)
    assert expected_max_sharpe(trials) == pytest.approx(expected, rel=1e-5)


def test_dsr_reproduces_the_published_worked_example():
    # Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio": annualised SR 2.5 over
    # T = 1,250 days (250 a year), skewness -3, kurtosis 10, N = 100 trials whose annualised
    # Sharpe ratios have variance 0.5: DSR = 0.9004.
    per_day = 2.5 / math.sqrt(250)
    trials = np.random.default_rng(0).normal(size=100)
    trials = (trials - trials.mean()) / trials.std(ddof=1) * math.sqrt(0.5 / 250)
    moments = ReturnMoments(per_day, 1250, -3.0, 10.0)
    assert deflated_sharpe(moments, list(trials)) == pytest.approx(0.9004, abs=5e-4)


def test_one_trial_dsr_is_psr_of_zero():
    moments = ReturnMoments(0.05, 500, 0.1, 4.0)
    assert deflated_sharpe(moments, [0.05]) == probabilistic_sharpe(moments, 0.0)
    assert expected_max_sharpe([0.05]) == 0.0


def test_return_moments_match_textbook_formulas():
    values = np.array([0.01, -0.02, 0.015, 0.0, 0.03, -0.01, 0.005])
    moments = return_moments(values)
    centred = values - values.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    assert moments.sharpe == pytest.approx(values.mean() / values.std(ddof=1))
    assert moments.skewness == pytest.approx(m3 / m2**1.5)
    assert moments.kurtosis == pytest.approx(m4 / m2**2)
    assert moments.n_days == 7


def test_constant_returns_have_zero_sharpe_and_normal_moments():
    assert return_moments(np.full(10, 0.001)) == ReturnMoments(0.0, 10, 0.0, 3.0)
    assert math.isnan(probabilistic_sharpe(ReturnMoments(0.0, 1, 0.0, 3.0)))


def test_dsr_of_the_best_of_many_no_skill_strategies_is_rarely_above_95_percent():
    """100 strategies without skill, 1,000 days each; the best one's DSR over the 100 trials
    exceeds 0.95 about 5% of the time (a false discovery rate near the nominal level), while
    its plain PSR(0) exceeds 0.95 nearly always."""
    rng = np.random.default_rng(42)
    dsr_hits = psr_hits = 0
    repeats = 100
    for _ in range(repeats):
        returns = rng.standard_t(df=5, size=(1000, 100)) * 0.01
        sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
        best = int(np.argmax(sharpes))
        moments = return_moments(returns[:, best])
        dsr_hits += deflated_sharpe(moments, list(sharpes)) > 0.95
        psr_hits += probabilistic_sharpe(moments) > 0.95
    assert dsr_hits / repeats <= 0.12
    assert psr_hits / repeats >= 0.8

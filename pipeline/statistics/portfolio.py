"""The equal-weight portfolio's statistics block of the manifest (CONTRACT.md, "Additions
(v2)"): annualised Sharpe, its bootstrap interval, PSR(0) and DSR over the trials."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from pipeline.backtest.metrics import sharpe_ratio
from pipeline.config import IntervalSettings
from pipeline.statistics.bootstrap import sharpe_interval, ticker_seed
from pipeline.statistics.sharpe import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    return_moments,
)

PORTFOLIO_SEED_NAME = "portfolio"


def finite_days(log_returns: ArrayLike) -> np.ndarray:
    values = np.asarray(log_returns, dtype=np.float64)
    return values[np.isfinite(values)]


def portfolio_statistics(
    log_returns: ArrayLike,
    trial_sharpes: Sequence[float],
    intervals: IntervalSettings,
    suffix: str = "",
) -> dict[str, Any]:
    """portfolio_sharpe (annualised), its interval, psr = PSR(0), dsr over `trial_sharpes`
    (non-annualised, this portfolio's included), n_trials; keys end in `suffix`."""
    values = finite_days(log_returns)
    moments = return_moments(values)
    interval = sharpe_interval(
        values,
        n_samples=intervals.samples,
        confidence=intervals.confidence,
        seed=ticker_seed(intervals.seed, PORTFOLIO_SEED_NAME + suffix),
    )
    block = {
        "portfolio_sharpe": sharpe_ratio(values),
        "portfolio_sharpe_lo": interval.low,
        "portfolio_sharpe_hi": interval.high,
        "psr": probabilistic_sharpe(moments, 0.0),
        "dsr": deflated_sharpe(moments, trial_sharpes),
        "n_trials": max(len(trial_sharpes), 1),
        "sr0": expected_max_sharpe(trial_sharpes),
        "n_days": moments.n_days,
    }
    return {f"{key}{suffix}": _plain(value) for key, value in block.items()}


def _plain(value: float | int) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def baseline_comparison(
    model_sharpe: float | None, baseline_returns: Mapping[str, ArrayLike], suffix: str = ""
) -> dict[str, Any]:
    """The baselines' portfolio Sharpe ratios, the best one and the model's edge over it."""
    sharpes = {name: sharpe_ratio(finite_days(r)) for name, r in baseline_returns.items()}
    if not sharpes:
        return {}
    best = max(sharpes, key=lambda name: sharpes[name])
    edge = None if model_sharpe is None else model_sharpe - sharpes[best]
    return {
        f"baseline_sharpes{suffix}": {name: _plain(v) for name, v in sharpes.items()},
        f"best_baseline{suffix}": best,
        f"best_baseline_sharpe{suffix}": _plain(sharpes[best]),
        f"edge_sharpe{suffix}": None if edge is None else _plain(edge),
    }

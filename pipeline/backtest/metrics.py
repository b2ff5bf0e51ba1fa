"""Performance metrics of one ticker's evaluation rows (METHOD.md, "Positions and returns").

Alignment: arrays passed together hold one value per evaluation row t, in row order.
`positions` / `predictions` hold pos_t in {-1, 0, +1}, taken at the close of day t and held
over day t+1; `targets` hold y_t = sign r_{t+1}; `asset_log_returns` hold r_{t+1}, the asset's
natural-log return of day t+1. Log returns are plain numbers (0.01 is +1.005%), not percent.

Degenerate inputs never raise, and the values are chosen by one rule:
- a share or a mean per day (accuracy, hit_rate, turnover, exposure, majority_rate) is NaN when
  there is no day to take it over (hit_rate: no day with a non-zero position);
- every other figure takes its neutral value: cum_return 1.0 (nothing gained or lost),
  sharpe 0.0 (fewer than 2 values or all values equal), max_drawdown 0.0, p_value 1.0.
A NaN log return is not dropped: it propagates into every figure built from returns, so a
broken row shows up instead of vanishing (a NaN label just counts as a miss). Arrays of
different lengths raise ValueError.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

# scipy.special's binomial tail rather than scipy.stats.binom: scipy.stats costs every run and
# every worker half a second of imports, for one function.
from scipy.special import bdtrc

APPROX_BDAYS_PER_YEAR = 252
BPS_PER_UNIT = 1e4


def _as_1d(name: str, values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"The '{name}' argument must be one-dimensional. Got shape {array.shape}.")
    return array


def _as_aligned(**named: ArrayLike) -> list[NDArray[np.float64]]:
    """The arrays, in the order given, after checking they have one value per row each."""
    arrays = [_as_1d(name, values) for name, values in named.items()]
    (first_name, *names), (first, *rest) = list(named), arrays
    for name, array in zip(names, rest, strict=True):
        if len(array) != len(first):
            raise ValueError(
                f"The '{name}' array must have one value per row of '{first_name}' "
                f"({len(first)} rows). Got {len(array)} instead."
            )
    return arrays


def _mean_or_nan(values: NDArray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _position_changes(positions: ArrayLike) -> NDArray[np.float64]:
    """|pos_t - pos_{t-1}| per row, in units of position; pos_{-1} = 0 (the book starts flat)."""
    return np.abs(np.diff(_as_1d("positions", positions), prepend=0.0))


def strategy_log_returns(positions: ArrayLike, asset_log_returns: ArrayLike) -> NDArray[np.float64]:
    """s_{t+1} = pos_t * r_{t+1}: the strategy's log return of day t+1, one per row t."""
    positions, asset_log_returns = _as_aligned(
        positions=positions, asset_log_returns=asset_log_returns
    )
    return positions * asset_log_returns


def net_log_returns(
    positions: ArrayLike, asset_log_returns: ArrayLike, cost_bps: float
) -> NDArray[np.float64]:
    """s_{t+1} less cost_bps / 10^4 * |pos_t - pos_{t-1}|, one log return per row t.

    Going from long to short (a change of 2) pays twice. The first row pays for entering from
    flat. `cost_bps` is in basis points per unit of position traded and must be >= 0.
    """
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise ValueError(
            f"The 'cost_bps' argument must be a finite number >= 0. Got {cost_bps!r} instead."
        )
    gross = strategy_log_returns(positions, asset_log_returns)
    return gross - cost_bps / BPS_PER_UNIT * _position_changes(positions)


def accuracy(predictions: ArrayLike, targets: ArrayLike) -> float:
    """Share of rows with prediction == target, in [0, 1]; NaN for no rows."""
    predictions, targets = _as_aligned(predictions=predictions, targets=targets)
    return _mean_or_nan(predictions == targets)


def hit_rate(predictions: ArrayLike, targets: ArrayLike) -> float:
    """Accuracy over the rows with a non-zero position only, in [0, 1].

    Flat days neither win nor lose money, so they are left out. NaN when no row holds a position.
    """
    predictions, targets = _as_aligned(predictions=predictions, targets=targets)
    in_market = predictions != 0
    return _mean_or_nan(predictions[in_market] == targets[in_market])


def turnover(positions: ArrayLike) -> float:
    """Mean |pos_t - pos_{t-1}| per row from a flat start, in units of position per day.

    Holding one position throughout gives 1 / n_days (the entry); NaN for no rows.
    """
    return _mean_or_nan(_position_changes(positions))


def exposure(positions: ArrayLike) -> float:
    """Share of rows with a non-zero position, in [0, 1]; NaN for no rows."""
    return _mean_or_nan(_as_1d("positions", positions) != 0)


def majority_rate(targets: ArrayLike) -> float:
    """Share of the most common class among the targets: the accuracy of always guessing it.

    NaN for no rows.
    """
    targets = _as_1d("targets", targets)
    if not len(targets):
        return math.nan
    _, counts = np.unique(targets, return_counts=True)
    return float(counts.max() / len(targets))


def cum_return(log_returns: ArrayLike) -> float:
    """exp(sum of the log returns): the value of 1 invested at the start (1.25 means +25%)."""
    return float(np.exp(np.sum(_as_1d("log_returns", log_returns))))


def sharpe_ratio(log_returns: ArrayLike) -> float:
    """Annualised Sharpe ratio of daily log returns: mean / std (ddof=1) * sqrt(252).

    No risk-free rate. 0.0 when there are fewer than 2 values or all values are equal: the
    exact check matters because the floating-point std of e.g. [0.1, 0.1, 0.1] is 1.7e-17, not 0.
    """
    log_returns = _as_1d("log_returns", log_returns)
    if len(log_returns) < 2 or np.ptp(log_returns) == 0:
        return 0.0
    spread = np.std(log_returns, ddof=1)
    if spread == 0:  # values apart by less than the std can resolve (subnormal differences)
        return 0.0
    return float(np.mean(log_returns) / spread * math.sqrt(APPROX_BDAYS_PER_YEAR))


def max_drawdown(log_returns: ArrayLike) -> float:
    """Largest fall from a running peak, as a positive fraction in [0, 1]: 0.2 means -20%.

    equity = exp(cumsum), with the starting equity of 1 counted as a peak. Computed in log space
    (1 - exp(min log drawdown)), which neither overflows nor loses small drawdowns. 0.0 for none.
    """
    log_equity = np.cumsum(_as_1d("log_returns", log_returns))
    if not len(log_equity):
        return 0.0
    log_peak = np.maximum(np.maximum.accumulate(log_equity), 0.0)
    return float(-np.expm1(np.min(log_equity - log_peak)))


def accuracy_p_value(n_correct: int, n_days: int, null_rate: float) -> float:
    """One-sided binomial test: P(X >= n_correct) for X ~ Binomial(n_days, null_rate).

    Small values mean the accuracy is unlikely under guessing at `null_rate` (e.g. the majority
    rate). 1.0 when n_days == 0: no evidence at all.
    """
    if n_days == 0:
        return 1.0
    if not 0 <= n_correct <= n_days:
        raise ValueError(
            f"The 'n_correct' argument must be in [0, n_days={n_days}]. Got {n_correct} instead."
        )
    if not 0 <= null_rate <= 1:
        raise ValueError(f"The 'null_rate' argument must be in [0, 1]. Got {null_rate} instead.")
    # P(X >= k) = P(X > k - 1); bdtrc(-1, n, p) is 1.
    return float(bdtrc(n_correct - 1, n_days, null_rate))


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted q-values, same shape and order as `p_values`.

    q_(i) = min over j >= i of p_(j) * m / j on the sorted p-values, capped at 1. NaN stays NaN
    and does not count towards m, the number of tests. p-values must lie in [0, 1].
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    tested = ~np.isnan(p_values)
    p_tested = p_values[tested]
    if np.any((p_tested < 0) | (p_tested > 1)):
        raise ValueError(
            f"The 'p_values' must lie in [0, 1]. Got {p_tested.min()}..{p_tested.max()} instead."
        )
    order = np.argsort(p_tested)
    # m / rank >= 1 is formed first so that rounding can never push a q-value below its p-value.
    scaled = p_tested[order] * (len(p_tested) / np.arange(1, len(p_tested) + 1))
    q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q_tested = np.empty_like(p_tested)
    q_tested[order] = q_sorted
    q_values = np.full_like(p_values, np.nan)
    q_values[tested] = q_tested
    return q_values


def summarise(
    predictions: ArrayLike, targets: ArrayLike, asset_log_returns: ArrayLike, cost_bps: float
) -> dict[str, float]:
    """All summary metrics of one ticker's evaluation rows, as plain Python numbers.

    Keys: n_days (int), accuracy, cum_return, cum_return_net, buy_hold, sharpe, max_drawdown,
    hit_rate, turnover, exposure, majority_rate, p_value (accuracy against majority_rate).
    With no rows: n_days 0, cum_return / cum_return_net / buy_hold 1.0, sharpe 0.0,
    max_drawdown 0.0, p_value 1.0, and NaN for the shares (see the module docstring).
    """
    predictions, targets, asset_log_returns = _as_aligned(
        predictions=predictions, targets=targets, asset_log_returns=asset_log_returns
    )
    gross = strategy_log_returns(predictions, asset_log_returns)
    n_days = len(predictions)
    null_rate = majority_rate(targets)
    n_correct = int(np.count_nonzero(predictions == targets))
    return {
        "n_days": n_days,
        "accuracy": accuracy(predictions, targets),
        "cum_return": cum_return(gross),
        "cum_return_net": cum_return(net_log_returns(predictions, asset_log_returns, cost_bps)),
        "buy_hold": cum_return(asset_log_returns),
        "sharpe": sharpe_ratio(gross),
        "max_drawdown": max_drawdown(gross),
        "hit_rate": hit_rate(predictions, targets),
        "turnover": turnover(predictions),
        "exposure": exposure(predictions),
        "majority_rate": null_rate,
        "p_value": accuracy_p_value(n_correct, n_days, null_rate),
    }

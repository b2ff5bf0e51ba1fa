"""Returns, lag-sign features and next-day targets of one ticker (METHOD.md, "Returns, features,
target").

Alignment, with P_t the adjusted close of trading day t = 0..N-1:
- r_t = ln(P_t / P_{t-1}) belongs to day t (t = 1..N-1);
- row t is the decision taken at the close of day t: features (sign r_t, ..., sign r_{t-L+1}),
  target y_t = sign r_{t+1}, and the return r_{t+1} earned by holding a position over day t+1;
- rows run over t = L..N-2, so N prices give N-L-1 rows.

Returns, features and targets never share a column name: the original article's lag-1 feature
overwrote its return column (METHOD.md, bug 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

RETURN_COLUMN = "log_return"
TARGET_COLUMN = "target"
FEATURE_PREFIX = "sign_lag_"


def feature_columns(lags: int) -> list[str]:
    """Names of the lag features: sign_lag_1 is sign r_t, sign_lag_L is sign r_{t-L+1}."""
    return [f"{FEATURE_PREFIX}{lag}" for lag in range(1, lags + 1)]


def log_returns(prices: pd.Series) -> pd.Series:
    """r_t = ln(P_t / P_{t-1}) for t = 1..N-1, indexed by day t (the first day has none)."""
    values = _log_return_values(prices.to_numpy(dtype=np.float64))
    return pd.Series(values, index=prices.index[1:], name=RETURN_COLUMN)


def lag_features(returns: pd.Series, lags: int) -> pd.DataFrame:
    """(sign r_t, ..., sign r_{t-L+1}) as int8, indexed by decision day t.

    `returns` is what `log_returns` gives (day 1..N-1), so the rows are the days t = L..N-1
    whose L lags all exist; the last row has no target yet.
    """
    matrix = _lag_matrix(_signs(returns.to_numpy(dtype=np.float64)), lags)
    index = returns.index[lags - 1 :] if len(matrix) else returns.index[:0]
    return pd.DataFrame(matrix, index=index, columns=feature_columns(lags))


def next_day_target(returns: pd.Series) -> pd.Series:
    """y_t = sign r_{t+1} as int8, indexed by decision day t (days 1..N-2 of `log_returns`)."""
    signs = _signs(returns.to_numpy(dtype=np.float64))
    return pd.Series(signs[1:], index=returns.index[:-1], name=TARGET_COLUMN)


@dataclass(frozen=True, slots=True)
class Design:
    """One ticker's rows t = L..N-2, as plain arrays in row order.

    features: (rows, L) int8 signs, column l = sign r_{t-l}; targets: (rows,) int8 sign r_{t+1};
    next_returns: (rows,) float64 r_{t+1}; decision_dates: day t; holding_dates: day t+1.
    signal_features: (1, L), the as-of day N-1's row (row n: features, no target yet), or
    None when there are fewer than L returns; as_of: day N-1; as_of_price: P_{N-1}.
    """

    features: np.ndarray
    targets: np.ndarray
    next_returns: np.ndarray
    decision_dates: pd.DatetimeIndex
    holding_dates: pd.DatetimeIndex
    signal_features: np.ndarray | None = None
    as_of: pd.Timestamp | None = None
    as_of_price: float | None = None

    @property
    def n_rows(self) -> int:
        return len(self.targets)


def build_design(prices: pd.Series, lags: int) -> Design:
    """Features, targets and next-day returns of every row t = L..N-2 of `prices` (N values)."""
    returns = _log_return_values(prices.to_numpy(dtype=np.float64))
    signs = _signs(returns)
    every_row = _lag_matrix(signs, lags)
    features = every_row[:-1]
    rows = len(features)
    dates = pd.DatetimeIndex(prices.index)
    values = prices.to_numpy(dtype=np.float64)
    return Design(
        features=features,
        targets=signs[lags : lags + rows],
        next_returns=returns[lags : lags + rows],
        decision_dates=dates[lags : lags + rows],
        holding_dates=dates[lags + 1 : lags + 1 + rows],
        signal_features=every_row[-1:] if len(every_row) else None,
        as_of=dates[-1] if len(dates) else None,
        as_of_price=float(values[-1]) if len(values) else None,
    )


def _log_return_values(prices: np.ndarray) -> np.ndarray:
    # The ratio first: doubling every price then leaves each return bit-for-bit unchanged.
    return np.log(prices[1:] / prices[:-1])


def _signs(returns: np.ndarray) -> np.ndarray:
    return np.sign(returns).astype(np.int8)


def _lag_matrix(signs: np.ndarray, lags: int) -> np.ndarray:
    """Row m holds signs[m+L-1], signs[m+L-2], ..., signs[m]: the newest sign first."""
    if lags < 1:
        raise ValueError(f"The 'lags' argument must be an int >= 1. Got {lags!r} instead.")
    if len(signs) < lags:
        return np.empty((0, lags), dtype=np.int8)
    return np.ascontiguousarray(sliding_window_view(signs, lags)[:, ::-1])

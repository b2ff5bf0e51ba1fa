"""An independent, deliberately plain implementation of METHOD.md, to check the pipeline against.

It shares no code with `pipeline.backtest`: pandas shifts instead of array slicing, METHOD.md's
plain `SVC(gamma="auto", tol=1e-6)` fit on every training row (no fast path, no weights), refit
schedules written out as METHOD.md states them. Slow by design; use it on a few tickers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.svm import SVC

TRADING_DAYS = 252


def reference_frame(prices: pd.Series, lags: int) -> pd.DataFrame:
    """Rows t = L..N-2 of METHOD.md: lag-sign features x_t, target y_t and next return r_{t+1}."""
    log_return = np.log(prices / prices.shift(1))
    frame = pd.DataFrame({"r": log_return})
    for lag in range(lags):
        frame[f"sign_lag_{lag + 1}"] = np.sign(log_return.shift(lag))
    frame["next_r"] = log_return.shift(-1)
    frame["y"] = np.sign(frame["next_r"])
    frame["held_on"] = pd.Series(prices.index, index=prices.index).shift(-1)
    return frame.iloc[lags : len(prices) - 1]


def reference_positions(frame: pd.DataFrame, mode: str, **backtest: int | str) -> pd.Series:
    """Predictions of the rows the mode evaluates, indexed like `frame`."""
    features = frame.filter(like="sign_lag_").to_numpy()
    target = frame["y"].to_numpy()
    n_rows = len(frame)
    if mode == "in_sample":
        blocks = [(0, n_rows, 0, n_rows)]
    elif mode == "walk_forward":
        train_days = int(backtest["train_days"])
        every = int(backtest["retrain_every"])
        rolling = backtest.get("window", "expanding") == "rolling"
        blocks = [
            (j - train_days if rolling else 0, j, j, min(j + every, n_rows))
            for j in range(train_days, n_rows, every)
        ]
    else:
        raise ValueError(f"the reference knows in_sample and walk_forward, not {mode!r}")
    predicted = {}
    for fit_from, fit_to, predict_from, predict_to in blocks:
        model = SVC(gamma="auto", tol=1e-6).fit(features[fit_from:fit_to], target[fit_from:fit_to])
        for row, value in zip(
            range(predict_from, predict_to),
            model.predict(features[predict_from:predict_to]),
            strict=True,
        ):
            predicted[row] = value
    rows = sorted(predicted)
    return pd.Series([predicted[r] for r in rows], index=frame.index[rows], name="position")


def reference_summary(frame: pd.DataFrame, positions: pd.Series) -> dict[str, float]:
    """accuracy, n_days, cum_return, buy_hold and sharpe over the evaluated rows."""
    evaluated = frame.loc[positions.index]
    strategy = positions * evaluated["next_r"]
    spread = strategy.std(ddof=1)
    return {
        "n_days": len(evaluated),
        "accuracy": float((positions == evaluated["y"]).mean()),
        "cum_return": float(np.exp(strategy.sum())),
        "buy_hold": float(np.exp(evaluated["next_r"].sum())),
        "sharpe": float(strategy.mean() / spread * np.sqrt(TRADING_DAYS)) if spread else 0.0,
    }


def reference_signal(
    prices: pd.Series, lags: int, mode: str, svc_params: dict | None = None, **backtest: object
) -> dict[str, object]:
    """The next-session position of METHOD.md, "Next-session positions", written out plainly:
    the as-of day's lag signs, predicted by the model the mode uses for row n.

    Returns position, the rows [fit_from, fit_to) the model was fit on, and the as-of day.
    """
    frame = reference_frame(prices, lags)
    n_rows = len(frame)
    log_return = np.log(prices / prices.shift(1))
    as_of_signs = [np.sign(log_return.iloc[-1 - lag]) for lag in range(lags)]
    if mode == "in_sample":
        fit_from, fit_to = 0, n_rows
    elif mode == "holdout":
        fit_from, fit_to = 0, int(n_rows * float(backtest.get("train_fraction", 0.7)))
    elif mode == "walk_forward":
        train_days = int(backtest["train_days"])
        every = int(backtest["retrain_every"])
        refit_at = train_days + every * ((n_rows - train_days) // every)
        rolling = backtest.get("window", "expanding") == "rolling"
        fit_from, fit_to = (refit_at - train_days if rolling else 0), refit_at
    else:
        raise ValueError(f"unknown mode {mode!r}")
    features = frame.filter(like="sign_lag_").to_numpy()[fit_from:fit_to]
    target = frame["y"].to_numpy()[fit_from:fit_to]
    if len(np.unique(target)) == 1:
        position = target[0]
    else:
        model = SVC(**{"gamma": "auto", "tol": 1e-6, **(svc_params or {})}).fit(features, target)
        position = model.predict(np.array([as_of_signs]))[0]
    return {
        "position": int(position),
        "fit_rows": (fit_from, fit_to),
        "as_of": prices.index[-1],
    }

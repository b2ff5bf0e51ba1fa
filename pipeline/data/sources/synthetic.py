"""A built-in synthetic universe: realistic enough to exercise every stage, offline and fast.

Calendar: each ticker's history lies on the `n_days` business days (Monday to Friday, no
holidays) that end on `SYNTHETIC_LAST_DAY`, a fixed date, so the data never depend on today;
`fetch(ticker, start, end)` returns the part of that fixed history inside [start, end], so
fetching a window equals slicing a wider fetch and incremental refreshes line up. About one
ticker in five is listed partway through and starts later.

Each ticker's prices depend only on (seed, ticker, n_days): a numpy Generator is seeded with the
seed and a stable hash of the ticker (not Python's `hash`, which is salted per process), so any
symbol works, not only SYN000... Per ticker, with parameters drawn from that generator:

- innovations: Student-t (4.5 to 7 degrees of freedom) scaled to unit variance: fat tails;
- volatility clustering: a GARCH(1,1)-like variance driven by the squared innovations,
  sigma2[t] = w + a * s2 * z[t-1]**2 + b * sigma2[t-1], linear in z**2 and so computed for all
  days at once with `scipy.signal.lfilter` (a Python loop over days is far too slow for 5,000
  tickers);
- returns: AR(1) around a drift, coefficient 0.04 to 0.10 in size (a third of tickers negative),
  so a model has a little to find; 1-3% of days exactly unchanged, and prices in cents;
- quarterly dividends make `close` (unadjusted) differ from `adj_close` before each ex-date;
- open, high, low around the close and a volume that rises with volatility.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from pipeline.config import SyntheticConfig
from pipeline.data.sources.base import ADJ_CLOSE, PRICE_COLUMNS
from pipeline.data.sources.normalise import local_midnights
from pipeline.errors import NotTradingError

SYNTHETIC_LAST_DAY = date(2021, 12, 31)
# Bump when the generated prices change, so caches keyed by `identity()` are not reused.
GENERATOR_VERSION = 1
LATE_LISTING_SHARE = 0.2
DAYS_PER_QUARTER = 63
MAX_ABS_LOG_RETURN = 0.35
MIN_PRICE = 0.01


class SyntheticSource:
    """Deterministic synthetic daily prices; see the module docstring for the model."""

    name = "synthetic"
    remote = False

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config
        self.calendar = synthetic_calendar(config.n_days)

    def identity(self) -> str:
        seed, n_days = self.config.seed, self.config.n_days
        return f"synthetic:seed={seed},n_days={n_days},v={GENERATOR_VERSION}"

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        history = synthetic_history(ticker, self.config.seed, self.config.n_days)
        first = max(history.first_day, self.calendar.searchsorted(pd.Timestamp(start)))
        stop = self.calendar.searchsorted(pd.Timestamp(end), side="right")
        if first >= stop:
            listed = self.calendar[history.first_day]
            raise NotTradingError(
                f"no synthetic prices for {ticker!r} from {start} to {end}; "
                f"its history runs {listed:%Y-%m-%d}..{SYNTHETIC_LAST_DAY}"
            )
        columns = {name: values[first:stop] for name, values in history.columns.items()}
        return pd.DataFrame(columns, index=self.calendar[first:stop])


@dataclass(frozen=True)
class SyntheticHistory:
    """One ticker's whole history: standard columns over the calendar, listed from `first_day`."""

    first_day: int
    columns: dict[str, np.ndarray]


def synthetic_calendar(n_days: int) -> pd.DatetimeIndex:
    """The `n_days` business days ending on SYNTHETIC_LAST_DAY."""
    return local_midnights(pd.bdate_range(end=SYNTHETIC_LAST_DAY, periods=n_days))


def ticker_key(ticker: str) -> int:
    """A stable 64-bit number for `ticker`, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def synthetic_history(ticker: str, seed: int, n_days: int) -> SyntheticHistory:
    rng = np.random.default_rng([seed, ticker_key(ticker)])
    late, listing_share = rng.random() < LATE_LISTING_SHARE, rng.uniform(0.1, 0.75)
    first_day = int(listing_share * n_days) if late else 0
    log_returns, volatility = simulate_log_returns(rng, n_days)
    close, adj_close = price_paths(rng, log_returns)
    columns = {**bars_around(rng, close, volatility), ADJ_CLOSE: adj_close}
    ordered = {name: columns[name] for name in PRICE_COLUMNS if name in columns}
    return SyntheticHistory(first_day, ordered)


def simulate_log_returns(rng: np.random.Generator, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily log returns (the first is 0) and each day's volatility."""
    mean_vol = rng.uniform(0.01, 0.025)
    drift = rng.uniform(-0.0002, 0.0006)
    ar = rng.uniform(0.04, 0.10) * (-1.0 if rng.random() < 1 / 3 else 1.0)
    dof = rng.uniform(4.5, 7.0)
    alpha = rng.uniform(0.05, 0.12)
    beta = rng.uniform(0.95, 0.99) - alpha
    zero_share = rng.uniform(0.01, 0.03)

    shocks = rng.standard_t(dof, n_days) / np.sqrt(dof / (dof - 2.0))
    # sigma2[t] - s2 = b * (sigma2[t-1] - s2) + a * s2 * (z[t-1]**2 - 1), starting at s2.
    excess = lfilter([0.0, alpha * mean_vol**2], [1.0, -beta], shocks**2 - 1.0)
    volatility = np.sqrt(mean_vol**2 + excess)
    returns = drift + lfilter([1.0], [1.0, -ar], volatility * shocks)
    returns[rng.random(n_days) < zero_share] = 0.0
    returns[0] = 0.0
    return np.clip(returns, -MAX_ABS_LOG_RETURN, MAX_ABS_LOG_RETURN), volatility


def price_paths(rng: np.random.Generator, log_returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(close, adj_close): the close in cents; adj_close = close times the dividend factor."""
    n_days = len(log_returns)
    start_price = np.exp(rng.uniform(np.log(15.0), np.log(250.0)))
    dividend_yield = rng.uniform(0.0, 0.01)  # per quarter
    ex_dates = np.zeros(n_days, dtype=bool)
    ex_dates[rng.integers(1, DAYS_PER_QUARTER + 1) :: DAYS_PER_QUARTER] = True
    # An ex-date lowers every earlier adjusted price by (1 - yield).
    later_ex_dates = ex_dates.sum() - np.cumsum(ex_dates)
    factor = (1.0 - dividend_yield) ** later_ex_dates
    adjusted = start_price * np.exp(np.cumsum(log_returns))
    close = np.maximum(np.round(adjusted / factor, 2), MIN_PRICE)
    return close, close * factor


def bars_around(
    rng: np.random.Generator, close: np.ndarray, volatility: np.ndarray
) -> dict[str, np.ndarray]:
    """Plausible open, high, low (in cents, low <= open, close <= high), close and volume."""
    n_days = len(close)
    previous = np.concatenate(([close[0]], close[:-1]))
    open_ = np.round(previous * np.exp(0.3 * volatility * rng.standard_normal(n_days)), 2)
    wick_up, wick_down = np.abs(0.5 * volatility * rng.standard_normal((2, n_days)))
    high = np.round(np.maximum(open_, close) * np.exp(wick_up), 2)
    low = np.round(np.minimum(open_, close) * np.exp(-wick_down), 2)
    typical_volume = np.exp(rng.uniform(np.log(2e5), np.log(2e7)))
    noise = np.exp(0.25 * rng.standard_normal(n_days))
    volume = np.round(typical_volume * volatility / volatility.mean() * noise)
    return {
        "open": np.maximum(open_, MIN_PRICE),
        "high": np.maximum(high, MIN_PRICE),
        "low": np.maximum(low, MIN_PRICE),
        "close": close,
        "volume": volume,
    }

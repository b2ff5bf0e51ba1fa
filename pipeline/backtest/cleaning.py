"""Make one ticker's adjusted closes safe to backtest, saying what was changed.

What can be repaired without inventing prices is repaired, each with a warning for the report:
rows with a missing date or a missing or infinite price are dropped, a date given twice keeps
its last price, dates out of order are sorted. A zero or negative price cannot be repaired (its
log return does not exist, and dropping it would hide a broken source): DataError.

The rules of which rows carry a price and which dates repeat are this module's
(`unusable_rows`, `repeated_dates`); the sources apply the same ones when they build their
standard frames (`pipeline.data.sources.normalise`), but refuse a repeated date there, since
which of a provider's two rows is right cannot be known. The cache only checks that a frame has
the standard shape (`pipeline.data.cache.normalize_price_frame`): it repairs nothing.

Provider errors in prices that are well formed (a one-day jump that reverts, unit errors, bad
splits, stale prices, gaps) are found once, in the data stage, by `pipeline.data.quality`, from
every column the source has; this module only makes the adjusted closes usable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import DataError


@dataclass(frozen=True, slots=True)
class CleanPrices:
    """float64 prices on a strictly increasing DatetimeIndex, and what cleaning changed."""

    prices: pd.Series
    warnings: tuple[str, ...]


def clean_prices(prices: pd.Series) -> CleanPrices:
    """`prices` made finite, positive, unique per date and sorted; the input is not changed."""
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise DataError(
            f"prices must be indexed by date (a DatetimeIndex); got {type(prices.index).__name__}"
        )
    try:
        values = prices.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"prices are not numbers: {exc}") from None
    warnings: list[str] = []
    values = _drop_missing(values, warnings)
    _require_positive(values)
    values = _drop_duplicate_dates(values, warnings)
    values = _sort_dates(values, warnings)
    return CleanPrices(values, tuple(warnings))


def unusable_rows(values: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """True for each row without a date or without a finite price: the one rule of which rows
    carry a price, for the sources' standard frames as for the backtest's series."""
    return ~np.isfinite(np.asarray(values, dtype=np.float64)) | np.asarray(dates.isna())


def repeated_dates(dates: pd.DatetimeIndex) -> np.ndarray:
    """True for each row whose date comes again later (every occurrence but the last)."""
    return dates.duplicated(keep="last")


def _drop_missing(prices: pd.Series, warnings: list[str]) -> pd.Series:
    bad = unusable_rows(prices.to_numpy(), prices.index)
    if not bad.any():
        return prices
    warnings.append(
        f"dropped {int(bad.sum())} rows with a missing date or a missing or infinite price"
        f"{_first_date(prices.index[bad])}"
    )
    return prices[~bad]


def _require_positive(prices: pd.Series) -> None:
    bad = prices.to_numpy() <= 0
    if bad.any():
        first = prices[bad]
        raise DataError(
            f"{int(bad.sum())} prices are zero or negative (first {first.index[0].date()}: "
            f"{first.iloc[0]}); log returns need positive prices"
        )


def _drop_duplicate_dates(prices: pd.Series, warnings: list[str]) -> pd.Series:
    if prices.index.is_unique:
        return prices
    repeated = repeated_dates(prices.index)
    warnings.append(
        f"dropped {int(repeated.sum())} repeated dates, keeping the last price of each"
        f"{_first_date(prices.index[repeated])}"
    )
    return prices[~repeated]


def _sort_dates(prices: pd.Series, warnings: list[str]) -> pd.Series:
    if prices.index.is_monotonic_increasing:
        return prices
    warnings.append("dates were out of order; sorted them")
    return prices.sort_index(kind="stable")


def _first_date(dates: pd.DatetimeIndex) -> str:
    known = dates.dropna()
    return f" (first {known.min().date()})" if len(known) else ""

"""Helpers every source uses to bring its provider's rows into the standard price frame.

The standard shape is described in `base`: a tz-naive midnight `DatetimeIndex` named "date",
strictly increasing, with `adj_close` and whichever of open/high/low/close/volume the provider has,
all float64. The index resolution is nanoseconds, as `base.empty_price_frame` has it, so frames
from every source compare equal whatever resolution their provider parsed dates at.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.backtest.cleaning import repeated_dates, unusable_rows
from pipeline.data.sources.base import ADJ_CLOSE, DATA_NOTES, INDEX_NAME, PRICE_COLUMNS
from pipeline.errors import DataError

INDEX_UNIT = "ns"


def local_midnights(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Each timestamp's calendar date at midnight, tz-naive, without a `freq`.

    A tz-aware timestamp keeps the date it has in its own zone (an exchange's local date):
    dropping the zone keeps the wall time, so 2020-03-09 00:00 America/New_York stays 2020-03-09,
    and 2020-03-09 00:00 Asia/Tokyo does not become 2020-03-08 as converting to UTC would make it.
    """
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    if not at_midnight(dates):  # most files have dates only: nothing to normalize
        dates = dates.normalize()
    # normalize() infers a freq (BusinessDay, say) from the data; frames from every source
    # should compare equal whatever their dates happen to be, so none has one.
    midnights = pd.DatetimeIndex(dates, freq=None, name=INDEX_NAME)
    return midnights.as_unit(INDEX_UNIT)


def at_midnight(index: pd.DatetimeIndex) -> bool:
    """Whether every date of a tz-naive `index` is at midnight (NaT is not).

    The same answer as `(index == index.normalize()).all()`, from the integer ticks: a frame
    is checked several times on its way into the cache, and normalizing 20 years of dates took
    half a millisecond each time, most of the check."""
    ticks_per_day = np.timedelta64(1, "D").astype(f"m8[{index.unit}]").astype(np.int64)
    return bool(np.all(index.asi8 % ticks_per_day == 0))


def price_frame(
    dates: pd.DatetimeIndex, columns: Mapping[str, object], origin: str
) -> pd.DataFrame:
    """The standard frame from `dates` and the standard columns found in a provider's rows.

    `columns` maps standard names (`adj_close` required) to values aligned with `dates` by
    position. Values that are not numbers or not finite become missing; rows without a date or an
    adjusted close are dropped; rows are sorted by date. Both repairs are noted in
    `frame.attrs[DATA_NOTES]`, except sorting a file written newest first, which is a layout,
    not a flaw. Two rows on one day raise DataError naming `origin` (the file or provider),
    since which of them is right cannot be known.
    """
    data = {name: _as_float(columns[name]) for name in PRICE_COLUMNS if name in columns}
    if "split" in data:
        # Yahoo writes 0 on days without a split, Alpha Vantage 1: the standard frame says 1.
        splits = data["split"]
        data["split"] = np.where(np.isfinite(splits) & (splits > 0), splits, 1.0)
    if "dividend" in data:
        data["dividend"] = np.nan_to_num(data["dividend"], nan=0.0)
    frame = pd.DataFrame(data, index=local_midnights(pd.DatetimeIndex(dates)))
    priced = ~unusable_rows(frame[ADJ_CLOSE].to_numpy(), frame.index)
    notes = [*_dropped_note(frame.index[~priced], origin), *_shuffled_note(frame.index, origin)]
    frame = frame[priced].sort_index()
    duplicated = repeated_dates(frame.index)
    if duplicated.any():
        first = frame.index[duplicated][0]
        raise DataError(
            f"{origin}: {int(duplicated.sum())} duplicate date(s), first {first:%Y-%m-%d}; "
            "expected one row per trading day"
        )
    frame.attrs[DATA_NOTES] = tuple(notes)
    return frame


def _dropped_note(dropped: pd.DatetimeIndex, origin: str) -> list[str]:
    if dropped.empty:
        return []
    dated = dropped.dropna()
    first = f" (first {dated.min():%Y-%m-%d})" if len(dated) else ""
    count = len(dropped)
    return [f"{origin}: dropped {count} rows without a date or a finite adjusted close{first}"]


def _shuffled_note(dates: pd.DatetimeIndex, origin: str) -> list[str]:
    dates = dates.dropna()
    if dates.is_monotonic_increasing or dates.is_monotonic_decreasing:
        return []
    return [f"{origin}: dates were out of order; sorted them"]


def describe_span(frame: pd.DataFrame) -> str:
    """'2020-01-02..2020-12-31 (252 rows)' or 'no rows', for error messages."""
    if frame.empty:
        return "no rows"
    return f"{frame.index[0]:%Y-%m-%d}..{frame.index[-1]:%Y-%m-%d} ({len(frame)} rows)"


def _as_float(values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "biuf":  # numbers already (a parsed file's columns): no parsing
        array = array.astype(np.float64, copy=False)  # np.where below makes the copy
    else:
        numbers = pd.to_numeric(pd.Series(array), errors="coerce")
        array = numbers.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(array), array, np.nan)

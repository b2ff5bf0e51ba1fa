"""The helpers that bring a provider's rows into the standard frame: their shortcuts give what
the plain definitions give."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.data.sources.base import INDEX_NAME
from pipeline.data.sources.normalise import _as_float, at_midnight, local_midnights, price_frame

STAMPS = st.lists(
    st.one_of(
        st.none(),
        st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 12, 31)),
        st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 12, 31)).map(
            lambda day: datetime(day.year, day.month, day.day)
        ),
    ),
    max_size=8,
)
UNITS = st.sampled_from(["s", "ms", "us", "ns"])


def _index(stamps: list[datetime | None], unit: str) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(stamps, dtype="M8[ns]")
    return index.as_unit(unit) if unit != "ns" else index  # finer times are cut, as pandas does


@given(STAMPS, UNITS)
def test_the_midnight_check_is_normalize_s(stamps, unit) -> None:
    """`at_midnight` answers as `(index == index.normalize()).all()` does, in every unit, before
    1970 and with missing dates."""
    index = _index(stamps, unit)
    assert at_midnight(index) == bool((index == index.normalize()).all())


@given(STAMPS, UNITS, st.sampled_from([None, "UTC", "America/New_York", "Asia/Tokyo"]))
def test_local_midnights_are_the_normalized_local_dates(stamps, unit, zone) -> None:
    """Midnights stay as they are and other times are normalized: the result is always the
    zone's local dates normalized, tz-naive, in nanoseconds, named "date", without a freq."""
    index = _index(stamps, unit)
    if zone is not None:
        index = index.tz_localize("UTC").tz_convert(zone)
    expected = index.tz_localize(None) if zone is not None else index
    expected = pd.DatetimeIndex(expected.normalize(), freq=None, name=INDEX_NAME).as_unit("ns")

    found = local_midnights(index)

    pd.testing.assert_index_equal(found, expected, exact=True)
    assert found.freq is None


def test_local_midnights_drop_a_frequency_the_dates_came_with() -> None:
    days = pd.bdate_range("2020-01-01", periods=30)
    assert days.freq is not None

    assert local_midnights(days).freq is None
    assert local_midnights(days + pd.Timedelta(hours=16)).freq is None


NUMBERS = st.one_of(
    arrays(np.float64, st.integers(0, 20), elements=st.floats(allow_nan=True, allow_infinity=True)),
    arrays(np.float32, st.integers(0, 20), elements=st.floats(width=32)),
    arrays(np.int64, st.integers(0, 20)),
    arrays(np.uint64, st.integers(0, 20)),
    arrays(np.int8, st.integers(0, 20)),
    arrays(np.bool_, st.integers(0, 20)),
)


def _parsed_as_numbers(values: object) -> np.ndarray:
    """The plain definition: every value through `pd.to_numeric`, non-finite ones missing."""
    numbers = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce")
    array = numbers.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(array), array, np.nan)


@given(NUMBERS)
def test_numeric_columns_become_what_parsing_them_gives(values) -> None:
    found = _as_float(values)

    assert found.dtype == np.float64
    np.testing.assert_array_equal(found, _parsed_as_numbers(values))
    assert found is not values


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(allow_nan=True)))
def test_a_float_column_gives_the_frame_its_text_gives(values) -> None:
    """A file's column read as numbers and the same column read as text (repr round-trips a
    float64) make the same frame."""
    dates = pd.DatetimeIndex(pd.bdate_range("2021-01-04", periods=len(values)))
    as_text = pd.Series([repr(float(v)) for v in values], dtype=object)

    numeric = price_frame(dates, {"adj_close": values, "close": values}, "a.csv")
    textual = price_frame(dates, {"adj_close": as_text, "close": as_text}, "a.csv")

    pd.testing.assert_frame_equal(numeric, textual)
    assert numeric.attrs == textual.attrs


def test_columns_the_caller_keeps_are_not_changed() -> None:
    values = np.array([1.0, np.inf, 3.0])
    price_frame(pd.bdate_range("2021-01-04", periods=3), {"adj_close": values}, "a.csv")
    np.testing.assert_array_equal(values, [1.0, np.inf, 3.0])

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.cleaning import clean_prices
from pipeline.errors import DataError


def _series(values: list[float], dates: list[str]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(dates, name="date"), name="adj_close")


DAYS = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]


def test_clean_prices_pass_unchanged_without_warnings() -> None:
    prices = _series([1.0, 2.0, 3.0, 4.0], DAYS)
    cleaned = clean_prices(prices)
    pd.testing.assert_series_equal(cleaned.prices, prices)
    assert cleaned.warnings == ()


@pytest.mark.parametrize(
    ("values", "dates", "kept", "warning"),
    [
        (
            [1.0, np.nan, 3.0, np.inf],
            DAYS,
            [1.0, 3.0],
            r"dropped 2 rows with a missing date or a missing or infinite price "
            r"\(first 2020-01-03\)",
        ),
        (
            [1.0, 2.0, 3.0, 4.0],
            ["2020-01-02", None, "2020-01-06", "2020-01-07"],
            [1.0, 3.0, 4.0],
            r"dropped 1 rows with a missing date",
        ),
        (
            [1.0, 2.0, 5.0, 4.0],
            ["2020-01-02", "2020-01-03", "2020-01-03", "2020-01-07"],
            [1.0, 5.0, 4.0],
            r"dropped 1 repeated dates, keeping the last price of each \(first 2020-01-03\)",
        ),
        (
            [3.0, 1.0, 2.0, 4.0],
            ["2020-01-06", "2020-01-02", "2020-01-03", "2020-01-07"],
            [1.0, 2.0, 3.0, 4.0],
            r"dates were out of order; sorted them",
        ),
    ],
    ids=["nan-and-inf", "missing-date", "duplicate-date", "unsorted"],
)
def test_repairs_are_made_and_reported(
    values: list[float], dates: list, kept: list[float], warning: str
) -> None:
    prices = _series(values, dates)
    before = prices.copy()
    cleaned = clean_prices(prices)
    assert cleaned.prices.tolist() == kept
    assert cleaned.prices.index.is_monotonic_increasing and cleaned.prices.index.is_unique
    assert len(cleaned.warnings) == 1
    assert re.search(warning, cleaned.warnings[0])
    pd.testing.assert_series_equal(prices, before)


def test_every_problem_at_once_is_repaired_in_order() -> None:
    prices = _series(
        [2.0, np.nan, 1.0, 9.0, 3.0],
        ["2020-01-03", "2020-01-06", "2020-01-02", "2020-01-07", "2020-01-07"],
    )
    cleaned = clean_prices(prices)
    assert cleaned.prices.tolist() == [1.0, 2.0, 3.0]
    assert len(cleaned.warnings) == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 0.0, 3.0, 4.0], r"1 prices are zero or negative \(first 2020-01-03: 0.0\)"),
        ([1.0, 2.0, -3.0, -4.0], r"2 prices are zero or negative \(first 2020-01-06: -3.0\)"),
    ],
    ids=["zero", "negative"],
)
def test_non_positive_prices_cannot_be_cleaned(values: list[float], message: str) -> None:
    with pytest.raises(DataError, match=message):
        clean_prices(_series(values, DAYS))


def test_prices_must_be_indexed_by_date() -> None:
    with pytest.raises(DataError, match=r"indexed by date.*got RangeIndex"):
        clean_prices(pd.Series([1.0, 2.0]))


def test_prices_must_be_numbers() -> None:
    with pytest.raises(DataError, match="prices are not numbers"):
        clean_prices(_series(["1.0", "x", "3", "4"], DAYS))


@pytest.mark.parametrize("seed", range(20))
def test_the_sources_and_the_backtest_keep_the_same_rows(seed: int) -> None:
    """One rule of which rows carry a price: a source's standard frame and the backtest's
    cleaning keep the same rows, in the same order, of the same shuffled, holed input."""
    from pipeline.data.sources.normalise import price_frame

    rng = np.random.default_rng(seed)
    n = 40
    dates = pd.bdate_range("2020-01-01", periods=n).to_series().sample(frac=1, random_state=seed)
    values = 10.0 + rng.random(n)
    holes = rng.random(n)
    values[holes < 0.1] = np.nan
    values[(holes >= 0.1) & (holes < 0.15)] = np.inf
    index = pd.DatetimeIndex(dates.to_numpy())
    index = index.where(rng.random(n) > 0.05)  # some rows without a date
    frame = price_frame(index, {"adj_close": values}, "test.csv")
    cleaned = clean_prices(pd.Series(values, index=index, name="adj_close"))
    assert frame.index.equals(pd.DatetimeIndex(cleaned.prices.index).as_unit("ns"))
    np.testing.assert_array_equal(frame["adj_close"].to_numpy(), cleaned.prices.to_numpy())

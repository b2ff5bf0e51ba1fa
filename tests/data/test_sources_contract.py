"""Every source returns the one frame shape of `base.PriceSource`, for the same request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import SyntheticConfig
from pipeline.data.sources.base import ADJ_CLOSE, PRICE_COLUMNS, PriceSource
from pipeline.data.sources.csv_source import CsvSource
from pipeline.data.sources.synthetic import SyntheticSource
from pipeline.data.sources.yahoo import YahooSource
from tests.data.fakes import FakeYahoo, yahoo_history_frame

START, END = date(2021, 3, 1), date(2021, 3, 31)
# Weekdays of March 2021 and two days either side, out of order for the csv file.
DAYS = [day.date().isoformat() for day in pd.bdate_range("2021-02-26", "2021-04-02")][::-1]


def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PriceSource:
    return SyntheticSource(SyntheticConfig(seed=1))


def csv_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PriceSource:
    rows = [f"{day},{10 + i},{5 + i},{1000 * i}" for i, day in enumerate(DAYS)]
    (tmp_path / "SYN001.csv").write_text("\n".join(["Date,Close,Adj Close,Volume", *rows]))
    return CsvSource(tmp_path)


def yahoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PriceSource:
    fake = FakeYahoo()
    closes = [10.0 + i for i in range(len(DAYS))]
    fake.answer("SYN001", yahoo_history_frame(sorted(DAYS), closes, [c / 2 for c in closes]))
    fake.install(monkeypatch)
    return YahooSource()


@pytest.mark.parametrize("make", [synthetic, csv_files, yahoo], ids=["synthetic", "csv", "yahoo"])
def test_every_source_returns_the_standard_frame(
    make: Callable[[Path, pytest.MonkeyPatch], PriceSource],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prices = make(tmp_path, monkeypatch).fetch("SYN001", START, END)
    index = prices.index
    assert isinstance(index, pd.DatetimeIndex) and index.name == "date"
    assert index.tz is None and index.dtype == "datetime64[ns]" and index.freq is None
    assert (index == index.normalize()).all()
    assert index.is_monotonic_increasing and index.is_unique
    assert index[0] == pd.Timestamp("2021-03-01") and index[-1] == pd.Timestamp("2021-03-31")
    assert len(index) == 23
    assert ADJ_CLOSE in prices.columns
    assert list(prices.columns) == [name for name in PRICE_COLUMNS if name in prices.columns]
    assert (prices.dtypes == "float64").all()
    assert prices[ADJ_CLOSE].notna().all()

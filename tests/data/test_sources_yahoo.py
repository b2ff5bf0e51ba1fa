"""YahooSource against a fake at the yfinance boundary (tests/data/fakes.py); never the network."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import requests
from curl_cffi.requests import exceptions as curl_exceptions
from hypothesis import given
from hypothesis import strategies as st
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

from pipeline.data.sources.yahoo import YahooSource, source_error, yahoo_price_frame
from pipeline.errors import (
    ConnectionFailedError,
    DataError,
    NotTradingError,
    RateLimitedError,
    SourceError,
    TransientSourceError,
    UnknownSymbolError,
)
from tests.data.fakes import (
    NEW_YORK,
    FakeResponse,
    FakeYahoo,
    yahoo_download_frame,
    yahoo_history_frame,
)

# Around both daylight-saving changes of 2020 in New York (March 8, November 1).
DAYS = ["2020-03-05", "2020-03-06", "2020-03-09", "2020-10-30", "2020-11-02"]
CLOSE = [10.0, 11.0, 12.0, 13.0, 14.0]
ADJ = [5.0, 5.5, 6.0, 6.5, 7.0]
START, END = date(2020, 3, 1), date(2020, 11, 30)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeYahoo:
    fake = FakeYahoo()
    fake.install(monkeypatch)
    return fake


def as_dates(days: list[str]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days, name="date").as_unit("ns")


def test_adj_close_is_yahoos_adj_close_and_close_stays_unadjusted(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    prices = YahooSource().fetch("KO", START, END)
    assert prices["adj_close"].tolist() == ADJ
    assert prices["close"].tolist() == CLOSE
    assert list(prices.columns) == [
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
        "dividend",
        "split",
    ]
    assert prices["split"].tolist() == [1.0] * 5  # Yahoo's 0 means no split
    assert (prices.dtypes == "float64").all()


def test_auto_adjusted_frame_uses_its_close_as_adj_close(fake: FakeYahoo) -> None:
    frame = yahoo_history_frame(DAYS, CLOSE, ADJ, auto_adjust=True)
    assert "Adj Close" not in frame.columns  # the shape auto_adjust=True really has
    fake.answer("KO", frame)
    prices = YahooSource().fetch("KO", START, END)
    assert prices["adj_close"].tolist() == ADJ
    assert prices["close"].tolist() == ADJ


def test_dates_are_the_exchanges_local_dates_tz_naive_at_midnight(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    prices = YahooSource().fetch("KO", START, END)
    pd.testing.assert_index_equal(prices.index, as_dates(DAYS))


@given(
    days=st.sets(st.dates(date(1990, 1, 1), date(2035, 12, 31)), min_size=1, max_size=30),
    tz=st.sampled_from(["America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]),
)
def test_no_day_shifts_in_any_time_zone(days: set[date], tz: str) -> None:
    ordered = sorted(day.isoformat() for day in days)
    frame = yahoo_history_frame(ordered, np.linspace(1.0, 2.0, len(ordered)), tz=tz)
    pd.testing.assert_index_equal(yahoo_price_frame(frame, "X").index, as_dates(ordered))


def test_share_classes_are_requested_with_a_dash_and_returned_as_asked(fake: FakeYahoo) -> None:
    fake.answer("BRK-B", yahoo_history_frame(DAYS, CLOSE, ADJ))
    prices = YahooSource().fetch("BRK.B", START, END)
    assert [call.symbol for call in fake.calls] == ["BRK-B"]
    assert prices["adj_close"].tolist() == ADJ


def test_request_asks_daily_unadjusted_rows_to_the_day_after_end(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    YahooSource(timeout_seconds=7.5).fetch("KO", date(2020, 3, 5), date(2020, 11, 2))
    assert fake.calls[0].kwargs == {
        "start": "2020-03-05",
        "end": "2020-11-03",
        "interval": "1d",
        "auto_adjust": False,
        "actions": True,
        "repair": True,
        "timeout": 7.5,
    }


def test_rows_outside_the_range_are_dropped(fake: FakeYahoo) -> None:
    # Yahoo sometimes appends today's live row past the requested end.
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    prices = YahooSource().fetch("KO", date(2020, 3, 6), date(2020, 10, 30))
    pd.testing.assert_index_equal(prices.index, as_dates(DAYS[1:4]))


def test_rows_without_an_adjusted_close_are_dropped(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, [5.0, np.nan, 6.0, 6.5, np.nan]))
    prices = YahooSource().fetch("KO", START, END)
    assert prices["adj_close"].tolist() == [5.0, 6.0, 6.5]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(yahoo_history_frame([], []), id="empty-frame"),
        pytest.param(yahoo_history_frame(DAYS, CLOSE, [np.nan] * 5), id="no-adjusted-close"),
        pytest.param(YFPricesMissingError("ZZZZ", "(1d 2020-03-01 -> 2020-12-01)"), id="missing"),
        pytest.param(YFTzMissingError("ZZZZ"), id="no-time-zone"),
    ],
)
def test_no_prices_is_a_data_error_naming_the_ticker(
    fake: FakeYahoo, answer: pd.DataFrame | Exception
) -> None:
    fake.answer("ZZZZ", answer)
    with pytest.raises(DataError, match=r"no prices from Yahoo for 'ZZZZ' from 2020-03-01"):
        YahooSource().fetch("ZZZZ", START, END)


def test_an_unknown_symbol_is_a_data_error_not_a_retry(fake: FakeYahoo) -> None:
    with pytest.raises(DataError, match=r"'BF.X' \(asked as 'BF-X'\).*delisted"):
        YahooSource().fetch("BF.X", START, END)


def test_a_rate_limit_is_rate_limited(fake: FakeYahoo) -> None:
    fake.answer("KO", YFRateLimitError())
    with pytest.raises(RateLimitedError, match="'KO'"):
        YahooSource().fetch("KO", START, END)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(curl_exceptions.ConnectionError("refused"), id="curl-connection"),
        pytest.param(curl_exceptions.Timeout("timed out"), id="curl-timeout"),
        pytest.param(curl_exceptions.HTTPError("502 Bad Gateway"), id="curl-http"),
        pytest.param(requests.ConnectionError("reset"), id="requests-connection"),
        pytest.param(requests.ReadTimeout("read timed out"), id="requests-timeout"),
        pytest.param(TimeoutError(), id="timeout"),
        pytest.param(ConnectionResetError(), id="connection-reset"),
    ],
)
def test_network_errors_are_transient(fake: FakeYahoo, error: Exception) -> None:
    # The fake hides errors unless the source switches yfinance's hide_exceptions off,
    # as yfinance would: without the switch this would be an empty frame, a DataError.
    fake.answer("KO", error)
    with pytest.raises(TransientSourceError, match=type(error).__name__) as raised:
        YahooSource().fetch("KO", START, END)
    assert not isinstance(raised.value, RateLimitedError)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, UnknownSymbolError),  # how yfinance's time-zone lookup meets an unknown symbol
        (429, RateLimitedError),
        (401, TransientSourceError),  # a stale cookie, not this symbol's fault
        (503, TransientSourceError),
    ],
)
def test_http_errors_are_judged_by_their_status(status: int, expected: type[SourceError]) -> None:
    error = curl_exceptions.HTTPError(f"HTTP Error {status}", 0, FakeResponse(status, ""))
    assert type(source_error(error, "KO", START, END)) is expected


def test_identity_and_name() -> None:
    assert YahooSource().name == "yfinance"
    assert YahooSource(timeout_seconds=3).identity() == "yfinance"


# yf.download shapes, read by the same normaliser.


def two_tickers() -> dict[str, pd.DataFrame]:
    return {
        "A": yahoo_history_frame(DAYS[:3], CLOSE[:3], ADJ[:3]),
        "AAPL": yahoo_history_frame(DAYS[1:], [100.0] * 4, [90.0] * 4),
    }


@pytest.mark.parametrize("group_by", ["column", "ticker"])
@pytest.mark.parametrize("ignore_tz", [True, False], ids=["tz-naive", "tz-aware"])
def test_download_frames_select_the_exact_ticker(group_by: str, ignore_tz: bool) -> None:
    raw = yahoo_download_frame(two_tickers(), group_by=group_by, ignore_tz=ignore_tz)
    expected_levels = ["Price", "Ticker"] if group_by == "column" else ["Ticker", "Price"]
    assert list(raw.columns.names) == expected_levels
    prices = yahoo_price_frame(raw, "A")
    pd.testing.assert_index_equal(prices.index, as_dates(DAYS[:3]))
    assert prices["adj_close"].tolist() == ADJ[:3]
    assert prices["close"].tolist() == CLOSE[:3]


def test_download_frame_without_adj_close_uses_close() -> None:
    frames = {"KO": yahoo_history_frame(DAYS, CLOSE, ADJ, auto_adjust=True)}
    prices = yahoo_price_frame(yahoo_download_frame(frames), "KO")
    assert prices["adj_close"].tolist() == ADJ


def test_download_frame_without_the_ticker_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"no columns for 'AA', only for: A, AAPL"):
        yahoo_price_frame(yahoo_download_frame(two_tickers()), "AA")


def test_a_frame_without_prices_is_a_data_error() -> None:
    frame = yahoo_history_frame(DAYS, CLOSE, ADJ).drop(columns=["Close", "Adj Close"])
    with pytest.raises(DataError, match="no 'Adj Close' or 'Close'"):
        yahoo_price_frame(frame, "KO")


def test_repair_can_be_switched_off(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    prices = YahooSource(repair=False).fetch("KO", START, END)
    assert fake.calls[0].kwargs["repair"] is False
    assert prices.attrs["data_notes"] == ()


def test_rows_yfinance_repaired_become_a_data_note(fake: FakeYahoo) -> None:
    frame = yahoo_history_frame(DAYS, CLOSE, ADJ)
    frame["Repaired?"] = [False, True, False, True, False]
    fake.answer("KO", frame)

    prices = YahooSource().fetch("KO", START, END)

    (note,) = prices.attrs["data_notes"]
    assert note.startswith("Yahoo 'KO': yfinance repaired 2 row(s) (2020-03-06, 2020-10-30)")
    assert prices["adj_close"].tolist() == ADJ  # the repaired prices themselves are kept


def test_nothing_repaired_is_no_note(fake: FakeYahoo) -> None:
    fake.answer("KO", yahoo_history_frame(DAYS, CLOSE, ADJ))
    assert YahooSource().fetch("KO", START, END).attrs["data_notes"] == ()


def test_dividends_and_splits_come_through(fake: FakeYahoo) -> None:
    frame = yahoo_history_frame(DAYS, CLOSE, ADJ)
    frame["Dividends"] = [0.0, 0.25, 0.0, 0.0, 0.0]
    frame["Stock Splits"] = [0.0, 0.0, 2.0, 0.0, 0.0]
    fake.answer("KO", frame)
    prices = YahooSource().fetch("KO", START, END)
    assert prices["dividend"].tolist() == [0.0, 0.25, 0.0, 0.0, 0.0]
    assert prices["split"].tolist() == [1.0, 1.0, 2.0, 1.0, 1.0]


def test_a_symbol_listed_after_the_range_is_not_trading(fake: FakeYahoo) -> None:
    fake.answer("NEW", YFPricesMissingError("NEW", "(1d 2020-03-01 -> 2020-12-01)"))
    fake.metadata["NEW"] = {"firstTradeDate": pd.Timestamp("2021-06-01 09:30", tz=NEW_YORK)}
    with pytest.raises(NotTradingError, match=r"begin 2021-06-01, after the range 2020-03-01"):
        YahooSource().fetch("NEW", START, END)


def test_missing_prices_without_a_later_listing_is_an_unknown_symbol(fake: FakeYahoo) -> None:
    fake.answer("OLD", YFPricesMissingError("OLD", "(1d 2020-03-01 -> 2020-12-01)"))
    fake.metadata["OLD"] = {"firstTradeDate": pd.Timestamp("1990-01-02", tz=NEW_YORK)}
    with pytest.raises(UnknownSymbolError):
        YahooSource().fetch("OLD", START, END)
    with pytest.raises(UnknownSymbolError):
        YahooSource().fetch("ZZZZ", START, END)  # no time zone: Yahoo does not know it


def test_a_refused_connection_is_a_short_connection_failure(fake: FakeYahoo) -> None:
    curl = (
        "Failed to perform, curl: (7) Failed to connect to query2.finance.yahoo.com port 443 "
        "after 2 ms: Could not connect to server. See https://curl.se/libcurl/c/libcurl-errors"
        ".html first for more details." * 2
    )
    fake.answer("KO", curl_exceptions.ConnectionError(curl))
    with pytest.raises(ConnectionFailedError) as raised:
        YahooSource().fetch("KO", START, END)
    assert len(str(raised.value)) < 200

"""YahooSource through yfinance's real code, with yfinance's HTTP requests answered by a fake
(tests/data/fakes.py: FakeYahooHttp). Shows what yfinance really raises, never the network."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from curl_cffi.requests import exceptions as curl_exceptions

from pipeline.data.sources.yahoo import YahooSource
from pipeline.errors import DataError, RateLimitedError, TransientSourceError
from tests.data.fakes import FakeYahooHttp, yahoo_chart_json

# yfinance 1.7 itself still sorts in place, which pandas 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

DAYS = ["2020-03-06", "2020-03-09", "2020-11-02"]
START, END = date(2020, 3, 1), date(2020, 11, 30)


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> FakeYahooHttp:
    fake = FakeYahooHttp()
    fake.install(monkeypatch)
    return fake


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo"])
def test_a_real_yfinance_answer_becomes_the_standard_frame(http: FakeYahooHttp, tz: str) -> None:
    http.answer("BRK-B", yahoo_chart_json("BRK-B", DAYS, [10.0, 11.0, 12.0], [5.0, 5.5, 6.0], tz))
    prices = YahooSource().fetch("BRK.B", START, END)
    pd.testing.assert_index_equal(prices.index, pd.DatetimeIndex(DAYS, name="date").as_unit("ns"))
    assert prices["adj_close"].tolist() == [5.0, 5.5, 6.0]
    assert prices["close"].tolist() == [10.0, 11.0, 12.0]


def test_an_unknown_symbol_is_a_data_error_every_time(http: FakeYahooHttp) -> None:
    # yfinance looks an unknown symbol's time zone up elsewhere, twice per process, and gets a
    # 404 there; after that it raises YFTzMissingError. Neither is worth a retry.
    for _ in range(3):
        with pytest.raises(DataError, match="no prices from Yahoo for 'ZZZZ'"):
            YahooSource().fetch("ZZZZ", START, END)


def test_a_rate_limit_is_rate_limited(http: FakeYahooHttp) -> None:
    http.answer("KO", 429)
    with pytest.raises(RateLimitedError):
        YahooSource().fetch("KO", START, END)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(curl_exceptions.ConnectionError("Failed to connect"), id="connection"),
        pytest.param(curl_exceptions.Timeout("Operation timed out"), id="timeout"),
        pytest.param(503, id="unavailable"),
    ],
)
def test_network_failures_are_transient(http: FakeYahooHttp, answer: Exception | int) -> None:
    http.answer("KO", answer)
    with pytest.raises(TransientSourceError) as raised:
        YahooSource().fetch("KO", START, END)
    assert not isinstance(raised.value, RateLimitedError)

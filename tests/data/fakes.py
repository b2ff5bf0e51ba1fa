"""A fake of yfinance at the network boundary, and frames shaped as yfinance 1.x builds them.

    fake = FakeYahoo()
    fake.answer("KO", yahoo_history_frame(["2020-01-02", "2020-01-03"], close=[60.0, 61.0]))
    fake.answer("ZZZZ", YFPricesMissingError("ZZZZ", ""))
    fake.install(monkeypatch)          # replaces yfinance.Ticker for this test only
    ...
    fake.calls                         # [HistoryCall(symbol="KO", kwargs={...}), ...]

Like yfinance, the fake raises an answered exception only when
`yfinance.config.debug.hide_exceptions` is False (a rate limit always propagates); otherwise it
returns yfinance's empty frame, as yfinance does after logging the error. `install` resets that
setting to yfinance's default (True), so a test shows whether the code under test switches it.
A symbol with no answer behaves as an unknown symbol: Yahoo has no time zone for it.

`FakeYahooHttp` answers one level lower, yfinance's own HTTP requests, so that yfinance's real
code parses the answers and raises its real errors. It reaches into yfinance's internals
(`YfData.get`, the time-zone cache), so a new yfinance may need it updated; `FakeYahoo` is the
stable one to reuse.
"""

from __future__ import annotations

import inspect
import json
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance
import yfinance.base
from curl_cffi.requests import exceptions as curl_exceptions
from pandas.errors import Pandas4Warning
from yfinance import cache as yf_cache
from yfinance import utils as yf_utils
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError, YFTzMissingError
from yfinance.scrapers.history import PriceHistory

NEW_YORK = "America/New_York"
_HISTORY_SIGNATURE = inspect.signature(PriceHistory.history)


def yahoo_history_frame(
    dates: Sequence[str],
    close: Sequence[float],
    adj_close: Sequence[float] | None = None,
    *,
    tz: str = NEW_YORK,
    auto_adjust: bool = False,
) -> pd.DataFrame:
    """A daily frame as `yf.Ticker(s).history(..., actions=False)` returns it.

    Index: the exchange's local midnights, tz-aware, named "Date" (built as yfinance builds it).
    Columns: Open, High, Low, Close, Adj Close, Volume (int64); with `auto_adjust=True`, what
    yfinance's own `auto_adjust` leaves: no Adj Close, and Close is the adjusted close.
    """
    close_values = np.asarray(close, dtype="float64")
    adjusted = close_values if adj_close is None else np.asarray(adj_close, dtype="float64")
    local_days = pd.to_datetime([pd.Timestamp(day).date() for day in dates])
    index = local_days.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    frame = pd.DataFrame(
        {
            "Open": close_values * 0.99,
            "High": close_values * 1.02,
            "Low": close_values * 0.98,
            "Close": close_values,
            "Adj Close": adjusted,
            "Volume": np.arange(1, len(close_values) + 1, dtype="int64") * 1000,
        },
        index=index.rename("Date"),
    )
    if not auto_adjust:
        return frame
    with warnings.catch_warnings():  # yfinance 1.7 still renames in place under pandas 3.1
        warnings.simplefilter("ignore", Pandas4Warning)
        return yf_utils.auto_adjust(frame)


def yahoo_download_frame(
    frames: Mapping[str, pd.DataFrame], group_by: str = "column", ignore_tz: bool = True
) -> pd.DataFrame:
    """Several tickers' history frames combined as `yf.download(..., multi_level_index=True)` does.

    Columns (Price, Ticker) by default, (Ticker, Price) with group_by="ticker"; dates are the union
    of every ticker's, with NaN where a ticker has none; tz dropped unless `ignore_tz=False`.
    """
    frames = {ticker: frame.copy() for ticker, frame in frames.items()}
    if ignore_tz:
        for frame in frames.values():
            frame.index = frame.index.tz_localize(None)
    dates = pd.DatetimeIndex(sorted(set().union(*(frame.index for frame in frames.values()))))
    aligned = [frame.reindex(dates) for frame in frames.values()]
    data = pd.concat(aligned, axis=1, sort=True, keys=list(frames), names=["Ticker", "Price"])
    if group_by == "column":
        data.columns = data.columns.swaplevel(0, 1)
        data = data.sort_index(level=0, axis=1)
    return data


@dataclass(frozen=True)
class HistoryCall:
    symbol: str
    kwargs: dict[str, Any]


@dataclass
class FakeYahoo:
    """Answers `yfinance.Ticker(symbol).history(...)` from `answers`, recording every call."""

    answers: dict[str, pd.DataFrame | BaseException] = field(default_factory=dict)
    calls: list[HistoryCall] = field(default_factory=list)
    # symbol -> chart metadata, e.g. {"firstTradeDate": pd.Timestamp(...)}, as
    # `Ticker.get_history_metadata()` returns it after a request
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def answer(self, symbol: str, answer: pd.DataFrame | BaseException) -> None:
        self.answers[symbol] = answer

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(yfinance, "Ticker", self.ticker)
        monkeypatch.setitem(yfinance.config.debug.data, "hide_exceptions", True)

    def ticker(self, symbol: str) -> _FakeTicker:
        return _FakeTicker(self, symbol)


def shaped_as_asked(frame: pd.DataFrame, kwargs: Mapping[str, Any]) -> pd.DataFrame:
    """`frame` with the columns yfinance 1.x returns for these `history` arguments.

    actions=True (yfinance's default) adds Dividends and Stock Splits (0.0 on days without one)
    after Volume; actions=False drops them. repair=True adds the boolean "Repaired?" column
    last (False on rows the repair left alone); without it, no such column.
    """
    frame = frame.copy()
    if kwargs.get("actions", True):
        for column in ("Dividends", "Stock Splits"):
            if column not in frame.columns:
                frame[column] = 0.0
    else:
        frame = frame.drop(columns=["Dividends", "Stock Splits", "Capital Gains"], errors="ignore")
    repaired = frame.pop("Repaired?") if "Repaired?" in frame.columns else None
    if kwargs.get("repair", False):
        frame["Repaired?"] = False if repaired is None else repaired.astype(bool)
    return frame


@dataclass
class _FakeTicker:
    fake: FakeYahoo
    symbol: str

    def get_history_metadata(self, repair: Any = None) -> dict[str, Any]:
        """What the last request's chart metadata held: `fake.metadata[symbol]`, else nothing."""
        return dict(self.fake.metadata.get(self.symbol, {}))

    def history(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        # A call the real method would reject (a misspelt keyword) fails here too.
        _HISTORY_SIGNATURE.bind(None, *args, **kwargs)
        self.fake.calls.append(HistoryCall(self.symbol, kwargs))
        answer = self.fake.answers.get(self.symbol, YFTzMissingError(self.symbol))
        if isinstance(answer, pd.DataFrame):
            return shaped_as_asked(answer, kwargs)
        if isinstance(answer, YFRateLimitError) or not yfinance.config.debug.hide_exceptions:
            raise answer
        return yf_utils.empty_df()


def yahoo_chart_json(
    symbol: str,
    dates: Sequence[str],
    close: Sequence[float],
    adj_close: Sequence[float],
    tz: str = NEW_YORK,
) -> dict[str, Any]:
    """Yahoo's v8 chart answer for daily bars: one timestamp per day, at the 09:30 local open."""
    opens = pd.DatetimeIndex(dates).tz_localize(tz) + pd.Timedelta(hours=9, minutes=30)
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "instrumentType": "EQUITY",
        "exchangeTimezoneName": tz,
        "priceHint": 2,
        "dataGranularity": "1d",
        "validRanges": ["1d", "5d", "1mo", "1y", "max"],
    }
    quote = {key: list(close) for key in ("open", "high", "low", "close")}
    quote["volume"] = [1000] * len(opens)
    result = {
        "meta": meta,
        "timestamp": [int(moment.timestamp()) for moment in opens],
        "indicators": {"quote": [quote], "adjclose": [{"adjclose": list(adj_close)}]},
    }
    return {"chart": {"result": [result], "error": None}}


@dataclass
class FakeResponse:
    status_code: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError as exc:  # curl_cffi's own error, as yfinance's session would raise
            raise curl_exceptions.JSONDecodeError(str(exc), self.text, 0) from None

    def raise_for_status(self) -> None:
        if not self.ok:
            raise curl_exceptions.HTTPError(f"HTTP Error {self.status_code}", 0, self)


@dataclass
class FakeYahooHttp:
    """Answers yfinance's HTTP GETs by symbol: a chart, a status code, or an exception.

    A symbol with no answer gets what Yahoo gives an unknown symbol: 404 with an error body.
    Status 429 raises YFRateLimitError, as yfinance's own `get` does; any other status comes
    with Yahoo's outage page.
    """

    answers: dict[str, dict[str, Any] | int | BaseException] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)

    def answer(self, symbol: str, answer: dict[str, Any] | int | BaseException) -> None:
        self.answers[symbol] = answer

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(YfData, "get", self.get)
        monkeypatch.setattr(YfData, "cache_get", self.get)
        monkeypatch.setattr(yf_cache, "get_tz_cache", yf_cache._TzCacheDummy)
        monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
        monkeypatch.setitem(yfinance.config.debug.data, "hide_exceptions", True)

    def get(self, url: str, params: Any = None, timeout: float = 30, **_: Any) -> FakeResponse:
        self.urls.append(url)
        symbol = url.rstrip("/?").rsplit("/", 1)[-1]
        answer = self.answers.get(symbol, 404)
        if isinstance(answer, BaseException):
            raise answer
        if answer == 429:
            raise YFRateLimitError()
        if answer == 404:
            error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
            return FakeResponse(404, json.dumps({"chart": {"result": None, "error": error}}))
        if isinstance(answer, int):
            return FakeResponse(answer, "<html><body>Will be right back...</body></html>")
        return FakeResponse(200, json.dumps(answer))


class VirtualClock:
    """A monotonic clock for the stage: time moves only when told to, or (`advancing`) by
    each sleep. Every sleep is recorded, so a test asserts the exact schedule of waits."""

    def __init__(self, advancing: bool = False) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.advancing = advancing
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advancing:
                self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

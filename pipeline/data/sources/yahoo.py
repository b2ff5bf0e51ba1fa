"""Yahoo Finance through yfinance: the only module of the pipeline that calls yfinance.

One request per ticker, `yf.Ticker(symbol).history(...)`, unadjusted OHLC plus Yahoo's adjusted
close. yfinance 1.x hides its exceptions by default (it logs them and returns an empty frame),
which would turn a rate limit or a network failure into "no data"; `fetch` switches that off and
maps what yfinance raises onto the pipeline's errors, so the download stage can tell what is worth
retrying (`TransientSourceError`, `RateLimitedError`) from what is not (`DataError`).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import yfinance as yf
from yfinance.exceptions import (
    YFDataException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTickerMissingError,
)

from pipeline.data.dates import between
from pipeline.data.sources.base import ADJ_CLOSE, DATA_NOTES
from pipeline.data.sources.normalise import local_midnights, price_frame
from pipeline.errors import (
    ConnectionFailedError,
    DataError,
    NotTradingError,
    RateLimitedError,
    SourceError,
    TransientSourceError,
    UnknownSymbolError,
)
from pipeline.symbols import to_yahoo_symbol

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
HTTP_NOT_FOUND = 404
HTTP_TOO_MANY_REQUESTS = 429
# Yahoo's labels of the columns the standard frame keeps; "Adj Close" is handled apart.
_YAHOO_COLUMNS = {label: label.lower() for label in ("Open", "High", "Low", "Close", "Volume")}
_YAHOO_COLUMNS.update({"Dividends": "dividend", "Stock Splits": "split"})
# The boolean column yfinance 1.x adds with repair=True: True on each row its repair changed.
REPAIRED = "Repaired?"


class YahooSource:
    """Daily prices from Yahoo Finance. Share classes are requested Yahoo's way (BRK.B as BRK-B)."""

    name = "yfinance"
    remote = True

    def __init__(
        self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, repair: bool = True
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.repair = repair

    def identity(self) -> str:
        return "yfinance"

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        raw = request_history(ticker, start, end, self.timeout_seconds, repair=self.repair)
        if raw.empty:  # with or without columns: what they are does not matter then
            raise DataError(no_prices_reason(ticker, start, end))
        prices = between(yahoo_price_frame(raw, to_yahoo_symbol(ticker)), start, end)
        if prices.empty:
            raise DataError(no_prices_reason(ticker, start, end))
        return prices


def request_history(
    ticker: str, start: date, end: date, timeout_seconds: float, repair: bool = True
) -> pd.DataFrame:
    """Yahoo's daily rows of `ticker` from `start` to `end` inclusive, as yfinance returns them:
    with dividends and splits (the data-quality checks use them) and, with `repair`, yfinance's
    own price repair and its "Repaired?" column."""
    symbol = to_yahoo_symbol(ticker)
    # The documented replacement for the deprecated `raise_errors`; process-wide, and set on every
    # call because nothing else in the pipeline touches yfinance's settings.
    yf.config.debug.hide_exceptions = False
    logger.debug("Yahoo: %s %s..%s", symbol, start, end)
    handle = yf.Ticker(symbol)
    try:
        return handle.history(
            start=start.isoformat(),
            end=(end + timedelta(days=1)).isoformat(),  # Yahoo's end is exclusive
            interval="1d",
            auto_adjust=False,
            actions=True,
            repair=repair,
            timeout=timeout_seconds,
        )
    except YFPricesMissingError as exc:
        listed = first_trade_date(handle)
        if listed is not None and listed > end:
            raise NotTradingError(
                f"Yahoo's prices for {symbol!r} begin {listed}, after the range {start}..{end}"
            ) from exc
        raise source_error(exc, ticker, start, end) from exc
    except (YFRateLimitError, YFTickerMissingError, YFDataException, OSError) as exc:
        raise source_error(exc, ticker, start, end) from exc


def first_trade_date(handle: Any) -> date | None:
    """The symbol's first trading day from the metadata of its last request, if Yahoo sent it."""
    try:
        value = handle.get_history_metadata().get("firstTradeDate")
    except Exception:  # metadata is a courtesy: any trouble means "unknown"
        return None
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).date()
    return pd.Timestamp(value).date()


def source_error(exc: Exception, ticker: str, start: date, end: date) -> SourceError:
    """What a failed Yahoo request means for the download stage: slow down, retry or give up.

    yfinance raises YFTickerMissingError (and its YFTzMissingError, YFPricesMissingError) when
    Yahoo has no prices for a symbol, but for an unknown symbol it may first look the symbol's
    time zone up elsewhere and get an HTTP 404 instead: both mean an unknown or delisted symbol.
    Every network error of both HTTP backends yfinance may use is an OSError (curl_cffi's and
    requests' RequestException, TimeoutError, ConnectionError); YFDataException is Yahoo's
    "will be right back" page. Those are worth retrying.
    """
    symbol = to_yahoo_symbol(ticker)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, YFRateLimitError) or status == HTTP_TOO_MANY_REQUESTS:
        return RateLimitedError(f"Yahoo rate-limited the request for {symbol!r}")
    if isinstance(exc, YFTickerMissingError) or status == HTTP_NOT_FOUND:
        return UnknownSymbolError(f"{no_prices_reason(ticker, start, end)}; yfinance: {exc}")
    if isinstance(exc, ConnectionRefusedError) or _is_connection_failure(exc):
        reason = f"{type(exc).__name__}: {_short(exc)}"
        return ConnectionFailedError(f"cannot reach Yahoo for {symbol!r}: {reason}")
    return TransientSourceError(f"Yahoo request for {symbol!r} failed: {type(exc).__name__}: {exc}")


# Every HTTP backend yfinance may use names a connection that never happened this way.
_CONNECTION_FAILURES = (
    "connection refused",
    "could not resolve",
    "failed to connect",
    "couldn't connect",
    "network is unreachable",
    "name or service not known",
    "temporary failure in name resolution",
    "no route to host",
)
SHORT_MESSAGE = 120


def _is_connection_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(words in text for words in _CONNECTION_FAILURES)


def _short(exc: BaseException) -> str:
    """The first line of the error, cut: curl's messages run to hundreds of characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= SHORT_MESSAGE else f"{text[:SHORT_MESSAGE]}..."


def yahoo_price_frame(raw: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The standard frame from any daily frame yfinance 1.x returns for `symbol`.

    Accepts `Ticker.history`'s flat columns and `yf.download`'s MultiIndex columns in either
    order, (Price, Ticker) or (Ticker, Price); the ticker is selected by its exact name. The
    adjusted close is "Adj Close", or "Close" when that is missing (auto_adjust=True has already
    adjusted Close). Dates are the exchange's local dates; rows without an adjusted close go.
    """
    flat = one_ticker_columns(raw, symbol)
    adjusted = "Adj Close" if "Adj Close" in flat.columns else "Close"
    if adjusted not in flat.columns:
        found = ", ".join(map(str, flat.columns))
        raise DataError(
            f"Yahoo's frame for {symbol!r} has no 'Adj Close' or 'Close' among: {found}"
        )
    columns = {name: flat[label] for label, name in _YAHOO_COLUMNS.items() if label in flat}
    columns[ADJ_CLOSE] = flat[adjusted]
    frame = price_frame(pd.DatetimeIndex(flat.index), columns, origin=f"Yahoo {symbol!r}")
    if REPAIRED in flat.columns:
        notes = repaired_notes(flat, symbol)
        frame.attrs[DATA_NOTES] = (*frame.attrs.get(DATA_NOTES, ()), *notes)
    return frame


def repaired_notes(flat: pd.DataFrame, symbol: str) -> list[str]:
    """One note for the rows yfinance's repair changed (its "Repaired?" marker), if any."""
    marked = flat[REPAIRED].fillna(False).astype(bool).to_numpy()
    if not marked.any():
        return []
    days = local_midnights(pd.DatetimeIndex(flat.index[marked]))
    listed = ", ".join(f"{day:%Y-%m-%d}" for day in days[:5])
    more = f" and {len(days) - 5} more" if len(days) > 5 else ""
    return [
        f"Yahoo {symbol!r}: yfinance repaired {len(days)} row(s) ({listed}{more}): its price "
        "repair fixes 100x unit mix-ups, bad splits and dividend adjustments, zero prices"
    ]


def one_ticker_columns(raw: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """`raw` with flat price columns: a multi-ticker frame cut down to `symbol`'s columns."""
    if not isinstance(raw.columns, pd.MultiIndex):
        return raw
    if raw.columns.nlevels != 2:
        raise DataError(f"Yahoo's frame has {raw.columns.nlevels} column levels; expected 2")
    price_level = 0 if "Close" in raw.columns.get_level_values(0) else 1
    ticker_level = 1 - price_level
    symbols = raw.columns.get_level_values(ticker_level)
    if symbol not in symbols:
        found = ", ".join(sorted(set(map(str, symbols))))
        raise DataError(f"Yahoo's frame has no columns for {symbol!r}, only for: {found}")
    return raw.xs(symbol, axis=1, level=ticker_level)


def no_prices_reason(ticker: str, start: date, end: date) -> str:
    symbol = to_yahoo_symbol(ticker)
    asked = f"{ticker!r}" if symbol == ticker else f"{ticker!r} (asked as {symbol!r})"
    return (
        f"no prices from Yahoo for {asked} from {start} to {end} "
        "(unknown or delisted symbol, or no trading day in the range)"
    )

"""Prices from a directory of files: one `<TICKER>.csv` or `<TICKER>.parquet` per ticker.

A ticker's file is found by its exact name, never by a pattern: ticker "A" reads A.csv and never
AAPL.csv (the original article's `filter(regex=ticker)` bug). Columns are recognised by their
usual names, whatever their case and separators ("Adj Close", "adj_close", "adjclose" are one):

- date: timestamp, date, datetime (else a Parquet file's named date index);
- adjusted close: adjusted_close, adj_close, adjclose, adjusted close, ...;
- open, high, low, close, volume where present;
- dividend (dividend_amount, Dividends) and split (split_coefficient, Stock Splits) where
  present: the data-quality checks use them.

Dates are read in the one format that reads every value of the column (ISO, MM/DD/YYYY,
DD/MM/YYYY, ...; `csv_values`), never guessed value by value: an ambiguous or mixed file is
refused. Numbers grouped by commas ("1,234.50") are read as numbers; a decimal comma is refused.
Without an adjusted-close column the `close` column is used as `adj_close`, with a warning in the
log: files saved from `yf.Ticker(...).history()` (auto_adjust=True by default) have only Close,
and it is already adjusted; an unadjusted close would show splits as crashes, hence the warning.
Dates written with a UTC offset keep the date they show (the exchange's local date).
"""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import pandas as pd

from pipeline.data.dates import between
from pipeline.data.sources.base import ADJ_CLOSE, OPTIONAL_COLUMNS
from pipeline.data.sources.csv_values import parse_dates, parse_numbers
from pipeline.data.sources.normalise import describe_span, price_frame
from pipeline.errors import DataError, NotTradingError
from pipeline.symbols import is_valid_symbol

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".parquet")
# Recognised column names, compared after `_column_key` (lower case, separators removed).
DATE_NAMES = ("timestamp", "date", "datetime")
ADJ_CLOSE_NAMES = ("adjustedclose", "adjclose")
# Dividends and splits as Alpha Vantage (dividend_amount, split_coefficient) and yfinance
# (Dividends, Stock Splits) write them.
ALIASES = {
    "dividend": ("dividend", "dividends", "dividendamount"),
    "split": ("split", "splits", "stocksplits", "splitcoefficient", "splitratio"),
}
_SEPARATORS = re.compile(r"[\s_\-.]+")
# Characters of a file that is not a price table quoted in the error, enough for an API's message.
TEXT_SHOWN = 120


class CsvSource:
    """Reads a ticker's whole file on each fetch and returns the rows in [start, end]."""

    name = "csv"
    remote = False

    def __init__(self, path: Path | str) -> None:
        self.directory = Path(path).resolve()

    def identity(self) -> str:
        return f"csv:{self.directory}"

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        path = self.file_of(ticker)
        prices = read_price_file(path)
        window = between(prices, start, end)
        if window.empty:
            # Rows elsewhere mean the ticker did not trade in the range (skipped); none at all
            # mean the file holds no prices (failed).
            error = NotTradingError if len(prices) else DataError
            raise error(
                f"{path.name} has no prices from {start} to {end}; it has {describe_span(prices)}"
            )
        return window

    def file_of(self, ticker: str) -> Path:
        """The one file holding `ticker`'s prices, found by its exact name."""
        if not is_valid_symbol(ticker):
            raise DataError(f"{ticker!r} is not a valid ticker symbol, so it names no file")
        found = [self.directory / f"{ticker}{suffix}" for suffix in SUFFIXES]
        found = [path for path in found if path.is_file()]
        if not found:
            names = " or ".join(f"{ticker}{suffix}" for suffix in SUFFIXES)
            raise DataError(f"no file {names} in {self.directory}{self._case_hint(ticker)}")
        if len(found) > 1:
            raise DataError(
                f"both {found[0].name} and {found[1].name} in {self.directory}; keep only one"
            )
        return found[0]

    def _case_hint(self, ticker: str) -> str:
        """File names are case-sensitive: point at KO.csv when ko was asked for."""
        for variant in dict.fromkeys((ticker.upper(), ticker.lower())):
            for suffix in SUFFIXES:
                if variant != ticker and (self.directory / f"{variant}{suffix}").is_file():
                    return f"; {variant}{suffix} is there: list the ticker as {variant!r}"
        return ""


def read_price_file(path: Path) -> pd.DataFrame:
    """The standard price frame of one CSV or Parquet file, all its rows, sorted by date."""
    table = _read_table(path)
    names = {_column_key(column): column for column in reversed(table.columns)}
    date_column = _first_present(DATE_NAMES, names)
    if date_column is None:
        missing = "date column (timestamp, Date, date, Datetime)"
        raise DataError(_not_a_price_table(path, missing, table))
    adjusted = _first_present(ADJ_CLOSE_NAMES, names)
    if adjusted is None:
        adjusted = names.get("close")
        if adjusted is None:
            missing = "adjusted-close column (adjusted_close, Adj Close, adj_close) nor close"
            raise DataError(_not_a_price_table(path, missing, table))
        logger.warning("%s has no adjusted close; using %r as adj_close", path, adjusted)
    found = {name: _first_present(ALIASES.get(name, (name,)), names) for name in OPTIONAL_COLUMNS}
    columns = {name: table[column] for name, column in found.items() if column is not None}
    columns[ADJ_CLOSE] = table[adjusted]
    dates = parse_dates(table[date_column], origin=str(path))
    return price_frame(dates, parse_numbers(columns, origin=str(path)), origin=str(path))


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            # A saved price frame keeps its dates in the index; bring them back as a column.
            return table if isinstance(table.index, pd.RangeIndex) else table.reset_index()
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        # ValueError covers pandas' ParserError and EmptyDataError, UnicodeDecodeError and
        # pyarrow's ArrowInvalid: whatever the file holds, it is not a readable price table.
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, pd.errors.EmptyDataError):
            reason = "the file is empty"  # pandas says "No columns to parse from file"
        raise DataError(f"{path} is not a readable price table: {reason}") from exc


def _column_key(column: object) -> str:
    return _SEPARATORS.sub("", str(column).strip().lower())


def _first_present(candidates: tuple[str, ...], names: dict[str, str]) -> str | None:
    return next((names[key] for key in candidates if key in names), None)


def _not_a_price_table(path: Path, missing: str, table: pd.DataFrame) -> str:
    shown = ", ".join(repr(str(column))[:40] for column in table.columns[:8])
    reason = f"{path} is not a price table: no {missing} among its columns [{shown}]"
    if path.suffix != ".csv":
        return reason
    # An API's error or rate-limit message saved in place of prices is the usual culprit:
    # quoting it says more than the column names its first line makes.
    return f"{reason}; the file begins {_text_start(path)!r}"


def _text_start(path: Path, limit: int = TEXT_SHOWN) -> str:
    with path.open("rb") as handle:
        head = handle.read(4 * limit).decode("utf-8", errors="replace")
    text = " ".join(head.split())
    return text if len(text) <= limit else f"{text[:limit]}..."

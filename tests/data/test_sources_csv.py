"""CsvSource: small hand-made files in tmp_path, and the shared 60-ticker sample when present."""

from __future__ import annotations

import csv
import logging
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline.data.sources.csv_source import CsvSource
from pipeline.errors import DataError

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sp500-sample"
WIDE = (date(1990, 1, 1), date(2030, 12, 31))

HEADER = "timestamp,open,high,low,close,adjusted_close,volume"
ROWS = [
    "2020-01-02,10.0,11.0,9.0,10.5,5.25,100",
    "2020-01-03,10.5,12.0,10.0,11.5,5.75,200",
    "2020-01-06,11.5,12.5,11.0,12.0,6.00,300",
]
DATES = ["2020-01-02", "2020-01-03", "2020-01-06"]


def write(directory: Path, name: str, lines: list[str]) -> Path:
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def as_dates(days: list[str]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days, name="date").as_unit("ns")


def test_reads_the_standard_frame(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *ROWS])
    prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    pd.testing.assert_index_equal(prices.index, as_dates(DATES))
    assert list(prices.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert prices["adj_close"].tolist() == [5.25, 5.75, 6.0]
    assert prices["close"].tolist() == [10.5, 11.5, 12.0]
    assert prices["volume"].tolist() == [100.0, 200.0, 300.0]
    assert (prices.dtypes == "float64").all()


def test_the_range_is_inclusive_at_both_ends(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *ROWS])
    prices = CsvSource(tmp_path).fetch("KO", date(2020, 1, 3), date(2020, 1, 6))
    pd.testing.assert_index_equal(prices.index, as_dates(DATES[1:]))


def test_descending_dates_come_back_ascending(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *reversed(ROWS)])
    prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    pd.testing.assert_index_equal(prices.index, as_dates(DATES))
    assert prices["adj_close"].tolist() == [5.25, 5.75, 6.0]


def test_ticker_a_never_reads_aapl(tmp_path: Path) -> None:
    # The original article selected columns with filter(regex=ticker): "A" matched "AAPL".
    write(tmp_path, "AAPL.csv", ["Date,Adj Close", "2020-01-02,300.0"])
    source = CsvSource(tmp_path)
    with pytest.raises(DataError, match=r"no file A\.csv or A\.parquet in "):
        source.fetch("A", *WIDE)
    write(tmp_path, "A.csv", ["Date,Adj Close", "2020-01-02,80.0"])
    assert source.fetch("A", *WIDE)["adj_close"].tolist() == [80.0]
    assert source.fetch("AAPL", *WIDE)["adj_close"].tolist() == [300.0]


def test_a_missing_file_is_a_data_error_naming_both_names_and_the_directory(
    tmp_path: Path,
) -> None:
    with pytest.raises(DataError, match=rf"no file KO\.csv or KO\.parquet in {tmp_path}"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


def test_a_csv_and_a_parquet_of_one_ticker_are_ambiguous(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *ROWS])
    pd.read_csv(tmp_path / "KO.csv").to_parquet(tmp_path / "KO.parquet")
    with pytest.raises(DataError, match=r"both KO\.csv and KO\.parquet"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


@pytest.mark.parametrize("ticker", ["../KO", "KO/../KO", ".hidden", ""])
def test_a_symbol_that_is_not_a_file_name_is_refused(tmp_path: Path, ticker: str) -> None:
    with pytest.raises(DataError, match="not a valid ticker symbol"):
        CsvSource(tmp_path).fetch(ticker, *WIDE)


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        pytest.param(['{"Error Message": "Invalid API call"}'], "no date column", id="api-error"),
        pytest.param(
            ['{"Note": "Thank you for using Alpha Vantage!", "Information": "rate limit"}'],
            "no date column",
            id="api-note",
        ),
        pytest.param(
            ["<html>", "<head><title>503</title></head>", "<body>Try again</body>", "</html>"],
            "not",
            id="html",
        ),
        pytest.param([""], "not a readable price table", id="empty"),
        pytest.param(["symbol,name", "KO,Coca-Cola"], "no date column", id="other-table"),
        pytest.param(["date,volume", "2020-01-02,100"], "no adjusted-close column", id="no-prices"),
        pytest.param(["date,close", "not a date,1.0"], "does not hold dates", id="bad-dates"),
    ],
)
def test_a_file_that_is_not_a_price_table_is_a_data_error(
    tmp_path: Path, lines: list[str], reason: str
) -> None:
    write(tmp_path, "KO.csv", lines)
    with pytest.raises(DataError, match=rf"KO\.csv.*{reason}"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


def test_a_binary_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "KO.parquet").write_bytes(b"\x00\xff\x13not parquet")
    with pytest.raises(DataError, match=r"KO\.parquet is not a readable price table"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


@pytest.mark.parametrize(
    ("date_name", "adjusted_name"),
    [
        ("timestamp", "adjusted_close"),
        ("Date", "Adj Close"),
        ("date", "adj_close"),
        ("Datetime", "adjclose"),
        ("DATE", "ADJ_CLOSE"),
        ("Timestamp", "Adjusted Close"),
    ],
    ids=lambda name: name.replace(" ", "-"),
)
def test_usual_column_names_are_recognised(
    tmp_path: Path, date_name: str, adjusted_name: str
) -> None:
    write(tmp_path, "KO.csv", [f"{date_name},Close,{adjusted_name}", "2020-01-02,10.0,5.0"])
    prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    assert prices["adj_close"].tolist() == [5.0]
    assert prices["close"].tolist() == [10.0]


def test_without_an_adjusted_column_close_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "KO.csv", ["Date,Open,Close", "2020-01-02,9.0,10.0", "2020-01-03,10.0,11.0"])
    with caplog.at_level(logging.WARNING):
        prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    assert prices["adj_close"].tolist() == [10.0, 11.0]
    assert "no adjusted close" in caplog.text and "KO.csv" in caplog.text


def test_an_adjusted_column_wins_over_close(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", ["Date,Adj Close,Close", "2020-01-02,5.0,10.0"])
    assert CsvSource(tmp_path).fetch("KO", *WIDE)["adj_close"].tolist() == [5.0]


def test_dates_with_utc_offsets_keep_their_local_date(tmp_path: Path) -> None:
    # What yf.Ticker(...).history().to_csv() writes: offsets change with daylight saving time.
    lines = [
        "Date,Open,High,Low,Close,Volume",
        "2020-03-06 00:00:00-05:00,10,11,9,10.5,100",
        "2020-03-09 00:00:00-04:00,10,11,9,10.0,100",
    ]
    write(tmp_path, "KO.csv", lines)
    prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    pd.testing.assert_index_equal(prices.index, as_dates(["2020-03-06", "2020-03-09"]))


def test_one_offset_east_of_utc_keeps_its_local_date(tmp_path: Path) -> None:
    write(tmp_path, "X.csv", ["Date,Close", "2020-03-09 00:00:00+09:00,10.0"])
    prices = CsvSource(tmp_path).fetch("X", *WIDE)
    pd.testing.assert_index_equal(prices.index, as_dates(["2020-03-09"]))


def test_rows_without_an_adjusted_close_are_dropped(tmp_path: Path) -> None:
    lines = ["date,adj_close", "2020-01-02,1.0", "2020-01-03,", "2020-01-06,null", "2020-01-07,2"]
    write(tmp_path, "KO.csv", lines)
    prices = CsvSource(tmp_path).fetch("KO", *WIDE)
    pd.testing.assert_index_equal(prices.index, as_dates(["2020-01-02", "2020-01-07"]))


def test_two_rows_on_one_day_are_a_data_error(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, ROWS[0], ROWS[1], ROWS[1]])
    with pytest.raises(DataError, match=r"1 duplicate date.*2020-01-03"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


def test_no_rows_in_the_range_is_a_data_error_showing_what_the_file_has(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *ROWS])
    with pytest.raises(DataError, match=r"2020-01-02\.\.2020-01-06 \(3 rows\)"):
        CsvSource(tmp_path).fetch("KO", date(2021, 1, 1), date(2021, 12, 31))


def test_parquet_with_a_date_column(tmp_path: Path) -> None:
    write(tmp_path, "csv.csv", [HEADER, *ROWS])
    table = pd.read_csv(tmp_path / "csv.csv", parse_dates=["timestamp"])
    table.to_parquet(tmp_path / "KO.parquet")
    source = CsvSource(tmp_path)
    pd.testing.assert_frame_equal(source.fetch("KO", *WIDE), source.fetch("csv", *WIDE))


def test_a_saved_price_frame_reads_back_unchanged(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv", [HEADER, *reversed(ROWS)])
    source = CsvSource(tmp_path)
    prices = source.fetch("KO", *WIDE)
    prices.to_parquet(tmp_path / "KO2.parquet")
    pd.testing.assert_frame_equal(source.fetch("KO2", *WIDE), prices)


def test_identity_is_the_resolved_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prices").mkdir()
    monkeypatch.chdir(tmp_path)
    source = CsvSource("prices")
    assert source.name == "csv"
    assert source.identity() == f"csv:{(tmp_path / 'prices').resolve()}"


# The shared sample: real files, read as a user's.


def sample_files() -> list[Path]:
    if not SAMPLE.is_dir():
        pytest.skip(f"the shared sample is absent: {SAMPLE}")
    return sorted(SAMPLE.glob("*.csv"))


@pytest.mark.slow
def test_the_shared_sample_loads_every_ticker_with_its_own_dates() -> None:
    files = sample_files()
    assert len(files) == 60
    source = CsvSource(SAMPLE)
    for path in files:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        prices = source.fetch(path.stem, *WIDE)
        assert len(prices) == len(rows), path.name
        assert prices.index[0] == pd.Timestamp(rows[0]["timestamp"]), path.name
        assert prices.index[-1] == pd.Timestamp(rows[-1]["timestamp"]), path.name
        assert prices["adj_close"].iloc[-1] == float(rows[-1]["adjusted_close"]), path.name
        assert prices.index.is_monotonic_increasing and prices.index.is_unique


@pytest.mark.parametrize(
    ("ticker", "first", "rows"),
    [("KO", "1999-11-01", 5402), ("AAPL", "1999-11-01", 5402), ("FOXA", "2019-03-12", 533)],
)
def test_the_shared_sample_has_the_documented_spans(ticker: str, first: str, rows: int) -> None:
    sample_files()
    prices = CsvSource(SAMPLE).fetch(ticker, *WIDE)
    assert (prices.index[0], prices.index[-1]) == (pd.Timestamp(first), pd.Timestamp("2021-04-21"))
    assert len(prices) == rows


def test_the_articles_window_of_ko_from_the_shared_sample() -> None:
    sample_files()
    prices = CsvSource(SAMPLE).fetch("KO", date(1999, 12, 31), date(2019, 12, 31))
    assert prices.index[0] == pd.Timestamp("1999-12-31")
    assert prices.index[-1] == pd.Timestamp("2019-12-31")

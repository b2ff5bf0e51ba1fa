"""Dates and numbers of price files read by one detected convention: generated dates written in
every format read back to the same days, or are refused when the format cannot be known; the
shared real files rewritten day-first, month-first and with thousands separators read back
identical to the originals."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.sources.csv_source import CsvSource, read_price_file
from pipeline.data.sources.csv_values import detected_dates, parse_dates, parse_numbers
from pipeline.errors import DataError

WIDE = (date(1700, 1, 1), date(2260, 12, 31))
# strftime code -> whether the format can be confused with its mirror image (day <-> month).
WRITTEN = {
    "%Y-%m-%d": False,
    "%Y-%m-%d %H:%M:%S": False,
    "%Y-%m-%dT%H:%M:%SZ": False,
    "%Y-%m-%d 00:00:00-05:00": False,
    "%Y-%m-%dT16:00:00+09:00": False,
    "%Y/%m/%d": False,
    "%Y%m%d": False,
    "%d.%m.%Y": False,
    "%m/%d/%Y": True,
    "%d/%m/%Y": True,
    "%d-%m-%Y": True,
    "%m-%d-%Y": True,
    "%d-%b-%Y": False,
    "%b %d, %Y": False,
}

days = st.lists(
    st.dates(min_value=date(1678, 1, 1), max_value=date(2262, 1, 1)),
    min_size=1,
    max_size=40,
    unique=True,
).map(sorted)


def _series(values: list[object], name: str = "Date") -> pd.Series:
    return pd.Series(values, name=name, dtype=object)


def _is_ambiguous(dates: list[date]) -> bool:
    """Every date reads as another date when day and month swap places."""
    fits_both = all(day.day <= 12 for day in dates)
    return fits_both and any(day.day != day.month for day in dates)


@settings(max_examples=60, deadline=None)
@given(dates=days, code=st.sampled_from(sorted(WRITTEN)))
def test_dates_written_in_any_format_read_back_or_are_refused_as_ambiguous(
    dates: list[date], code: str
) -> None:
    written = [day.strftime(code) for day in dates]
    if WRITTEN[code] and _is_ambiguous(dates):
        with pytest.raises(DataError, match=r"column 'Date' is ambiguous: every date fits both"):
            parse_dates(_series(written), "X.csv")
        return
    parsed = parse_dates(_series(written), "X.csv")
    assert [stamp.date() for stamp in parsed] == dates


@settings(max_examples=40, deadline=None)
@given(dates=days)
def test_a_parse_never_reorders_dates(dates: list[date]) -> None:
    # The US file of a day-first reading would shuffle days; a detected format keeps order.
    for code in ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y"):
        written = [day.strftime(code) for day in dates]
        try:
            parsed = parse_dates(_series(written), "X.csv")
        except DataError:
            continue
        assert parsed.is_monotonic_increasing and parsed.is_unique


@settings(max_examples=40, deadline=None)
@given(
    dates=st.lists(st.dates(date(2000, 1, 1), date(2030, 12, 31)), min_size=2, max_size=20),
    pair=st.sampled_from(
        [("%Y-%m-%d", "%m/%d/%Y"), ("%d/%m/%Y", "%d.%m.%Y"), ("%Y%m%d", "%d-%b-%Y")]
    ),
)
def test_two_formats_in_one_file_are_refused(dates: list[date], pair: tuple[str, str]) -> None:
    written = [day.strftime(pair[index % 2]) for index, day in enumerate(dates)]
    with pytest.raises(DataError, match=r"column 'Date' (mixes date formats|is ambiguous)"):
        parse_dates(_series(written), "X.csv")


def test_day_first_is_proven_by_a_day_past_twelve() -> None:
    parsed = parse_dates(_series(["01/02/2020", "13/02/2020"]), "X.csv")
    assert list(parsed) == [pd.Timestamp("2020-02-01"), pd.Timestamp("2020-02-13")]


def test_month_first_is_proven_by_a_second_field_past_twelve() -> None:
    parsed = parse_dates(_series(["01/02/2020", "02/13/2020"]), "X.csv")
    assert list(parsed) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-02-13")]


def test_day_first_and_month_first_in_one_file_are_refused_with_both_examples() -> None:
    with pytest.raises(DataError, match=r"'01/13/2020' is MM/DD/YYYY, '13/01/2020' is DD/MM/YYYY"):
        parse_dates(_series(["01/13/2020", "13/01/2020"]), "X.csv")


def test_an_ambiguous_column_is_refused_naming_it_and_an_example() -> None:
    with pytest.raises(DataError, match=r"X\.csv: column 'Date' is ambiguous.*'03/04/2020'"):
        parse_dates(_series(["03/04/2020", "03/05/2020"]), "X.csv")


def test_dates_whose_day_equals_their_month_are_not_ambiguous() -> None:
    parsed = parse_dates(_series(["01/01/2020", "02/02/2020"]), "X.csv")
    assert list(parsed) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-02")]


@pytest.mark.parametrize("value", ["2263-01-01", "9999-12-31", "1600-01-01", "0001-01-01"])
def test_dates_a_price_frame_cannot_hold_are_refused_by_name(value: str) -> None:
    with pytest.raises(DataError, match=rf"'{value}', outside the dates a price frame can hold"):
        parse_dates(_series(["2020-01-02", value]), "X.csv")


def test_a_parquet_date_column_out_of_range_is_refused(tmp_path: Path) -> None:
    stamps = np.array(["2020-01-02", "2300-01-02"], dtype="datetime64[s]")
    pd.DataFrame({"date": stamps, "adj_close": [1.0, 2.0]}).to_parquet(tmp_path / "X.parquet")
    with pytest.raises(DataError, match=r"outside the dates a price frame can hold"):
        read_price_file(tmp_path / "X.parquet")


@pytest.mark.parametrize("value", ["not a date", "2020-02-30", "13/13/2020", "2020-1"])
def test_a_value_that_is_no_date_is_refused(value: str) -> None:
    with pytest.raises(DataError, match=rf"does not hold dates: '{value}'"):
        parse_dates(_series(["2020-01-02", value]), "X.csv")


def test_missing_dates_stay_missing() -> None:
    parsed = parse_dates(_series(["2020-01-02", None, ""]), "X.csv")
    assert parsed[0] == pd.Timestamp("2020-01-02") and parsed[1:].isna().all()


# Numbers.


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=10**9, places=2), min_size=1, max_size=30))
def test_numbers_grouped_by_commas_read_as_the_numbers(values: list) -> None:
    written = [f"{value:,.2f}" for value in values]
    parsed = parse_numbers({"close": _series(written, "Close")}, "X.csv")["close"]
    assert parsed.tolist() == [float(value) for value in values]


@pytest.mark.parametrize("value", ["1.234,50", "12,5", "1234,56", "1.234.567", "1 234,50"])
def test_a_decimal_comma_is_refused_naming_the_column(value: str) -> None:
    with pytest.raises(DataError, match=rf"column 'Close' writes '{value}'"):
        parse_numbers({"close": _series(["10.5", value], "Close")}, "X.csv")


def test_commas_that_could_be_either_convention_are_refused() -> None:
    with pytest.raises(DataError, match=r"'1,234' and no number in the file has a decimal point"):
        parse_numbers({"close": _series(["1,234", "999"], "Close")}, "X.csv")


def test_a_decimal_point_elsewhere_in_the_file_settles_the_convention() -> None:
    columns = {
        "volume": _series(["1,234", "999"], "Volume"),
        "adj_close": pd.Series([10.25, 11.5], name="Adj Close"),
    }
    assert parse_numbers(columns, "X.csv")["volume"].tolist() == [1234.0, 999.0]


def test_text_that_is_no_number_stays_missing() -> None:
    parsed = parse_numbers({"close": _series(["null", "-", "12.5"], "Close")}, "X.csv")["close"]
    assert parsed.isna().tolist() == [True, True, False] and parsed.iloc[2] == 12.5


def test_quoted_thousands_in_a_csv_are_kept_rows_not_dropped(tmp_path: Path) -> None:
    rows = [["date", "adj_close", "volume"]]
    rows += [[f"2020-01-{day:02d}", f"{1000 + day * 100.5:,.2f}", "1,234,567"] for day in (2, 3)]
    with (tmp_path / "X.csv").open("w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_MINIMAL).writerows(rows)
    prices = CsvSource(tmp_path).fetch("X", *WIDE)
    assert prices["adj_close"].tolist() == [1201.0, 1301.5]
    assert prices["volume"].tolist() == [1234567.0, 1234567.0]


# The shared real files, rewritten as other tools write them.

REWRITES = {
    "day-first": ("%d/%m/%Y", False),
    "month-first": ("%m/%d/%Y", False),
    "day-first dots": ("%d.%m.%Y", False),
    "day-first dashes": ("%d-%m-%Y", False),
    "YYYYMMDD": ("%Y%m%d", False),
    "US with thousands": ("%m/%d/%Y", True),
    "ISO with thousands": ("%Y-%m-%d", True),
}


def _rewrite(original: Path, target: Path, code: str, thousands: bool) -> None:
    table = pd.read_csv(original)
    table["timestamp"] = pd.to_datetime(table["timestamp"], format="%Y-%m-%d").dt.strftime(code)
    if thousands:
        # Prices and volumes as a spreadsheet exports them: grouped, quoted where they hold a
        # comma. repr keeps every digit of the float, so the values read back bit for bit.
        for column in ("open", "high", "low", "close", "adjusted_close", "volume"):
            table[column] = table[column].map(_grouped)
    table.to_csv(target, index=False, quoting=csv.QUOTE_MINIMAL)


def _grouped(value: float) -> str:
    whole, _, fraction = repr(value).partition(".")
    grouped = f"{int(whole):,}"
    return f"{grouped}.{fraction}" if fraction else grouped


@pytest.mark.slow
@pytest.mark.parametrize("rewrite", sorted(REWRITES))
def test_real_files_rewritten_read_back_identical(
    sp500_sample: Path, tmp_path: Path, rewrite: str
) -> None:
    code, thousands = REWRITES[rewrite]
    originals = sorted(sp500_sample.glob("*.csv"))
    assert len(originals) == 60
    for original in originals[::6]:  # ten tickers a format keeps the fast lane fast
        _rewrite(original, tmp_path / original.name, code, thousands)
        expected = read_price_file(original)
        pd.testing.assert_frame_equal(read_price_file(tmp_path / original.name), expected)


@pytest.mark.slow  # all 60 files: about 7 s
def test_every_real_file_rewritten_day_first_reads_back_identical(
    sp500_sample: Path, tmp_path: Path
) -> None:
    for original in sorted(sp500_sample.glob("*.csv")):
        _rewrite(original, tmp_path / original.name, "%d/%m/%Y", thousands=True)
        pd.testing.assert_frame_equal(
            read_price_file(tmp_path / original.name), read_price_file(original)
        )


def test_a_real_file_cut_to_days_up_to_twelve_is_refused_as_ambiguous(
    sp500_sample: Path, tmp_path: Path
) -> None:
    table = pd.read_csv(sp500_sample / "KO.csv")
    stamps = pd.to_datetime(table["timestamp"], format="%Y-%m-%d")
    table = table[stamps.dt.day <= 12]
    table["timestamp"] = stamps[stamps.dt.day <= 12].dt.strftime("%d/%m/%Y")
    table.to_csv(tmp_path / "KO.csv", index=False)
    with pytest.raises(DataError, match=r"KO\.csv: column 'timestamp' is ambiguous"):
        CsvSource(tmp_path).fetch("KO", *WIDE)


def test_hypothesis_files_through_the_source(tmp_path: Path) -> None:
    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(dates=days, code=st.sampled_from(["%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d.%m.%Y"]))
    def check(dates: list[date], code: str) -> None:
        prices = np.linspace(1000.0, 2000.0, len(dates))
        lines = ["Date,Adj Close"]
        lines += [
            f'{day.strftime(code)},"{price:,.2f}"' for day, price in zip(dates, prices, strict=True)
        ]
        (tmp_path / "X.csv").write_text("\n".join(lines) + "\n")
        if code in ("%d/%m/%Y", "%m/%d/%Y") and _is_ambiguous(dates):
            with pytest.raises(DataError, match="ambiguous"):
                read_price_file(tmp_path / "X.csv")
            return
        frame = read_price_file(tmp_path / "X.csv")
        assert [stamp.date() for stamp in frame.index] == dates
        np.testing.assert_allclose(frame["adj_close"].to_numpy(), np.round(prices, 2))

    check()


def _written(day: date) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            f"{day.year}-{day.month}-{day.day}",
            f" {day} ",
            f"{day} 16:00",
            f"{day}T00:00Z",
            f"{day:%m/%d/%Y}",
            f"{day:%Y%m%d}",
            f"{day:%d.%m.%Y}",
        ]
    )


_CELLS = st.one_of(
    st.dates(min_value=date(1700, 1, 1), max_value=date(2250, 12, 31)).map(str),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)).flatmap(_written),
    st.sampled_from(["", "null", "2019-02-30", "1600-01-01", "2019-13-01"]),
    st.none(),
)


@given(st.lists(_CELLS, min_size=1, max_size=6))
def test_the_iso_shortcut_reads_every_column_as_the_detection_does(cells) -> None:
    values = pd.Series(cells, dtype="str", name="Date")

    def outcome(read):
        try:
            return read(values, "f.csv").tolist()
        except DataError as exc:
            return str(exc)

    assert outcome(parse_dates) == outcome(detected_dates)

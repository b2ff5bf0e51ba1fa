"""Price files whose dates or numbers could be misread, through a whole run: a day-first file
and a thousands-separated one give the same results as the ISO original; an ambiguous file, a
file mixing formats, a decimal-comma file and one dated past 2262 each fail their ticker with a
reason naming the column and the value, without a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import Result

from tests.faults.conftest import (
    DAYS,
    csv_settings,
    invoke,
    random_walk,
    read_summary,
    write_prices,
)

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each

PRICES = random_walk(0)
ISO = list(DAYS.strftime("%Y-%m-%d"))
# ticker -> (dates, prices as written)
READ_RIGHT = {
    "ISO": (ISO, [repr(float(price)) for price in PRICES]),
    "DAYFIRST": (list(DAYS.strftime("%d/%m/%Y")), [repr(float(price)) for price in PRICES]),
    "US": (list(DAYS.strftime("%m/%d/%Y")), [repr(float(price)) for price in PRICES]),
    "GROUPED": (ISO, [f'"{price * 1000:,.6f}"' for price in PRICES]),
}
AMBIGUOUS_DAYS = DAYS[DAYS.day <= 12]
# ticker -> (dates, prices, reason)
REFUSED = {
    "AMBIG": (
        list(AMBIGUOUS_DAYS.strftime("%d/%m/%Y")),
        [repr(float(price)) for price in PRICES[: len(AMBIGUOUS_DAYS)]],
        r"AMBIG\.csv: column 'date' is ambiguous: every date fits both MM/DD/YYYY and "
        r"DD/MM/YYYY \(e\.g\. '02/01/2019'",
    ),
    "MIXED": (
        [*ISO[:100], *DAYS[100:].strftime("%d/%m/%Y")],
        [repr(float(price)) for price in PRICES],
        r"MIXED\.csv: column 'date' mixes date formats",
    ),
    "COMMA": (
        ISO,
        [f'"{price:.2f}"'.replace(".", ",") for price in PRICES],
        r"COMMA\.csv: column 'adj_close' writes '\d+,\d\d': a decimal comma",
    ),
    "FUTURE": (
        [*ISO[:-1], "2263-01-02"],
        [repr(float(price)) for price in PRICES],
        r"FUTURE\.csv: column 'date' holds '2263-01-02', outside the dates a price frame can hold",
    ),
}
UNIVERSE = [*READ_RIGHT, *REFUSED]

MisreadRun = tuple[Result, Path]


@pytest.fixture(scope="module")
def misread_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MisreadRun]:
    tmp_path = tmp_path_factory.mktemp("misread")
    for ticker, (dates, prices, *_) in {**READ_RIGHT, **REFUSED}.items():
        write_prices(tmp_path / "prices", ticker, prices, dates)
    result = invoke("run", csv_settings(tmp_path, UNIVERSE), "--out", str(tmp_path / "run"))
    yield result, tmp_path


def test_the_run_exits_3_naming_the_refused_files(misread_run: MisreadRun) -> None:
    result, _ = misread_run
    assert result.exit_code == 3, result.output
    assert f"failed tickers: {', '.join(REFUSED)}" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("ticker", list(REFUSED))
def test_a_file_that_cannot_be_read_right_fails_saying_why(
    misread_run: MisreadRun, ticker: str
) -> None:
    _, tmp_path = misread_run
    row = read_summary(tmp_path / "run").set_index("ticker").loc[ticker]
    assert row["status"] == "failed"
    assert re.search(REFUSED[ticker][2], row["reason"]), row["reason"]


@pytest.mark.parametrize("ticker", ["DAYFIRST", "US"])
def test_other_date_orders_give_the_iso_files_results(misread_run: MisreadRun, ticker: str) -> None:
    _, tmp_path = misread_run
    summary = read_summary(tmp_path / "run").set_index("ticker")
    # The bootstrap intervals are seeded by the symbol: they differ by name alone.
    seeded = ("sharpe_lo", "sharpe_hi", "accuracy_lo", "accuracy_hi")
    columns = [name for name in summary.columns if name not in seeded]
    assert summary.loc[ticker, "status"] == "ok"
    pd.testing.assert_series_equal(
        summary.loc[ticker, columns], summary.loc["ISO", columns], check_names=False
    )
    daily = pd.read_parquet(tmp_path / "run" / "daily.parquet")
    ours, theirs = (
        daily[daily["ticker"] == name].drop(columns="ticker") for name in (ticker, "ISO")
    )
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
    assert not any("out of order" in note for note in _notes(tmp_path, ticker))


def test_thousands_separated_prices_keep_every_row(misread_run: MisreadRun) -> None:
    _, tmp_path = misread_run
    summary = read_summary(tmp_path / "run").set_index("ticker")
    assert summary.loc["GROUPED", "status"] == "ok"
    assert summary.loc["GROUPED", "n_days"] == summary.loc["ISO", "n_days"]
    assert summary.loc["GROUPED", "buy_hold"] == pytest.approx(summary.loc["ISO", "buy_hold"])
    assert not any("dropped" in note for note in _notes(tmp_path, "GROUPED"))


def _notes(tmp_path: Path, ticker: str) -> list[str]:
    log = (tmp_path / "run" / "run.log").read_text()
    return [line for line in log.splitlines() if f"{ticker}.csv" in line]

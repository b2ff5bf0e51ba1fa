"""Files that hold no prices: empty, a header alone, an API's error message or an HTML error
page saved as .csv, garbage saved as .parquet, no file at all. Each is a failed ticker with a
reason that says what is wrong; rows outside the range only skip their ticker; the others are
ok; the run exits 3."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import Result
from yfinance.exceptions import YFPricesMissingError

from tests.faults.conftest import (
    ScriptedYahoo,
    base_settings,
    csv_settings,
    invoke,
    read_summary,
    run_in_process,
    write_prices,
    yahoo_frame,
)

ALPHA_VANTAGE_LIMIT = (
    '{\n    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is '
    '5 calls per minute and 500 calls per day."\n}\n'
)

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each
# ticker -> (file name, content; None: no file), what the reason must say
CASES: dict[str, tuple[str | None, bytes, str]] = {
    "EMPTY": ("EMPTY.csv", b"", r"EMPTY\.csv is not a readable price table: the file is empty$"),
    "BLANK": (
        "BLANK.csv",
        b"\n \n",
        r"BLANK\.csv is not a readable price table: the file is empty",
    ),
    "HEADER": (
        "HEADER.csv",
        b"date,adj_close\n",
        r"no prices from 2019-01-02 to 2019-12-31.*no rows",
    ),
    "APIERR": (
        "APIERR.csv",
        b'{"Error Message": "Invalid API call. Please retry or visit the documentation."}\n',
        r"APIERR\.csv is not a price table: no date column.*begins "
        r"'\{\"Error Message\": \"Invalid API call\.",
    ),
    "THROTTLED": (
        "THROTTLED.csv",
        ALPHA_VANTAGE_LIMIT.encode(),
        r"THROTTLED\.csv is not a price table.*begins '\{ \"Note\": \"Thank you for using Alpha "
        r"Vantage! Our standard API call frequency is 5 calls per minute",
    ),
    "HTML": (
        "HTML.csv",
        b"<html>\n<head><title>503 Service Unavailable</title></head>\n<body>Try later</body>\n",
        r"HTML\.csv is not a price table.*begins '<html> <head><title>503 Service Unavailable",
    ),
    "BINARY": (
        "BINARY.parquet",
        b"\x00\xffnot parquet at all",
        r"BINARY\.parquet is not a readable price table",
    ),
    "MISSING": (None, b"", r"no file MISSING\.csv or MISSING\.parquet in .*prices"),
}
# Prices, but none in the range: the ticker did not trade then, so it is skipped, not failed.
NOT_TRADING = {
    "OLD": (
        "OLD.csv",
        b"date,adj_close\n2015-01-02,10.0\n2015-01-05,10.5\n",
        r"no prices from 2019-01-02 to 2019-12-31; it has 2015-01-02\.\.2015-01-05 \(2 rows\)",
    ),
}
GOOD = ("KO", "XOM")
UNIVERSE = [GOOD[0], *CASES, *NOT_TRADING, GOOD[1]]

BadRun = tuple[Result, Path]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadRun]:
    tmp_path = tmp_path_factory.mktemp("bad-files")
    prices = tmp_path / "prices"
    for seed, ticker in enumerate(GOOD):
        write_prices(prices, ticker, seed=seed)
    for name, content, _ in (*CASES.values(), *NOT_TRADING.values()):
        if name is not None:
            (prices / name).write_bytes(content)
    result = invoke(
        "run", csv_settings(tmp_path, UNIVERSE), "--quiet", "--out", str(tmp_path / "run")
    )
    yield result, tmp_path


def test_the_run_exits_3_naming_the_failed_tickers(bad_run: BadRun) -> None:
    result, _ = bad_run
    assert result.exit_code == 3, result.output
    assert f"failed tickers: {', '.join(CASES)}" in result.stderr
    assert "Traceback" not in result.output


def test_the_good_tickers_are_ok_and_in_order(bad_run: BadRun) -> None:
    _, tmp_path = bad_run
    summary = read_summary(tmp_path / "run")
    assert summary["ticker"].tolist() == UNIVERSE
    ok = summary.set_index("ticker").loc[list(GOOD)]
    assert (ok["status"] == "ok").all() and (ok["reason"] == "").all(), ok


@pytest.mark.parametrize("ticker", list(CASES))
def test_a_file_without_prices_fails_its_ticker_saying_why(bad_run: BadRun, ticker: str) -> None:
    _, tmp_path = bad_run
    row = read_summary(tmp_path / "run").set_index("ticker").loc[ticker]
    assert row["status"] == "failed"
    assert re.search(CASES[ticker][2], row["reason"]), row["reason"]
    assert not (tmp_path / "cache" / "csv" / f"{ticker}.parquet").exists()


def test_a_file_with_prices_outside_the_range_skips_its_ticker(bad_run: BadRun) -> None:
    _, tmp_path = bad_run
    summary = read_summary(tmp_path / "run").set_index("ticker")
    for ticker, (_, _, reason) in NOT_TRADING.items():
        assert summary.loc[ticker, "status"] == "skipped"
        assert re.search(reason, summary.loc[ticker, "reason"]), summary.loc[ticker, "reason"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(pd.DataFrame(), id="empty-frame"),
        pytest.param(yahoo_frame().iloc[:0], id="no-rows"),
        pytest.param(YFPricesMissingError("GONE", "(1d 2019-01-02 -> 2020-01-01)"), id="delisted"),
    ],
)
def test_a_provider_with_no_prices_fails_only_that_ticker(
    tmp_path: Path, yahoo: ScriptedYahoo, answer: object
) -> None:
    yahoo.script("KO", yahoo_frame())
    yahoo.script("GONE", answer)
    settings = base_settings(
        tmp_path,
        {
            "data.source": "yfinance",
            "data.tickers": ["KO", "GONE"],
            "data.download.requests_per_second": 1000.0,
        },
    )
    result = run_in_process(settings)
    assert result.failed_tickers == ["GONE"]
    assert result.summary["status"].tolist() == ["ok", "failed"]
    reason = result.summary.loc[1, "reason"]
    assert re.search(r"no prices from Yahoo for 'GONE' from 2019-01-02 to 2019-12-31", reason)
    assert yahoo.calls_of("GONE") == 1, "no data is permanent: not retried"

"""Re-running the same config on a warm cache asks the source for nothing and reproduces the run:
the same summary.parquet and daily.parquet, to the last bit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline.data.sources.csv_source import CsvSource
from tests.faults.conftest import (
    ScriptedYahoo,
    base_settings,
    csv_settings,
    invoke,
    manifest_of,
    write_prices,
    yahoo_frame,
)

TICKERS = ["KO", "XOM", "IBM", "AAPL"]


def run_twice(tmp_path: Path, settings: dict[str, object]) -> tuple[Path, Path]:
    run_dirs = (tmp_path / "first", tmp_path / "second")
    for run_dir in run_dirs:
        result = invoke("run", settings, "--quiet", "--out", str(run_dir))
        assert result.exit_code == 0, result.output
    return run_dirs


def assert_reproduced(first: Path, second: Path) -> None:
    for name in ("summary.parquet", "daily.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(second / name), pd.read_parquet(first / name), check_exact=True
        )
    assert manifest_of(second)["fingerprints"] == manifest_of(first)["fingerprints"]


@pytest.mark.slow
def test_a_warm_csv_run_reads_no_file_and_reproduces_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed, ticker in enumerate(TICKERS):
        write_prices(tmp_path / "prices", ticker, seed=seed)
    reads: list[str] = []
    fetch = CsvSource.fetch

    def counting_fetch(self: CsvSource, ticker: str, start: date, end: date) -> pd.DataFrame:
        reads.append(ticker)
        return fetch(self, ticker, start, end)

    monkeypatch.setattr(CsvSource, "fetch", counting_fetch)
    first, second = run_twice(tmp_path, csv_settings(tmp_path, TICKERS))

    assert sorted(reads) == sorted(TICKERS), "the first run reads each file once, the second none"
    counts = len(TICKERS)
    assert manifest_of(first)["cache"] == {"hits": 0, "fetched": counts, "refreshed": 0}
    assert manifest_of(second)["cache"] == {"hits": counts, "fetched": 0, "refreshed": 0}
    assert_reproduced(first, second)


@pytest.mark.slow
def test_a_warm_yahoo_run_sends_no_request_and_reproduces_the_results(
    tmp_path: Path, yahoo: ScriptedYahoo
) -> None:
    for seed, ticker in enumerate(TICKERS):
        yahoo.script(ticker, yahoo_frame(seed))
    settings = base_settings(
        tmp_path,
        {
            "data.source": "yfinance",
            "data.tickers": TICKERS,
            "data.download.requests_per_second": 1000.0,
        },
    )
    first, second = run_twice(tmp_path, settings)

    assert sorted(symbol for symbol, _ in yahoo.calls) == sorted(TICKERS)
    assert manifest_of(second)["cache"] == {"hits": len(TICKERS), "fetched": 0, "refreshed": 0}
    assert_reproduced(first, second)

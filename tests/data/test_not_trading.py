"""A ticker with prices, but none inside [start, end], is skipped with the reason, not failed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.config import DataConfig
from pipeline.data.cache import PriceCache
from pipeline.data.download import download_universe
from pipeline.data.sources.csv_source import CsvSource
from pipeline.data.sources.synthetic import SyntheticSource, synthetic_calendar, synthetic_history
from pipeline.errors import NotTradingError


def write_csv(directory: Path, ticker: str, first: str, days: int) -> None:
    dates = pd.bdate_range(first, periods=days)
    prices = 50.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, days)))
    frame = pd.DataFrame({"timestamp": dates.strftime("%Y-%m-%d"), "adjusted_close": prices})
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{ticker}.csv", index=False)


def csv_config(tmp_path: Path, tickers: tuple[str, ...], **extra: object) -> dict:
    data = {
        "source": "csv",
        "path": (tmp_path / "files").as_posix(),
        "tickers": list(tickers),
        "start": date(2015, 1, 1),
        "end": date(2017, 12, 31),
        "cache_dir": (tmp_path / "cache").as_posix(),
    }
    return {
        "data": data,
        "backtest": {"mode": "walk_forward", "train_days": 100},
        "execution": {"executor": "serial"},
        **extra,
    }


def download(tmp_path: Path, raw: dict) -> list[tuple[str, str, str]]:
    config = DataConfig.model_validate(raw["data"])
    report = download_universe(
        config.universe, CsvSource(config.path), PriceCache(config.cache_dir), config
    )
    return [(o.ticker, o.status, o.reason) for o in report.outcomes]


@pytest.mark.parametrize(
    ("first", "days"),
    [("2019-03-01", 300), ("2010-01-04", 400)],
    ids=["listed-after-the-range", "delisted-before-it"],
)
def test_csv_ticker_outside_the_range_is_skipped_with_its_span(
    tmp_path: Path, first: str, days: int
) -> None:
    write_csv(tmp_path / "files", "LATE", first, days)
    write_csv(tmp_path / "files", "KO", "2014-01-02", 1200)

    outcomes = download(tmp_path, csv_config(tmp_path, ("LATE", "KO")))

    (late, late_status, reason), (_, ko_status, _) = outcomes
    assert (late, late_status, ko_status) == ("LATE", "skipped", "fetched")
    assert "2015-01-01" in reason and "2017-12-31" in reason
    assert first in reason  # the span the file does have


def test_csv_source_says_not_trading_with_its_own_error(tmp_path: Path) -> None:
    write_csv(tmp_path, "LATE", "2019-03-01", 30)
    with pytest.raises(NotTradingError, match="has no prices from 2015-01-01 to 2015-12-31"):
        CsvSource(tmp_path).fetch("LATE", date(2015, 1, 1), date(2015, 12, 31))


def test_a_missing_file_still_fails(tmp_path: Path) -> None:
    write_csv(tmp_path / "files", "KO", "2014-01-02", 1200)
    outcomes = download(tmp_path, csv_config(tmp_path, ("NOPE", "KO")))
    assert [status for _, status, _ in outcomes] == ["failed", "fetched"]


def test_synthetic_late_listing_outside_the_range_is_not_trading() -> None:
    from pipeline.config import SyntheticConfig

    config = SyntheticConfig(n_tickers=50, n_days=1000, seed=0)
    source = SyntheticSource(config)
    late = next(
        f"SYN{i:03d}" for i in range(50) if synthetic_history(f"SYN{i:03d}", 0, 1000).first_day > 10
    )
    listed = synthetic_calendar(1000)[synthetic_history(late, 0, 1000).first_day].date()
    with pytest.raises(NotTradingError):
        source.fetch(late, date(2010, 1, 1), listed - pd.Timedelta(days=1))


def test_run_skips_the_ticker_and_exits_clean(tmp_path: Path) -> None:
    write_csv(tmp_path / "files", "LATE", "2019-03-01", 300)
    write_csv(tmp_path / "files", "KO", "2014-01-02", 1200)

    result = run_backtest(csv_config(tmp_path, ("LATE", "KO")))

    rows = result.summary.set_index("ticker")
    assert rows.loc["LATE", "status"] == "skipped"
    assert "no prices from 2015-01-01 to 2017-12-31" in rows.loc["LATE", "reason"]
    assert rows.loc["KO", "status"] == "ok"
    assert result.failed_tickers == []
    assert result.manifest["counts"] == {"ok": 1, "skipped": 1, "failed": 0}


def test_a_cached_file_with_no_rows_in_a_narrower_range_is_skipped(tmp_path: Path) -> None:
    write_csv(tmp_path / "files", "LATE", "2016-06-01", 300)
    wide = csv_config(tmp_path, ("LATE",))
    assert [s for _, s, _ in download(tmp_path, wide)] == ["fetched"]
    narrower = {"start": date(2015, 2, 1), "end": date(2015, 12, 31)}
    narrow = {**wide, "data": {**wide["data"], **narrower}}

    ((_, status, reason),) = download(tmp_path, narrow)

    assert status == "skipped"
    assert "2016-06-01" in reason

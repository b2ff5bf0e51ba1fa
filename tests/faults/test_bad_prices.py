"""Prices that are there but wrong: missing, infinite, zero or negative values, dates repeated or
out of order. What can be repaired without inventing a price is, with a note that reaches the
run's data-quality section; what cannot fails its ticker with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import Result

from pipeline.data.cache import PriceCache
from tests.faults.conftest import (
    DAYS,
    csv_settings,
    invoke,
    manifest_of,
    random_walk,
    read_summary,
    write_prices,
)

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each

DATES = list(DAYS.strftime("%Y-%m-%d"))
BAD_ROWS = {9: "nan", 20: "null", 31: "", 42: "inf", 53: "-inf"}  # row -> value written
SHUFFLE = np.random.default_rng(5).permutation(len(DATES))

# ticker -> note expected in the data-quality section; each is ok
REPAIRED = {
    "GAPS": (
        r"GAPS\.csv: dropped 5 rows without a date or a finite adjusted close "
        rf"\(first {DATES[9]}\)"
    ),
    "NODATE": r"NODATE\.csv: dropped 1 rows without a date or a finite adjusted close$",
    "SHUFFLED": r"SHUFFLED\.csv: dates were out of order; sorted them",
}
# ticker -> reason; each fails
UNREPAIRABLE = {
    "ZERO": rf"1 prices are zero or negative \(first {DATES[30]}: 0\.0\); log returns need "
    "positive prices",
    "NEGATIVE": rf"2 prices are zero or negative \(first {DATES[30]}: -3\.2\)",
    "REPEATED": rf"1 duplicate date\(s\), first {DATES[30]}; expected one row per trading day",
    "CONFLICT": rf"1 duplicate date\(s\), first {DATES[30]}",
}
CLEAN = ("CLEAN", "NEWEST", "GAPLESS", "SORTED")
UNIVERSE = [*CLEAN, *REPAIRED, *UNREPAIRABLE]


def write_universe(prices: Path) -> None:
    walk = random_walk(3)
    write_prices(prices, "CLEAN", seed=1)
    write_prices(prices, "NEWEST", walk[::-1], DATES[::-1])  # a layout, not a flaw: no note
    gaps = [BAD_ROWS.get(row, price) for row, price in enumerate(walk)]
    write_prices(prices, "GAPS", gaps)
    kept = [row for row in range(len(DATES)) if row not in BAD_ROWS]
    write_prices(prices, "GAPLESS", walk[kept], [DATES[row] for row in kept])
    write_prices(
        prices, "NODATE", walk, ["" if row == 77 else day for row, day in enumerate(DATES)]
    )
    write_prices(prices, "SHUFFLED", walk[SHUFFLE], [DATES[row] for row in SHUFFLE])
    write_prices(prices, "SORTED", walk)
    write_prices(prices, "ZERO", np.where(np.arange(len(walk)) == 30, 0.0, walk))
    write_prices(prices, "NEGATIVE", np.where(np.isin(np.arange(len(walk)), [30, 31]), -3.2, walk))
    write_prices(prices, "REPEATED", [*walk[:31], walk[30], *walk[31:]], [*DATES[:31], *DATES[30:]])
    conflict = [*walk[:31], walk[30] * 1.01, *walk[31:]]
    write_prices(prices, "CONFLICT", conflict, [*DATES[:31], *DATES[30:]])


PricesRun = tuple[Result, Path]


@pytest.fixture(scope="module")
def prices_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PricesRun]:
    tmp_path = tmp_path_factory.mktemp("bad-prices")
    write_universe(tmp_path / "prices")
    settings = csv_settings(tmp_path, UNIVERSE)
    yield invoke("run", settings, "--quiet", "--out", str(tmp_path / "run")), tmp_path


def test_the_run_exits_3_naming_only_the_unrepairable(prices_run: PricesRun) -> None:
    result, _ = prices_run
    assert result.exit_code == 3, result.output
    assert f"failed tickers: {', '.join(UNREPAIRABLE)}" in result.stderr


@pytest.mark.parametrize("ticker", list(UNREPAIRABLE))
def test_prices_that_cannot_be_repaired_fail_with_the_reason(
    prices_run: PricesRun, ticker: str
) -> None:
    _, tmp_path = prices_run
    row = read_summary(tmp_path / "run").set_index("ticker").loc[ticker]
    assert row["status"] == "failed"
    assert re.search(UNREPAIRABLE[ticker], row["reason"]), row["reason"]


@pytest.mark.parametrize(
    ("repaired", "reference"), [("GAPS", "GAPLESS"), ("SHUFFLED", "SORTED"), ("NEWEST", "SORTED")]
)
def test_a_repair_backtests_exactly_the_prices_left(
    prices_run: PricesRun, repaired: str, reference: str
) -> None:
    """Dropping the unusable rows (or sorting) equals a file that never had them."""
    _, tmp_path = prices_run
    summary = read_summary(tmp_path / "run").set_index("ticker")
    metrics = ["status", "n_days", "accuracy", "cum_return", "buy_hold", "sharpe"]
    assert summary.loc[repaired, "status"] == "ok"
    assert summary.loc[repaired, metrics].tolist() == summary.loc[reference, metrics].tolist()


@pytest.mark.parametrize("ticker", list(REPAIRED))
def test_a_repair_is_noted_with_the_cached_prices(prices_run: PricesRun, ticker: str) -> None:
    """The note travels with the cache file, so every run using the file can report it."""
    _, tmp_path = prices_run
    cached = PriceCache(tmp_path / "cache").read("csv", ticker)
    assert cached is not None
    assert any(re.search(REPAIRED[ticker], note) for note in cached.notes), cached.notes


@pytest.mark.parametrize("ticker", CLEAN)
def test_clean_prices_carry_no_note(prices_run: PricesRun, ticker: str) -> None:
    _, tmp_path = prices_run
    cached = PriceCache(tmp_path / "cache").read("csv", ticker)
    assert cached is not None and cached.notes == ()
    assert ticker not in manifest_of(tmp_path / "run")["data_warnings"]


@pytest.mark.parametrize("ticker", list(REPAIRED))
def test_a_repair_reaches_the_manifest_and_both_reports(prices_run: PricesRun, ticker: str) -> None:
    _, tmp_path = prices_run
    run_dir = tmp_path / "run"
    notes = manifest_of(run_dir)["data_warnings"].get(ticker, [])
    assert any(re.search(REPAIRED[ticker], note) for note in notes), notes
    for report in ("report.md", "report.html"):
        text = (run_dir / report).read_text()
        assert re.search(REPAIRED[ticker].rstrip("$"), text), report

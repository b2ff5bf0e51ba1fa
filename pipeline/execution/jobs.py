"""The unit of work every executor runs: read one ticker's cached prices, backtest them.

Workers receive a `TickerJob` (a symbol and a file path: a few hundred bytes) rather than a
pickled frame, and read the Parquet file themselves; this is the I/O edge of the backtest stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.backtest.result import TickerResult
from pipeline.backtest.shared import SharedPrices
from pipeline.backtest.task import backtest_resuming
from pipeline.config import BacktestSettings
from pipeline.data.dates import between
from pipeline.data.quality import repair_prices
from pipeline.data.results_store import ResultsSlot, backtest_with_store
from pipeline.data.sources.base import ADJ_CLOSE, INDEX_NAME
from pipeline.data.tables import read_parquet


@dataclass(frozen=True, slots=True)
class Variant:
    """Another configuration of a job's ticker, on the same prices: its settings and its
    results-store entry (None: no store)."""

    settings: BacktestSettings
    results: ResultsSlot | None = None


@dataclass(frozen=True, slots=True)
class TickerJob:
    """One ticker to backtest. `settings`, when given, replace the executor's for this job, so
    one executor (one pool, one Dask cluster) can run jobs of several configurations.
    `variants` are further configurations of the same ticker and prices run by the same task,
    which reads and cleans the prices and builds each design matrix once for all of them; their
    results come back in the job's result's `variants`, in order."""

    ticker: str
    path: Path
    start: date
    end: date
    settings: BacktestSettings | None = None
    results: ResultsSlot | None = None  # the results store's entry; None: no store
    # (first, last, factor): adjusted closes first..last multiplied by factor before the
    # backtest, the data-quality repairs of `data.quality = "repair"`.
    repairs: tuple[tuple[date, date, float], ...] = ()
    variants: tuple[Variant, ...] = ()


def read_adjusted_close(path: Path, start: date, end: date) -> pd.Series:
    """The adjusted close of one cached ticker between `start` and `end`, both inclusive."""
    table = read_parquet(path, columns=[INDEX_NAME, ADJ_CLOSE])
    dates = pd.DatetimeIndex(table.column(INDEX_NAME).to_numpy(), name=INDEX_NAME)
    prices = pd.Series(table.column(ADJ_CLOSE).to_numpy(), index=dates, name=ADJ_CLOSE)
    return between(prices, start, end)


def price_fingerprint(prices: pd.Series) -> dict[str, Any]:
    """What identifies the prices a backtest used: two runs with equal fingerprints saw the
    same data. Hashes the dates and adjusted closes inside the configured window only, so a
    refresh that appends days past `end` leaves it unchanged."""
    digest = hashlib.sha256()
    digest.update(prices.index.as_unit("ns").asi8.tobytes())
    digest.update(prices.to_numpy(dtype="float64").tobytes())
    return {
        "first_date": prices.index[0].date().isoformat() if len(prices) else None,
        "last_date": prices.index[-1].date().isoformat() if len(prices) else None,
        "rows": len(prices),
        "sha256": digest.hexdigest(),
    }


def run_job(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """Backtest one ticker from its cache file, reusing and updating its stored result when the
    job names one; a file that cannot be read fails that ticker."""
    try:
        prices = read_adjusted_close(job.path, job.start, job.end)
    except (OSError, KeyError, ValueError) as exc:
        return TickerResult(job.ticker, "failed", f"cannot read cached prices: {exc}")
    if job.repairs:
        prices = repair_prices(prices, job.repairs)
    shared = SharedPrices(prices)
    fingerprint = price_fingerprint(prices)
    result = _backtest(job.ticker, shared, settings, job.results)
    variants = tuple(
        replace(_backtest(job.ticker, shared, variant.settings, variant.results),
                fingerprint=fingerprint)
        for variant in job.variants
    )  # fmt: skip
    return replace(result, fingerprint=fingerprint, variants=variants)


def _backtest(
    ticker: str, shared: SharedPrices, settings: BacktestSettings, slot: ResultsSlot | None
) -> TickerResult:
    if slot is None:
        return backtest_resuming(ticker, shared.prices, settings, shared=shared)[0]
    return backtest_with_store(ticker, shared.prices, settings, slot, shared=shared)

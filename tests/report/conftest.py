"""Small hand-built runs in the exact shapes the runner writes (result.py, runner.py, manifest.py).

The summary rows carry stand-in figures chosen for easy hand computation; they are not derived
from the daily rows (the aggregates never cross-check the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline import manifest as run_manifest
from pipeline.backtest.result import DAILY_COLUMNS, SUMMARY_COLUMNS, TickerResult
from pipeline.config import build_config
from pipeline.outputs import write_tables
from pipeline.report.aggregates import compute_aggregates

DAYS = pd.to_datetime(["2021-03-01", "2021-03-02", "2021-03-03"])

# Three ok tickers and one failed one. Hand-computed aggregates are in test_aggregates.py.
OK_ROWS: dict[str, dict[str, Any]] = {
    "AAA": dict(n_days=3, accuracy=0.60, cum_return=1.20, cum_return_net=1.10, buy_hold=1.00,
                sharpe=1.0, max_drawdown=0.10, majority_rate=0.50, p_value=0.01),
    "BBB": dict(n_days=3, accuracy=0.50, cum_return=0.90, cum_return_net=0.85, buy_hold=1.10,
                sharpe=-0.5, max_drawdown=0.20, majority_rate=0.55, p_value=0.04),
    "CCC": dict(n_days=2, accuracy=0.55, cum_return=1.50, cum_return_net=1.40, buy_hold=1.45,
                sharpe=2.0, max_drawdown=0.05, majority_rate=0.52, p_value=0.50),
}  # fmt: skip
FAILED_ROWS: dict[str, str] = {"DDD": "download: HTTP 404 (after 4 tries)"}

# Per ticker: (first day index, positions, asset log returns); strategy = position * asset.
DAILY_ROWS: dict[str, tuple[int, list[int], list[float]]] = {
    "AAA": (0, [1, -1, 1], [0.01, 0.02, -0.01]),
    "BBB": (0, [1, 1, 0], [-0.02, 0.03, 0.01]),
    "CCC": (1, [-1, -1], [-0.03, 0.00]),
}


def ok_result(ticker: str, metrics: Mapping[str, Any], daily: pd.DataFrame | None) -> TickerResult:
    first = daily["date"].iloc[0].date().isoformat() if daily is not None else "2021-03-01"
    last = daily["date"].iloc[-1].date().isoformat() if daily is not None else "2021-03-03"
    full = dict(hit_rate=metrics["accuracy"], turnover=1.0, exposure=1.0, mode="walk_forward",
                first_day=first, last_day=last)  # fmt: skip
    full.update(metrics)
    return TickerResult(ticker, "ok", metrics=full, daily=daily)


def daily_frame(first: int, positions: Sequence[int], asset: Sequence[float]) -> pd.DataFrame:
    """One ticker's daily rows as the task builds them (task._ok_result)."""
    position = np.asarray(positions, dtype=np.int8)
    asset_returns = np.asarray(asset, dtype=np.float64)
    return pd.DataFrame(
        {
            "date": DAYS[first : first + len(positions)],
            "position": position,
            "asset_log_return": asset_returns,
            "strategy_log_return": position * asset_returns,
        }
    )[list(DAILY_COLUMNS)]


def summary_frame(results: Sequence[TickerResult]) -> pd.DataFrame:
    """As runner.assemble_summary builds it."""
    summary = pd.DataFrame([r.summary_row() for r in results], columns=list(SUMMARY_COLUMNS))
    summary["n_days"] = summary["n_days"].astype("Int64")
    summary["reason"] = summary["reason"].fillna("")
    return summary


def combined_daily(results: Sequence[TickerResult]) -> pd.DataFrame:
    """As runner.assemble_daily builds it."""
    frames = [r.daily.assign(ticker=r.ticker) for r in results if r.daily is not None]
    columns = ["ticker", *DAILY_COLUMNS]
    if not frames:
        return pd.DataFrame({column: [] for column in columns})
    return pd.concat(frames, ignore_index=True)[columns]


def sample_results(
    ok_rows: Mapping[str, Mapping[str, Any]] = OK_ROWS,
    failed: Mapping[str, str] = FAILED_ROWS,
    skipped: Mapping[str, str] | None = None,
) -> list[TickerResult]:
    results = [
        ok_result(ticker, metrics, daily_frame(*DAILY_ROWS.get(ticker, (0, [1, 1, 1], [0.01] * 3))))
        for ticker, metrics in ok_rows.items()
    ]
    results += [TickerResult(t, "failed", reason) for t, reason in failed.items()]
    results += [TickerResult(t, "skipped", reason) for t, reason in (skipped or {}).items()]
    return results


def sample_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    results = sample_results()
    return summary_frame(results), combined_daily(results)


def write_run(
    run_dir: Path,
    results: Sequence[TickerResult],
    *,
    mode: str = "walk_forward",
    cost_bps: float = 10.0,
    overrides: Sequence[str] = (),
    warnings: Mapping[str, list[str]] | None = None,
    fingerprints: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A run directory as runner.run_pipeline writes it, with a config whose cache never exists."""
    config = build_config(
        {
            "data": {
                "source": "synthetic",
                "start": date(2021, 1, 4),
                "end": date(2021, 3, 3),
                "cache_dir": str(run_dir.parent / "cache-that-does-not-exist"),
            },
            "backtest": {"mode": mode, "cost_bps": cost_bps},
        },
        overrides,
    )
    summary, daily = summary_frame(results), combined_daily(results)
    write_tables(run_dir, summary, daily)
    manifest = run_manifest.build_manifest(
        config,
        started_at=datetime(2021, 3, 4, 6, 0, tzinfo=UTC),
        timings={"download": 0.1, "backtest": 1.0, "report": 0.0},
        execution={"executor": "serial", "workers": 1, "chunksize": 1},
        summary=summary,
        cache_counts={"hits": 3, "fetched": 0, "refreshed": 0},
        warnings=dict(warnings or {}),
        aggregates=compute_aggregates(summary, daily, cost_bps=cost_bps).to_dict(),
    )
    if fingerprints is not None:
        manifest["fingerprints"] = {t: dict(f) for t, f in fingerprints.items()}
    run_manifest.write_manifest(run_dir, manifest)
    return run_dir


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """make_run(name, results=None, **write_run options) -> a run directory under tmp_path."""

    def make(name: str = "run", results: Sequence[TickerResult] | None = None, **options: Any):
        return write_run(tmp_path / name, results or sample_results(), **options)

    return make

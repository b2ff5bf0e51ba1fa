"""What the per-ticker task returns, under every executor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pandas as pd

Status = Literal["ok", "skipped", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)

# Columns of summary.csv / summary.parquet, in order (CONTRACT.md names the first ten).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "ticker",
    "status",
    "reason",
    "n_days",
    "accuracy",
    "cum_return",
    "cum_return_net",
    "buy_hold",
    "sharpe",
    "max_drawdown",
    "hit_rate",
    "turnover",
    "exposure",
    "majority_rate",
    "p_value",
    "mode",
    "first_day",
    "last_day",
    "sharpe_lo",
    "sharpe_hi",
    "accuracy_lo",
    "accuracy_hi",
    "best_baseline",
    "edge_sharpe",
    "edge_accuracy",
    "long_sharpe",
    "majority_sharpe",
    "momentum_sharpe",
    "reversal_sharpe",
    "block_length",
)

# Columns of one ticker's daily frame; `ticker` is added when the frames are combined.
DAILY_COLUMNS: tuple[str, ...] = (
    "date",
    "position",
    "asset_log_return",
    "strategy_log_return",
)
# Baselines' positions (METHOD.md, "Baselines"), beside the model's: long is +1 and reversal
# is -momentum, so these two give every baseline's daily returns. Optional for readers: run
# directories written before they existed lack them.
BASELINE_DAILY_COLUMNS: tuple[str, ...] = ("majority_position", "momentum_position")


@dataclass(frozen=True, slots=True)
class TickerResult:
    """One ticker's outcome.

    `metrics` holds the numeric summary fields (n_days, accuracy, ...; see SUMMARY_COLUMNS);
    it is empty unless status is "ok". `daily` is None unless status is "ok"; its `date` is the
    day the position is held (METHOD.md: day t+1 for the decision taken at the close of day t).
    `warnings` are data-quality notes (prices cleaned, suspicious jumps) for the report.
    `fingerprint` identifies the prices used (first/last date, rows, sha256), for the manifest.
    `signal` (ok only) is the position for the next session with its as_of day, mode,
    refit_date, ...; `reuse` says how many rows came from the results store and, for a full
    computation, why (see pipeline.backtest.incremental). `variants` are the results of the
    job's further configurations of the same ticker (pipeline.execution.jobs.TickerJob).
    """

    ticker: str
    status: Status
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    daily: pd.DataFrame | None = None
    warnings: tuple[str, ...] = ()
    fingerprint: dict[str, Any] | None = None
    signal: dict[str, Any] | None = None
    reuse: dict[str, Any] | None = None
    variants: tuple[TickerResult, ...] = ()  # a job's further configurations (TickerJob)

    def summary_row(self) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(self.metrics)
        row.update(ticker=self.ticker, status=self.status, reason=self.reason)
        return row


def count_statuses(summary: pd.DataFrame) -> dict[str, int]:
    """How many summary rows have each status, every status present (0 when none)."""
    counts = summary["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in STATUSES}

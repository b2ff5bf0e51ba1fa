"""One ticker's baselines and intervals: what the per-ticker task adds to its summary row.

Alignment as in backtest.metrics: one value per evaluation row t.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.backtest.metrics import accuracy, sharpe_ratio, strategy_log_returns
from pipeline.config import IntervalSettings
from pipeline.statistics.baselines import best_baseline, edge
from pipeline.statistics.bootstrap import (
    Interval,
    TickerIntervals,
    ticker_intervals,
    ticker_seed,
)


def baseline_metrics(
    baselines: Mapping[str, NDArray], targets: NDArray, asset_log_returns: NDArray
) -> dict[str, dict[str, float]]:
    """sharpe and accuracy of each baseline's positions on the model's evaluation rows."""
    return {
        name: {
            "sharpe": sharpe_ratio(strategy_log_returns(positions, asset_log_returns)),
            "accuracy": accuracy(positions, targets),
        }
        for name, positions in baselines.items()
    }


def assess_ticker(
    ticker: str,
    positions: NDArray,
    targets: NDArray,
    asset_log_returns: NDArray,
    baselines: Mapping[str, NDArray],
    intervals: IntervalSettings,
    known: TickerIntervals | None = None,
) -> dict[str, Any]:
    """Summary fields: intervals of sharpe and accuracy, the best baseline and the edges.

    best_baseline is the baseline with the highest Sharpe ratio; edge_sharpe and edge_accuracy
    are the model's value less the best baseline's value in each metric (METHOD.md). `known`:
    the intervals an earlier run drew from these very positions and returns (the bootstrap is
    three quarters of an unchanged ticker's cost, and deterministic), used instead of drawing.
    """
    model_returns = strategy_log_returns(positions, asset_log_returns)
    model_sharpe = sharpe_ratio(model_returns)
    model_accuracy = accuracy(positions, targets)
    scores = baseline_metrics(baselines, targets, asset_log_returns)
    sharpes = {name: score["sharpe"] for name, score in scores.items()}
    found = known or ticker_intervals(
        model_returns,
        np.asarray(positions) == np.asarray(targets),
        n_samples=intervals.samples,
        confidence=intervals.confidence,
        seed=ticker_seed(intervals.seed, ticker),
    )
    return {
        "sharpe_lo": found.sharpe.low,
        "sharpe_hi": found.sharpe.high,
        "accuracy_lo": found.accuracy.low,
        "accuracy_hi": found.accuracy.high,
        "best_baseline": best_baseline(sharpes),
        "edge_sharpe": edge(model_sharpe, sharpes),
        "edge_accuracy": edge(
            model_accuracy, {name: score["accuracy"] for name, score in scores.items()}
        ),
        **{f"{name}_sharpe": value for name, value in sharpes.items()},
        "block_length": found.block_length if math.isfinite(found.block_length) else math.nan,
    }


def intervals_of(metrics: Mapping[str, Any]) -> TickerIntervals:
    """The intervals `assess_ticker` put in a summary row, back as TickerIntervals."""
    return TickerIntervals(
        sharpe=Interval(float(metrics["sharpe_lo"]), float(metrics["sharpe_hi"])),
        accuracy=Interval(float(metrics["accuracy_lo"]), float(metrics["accuracy_hi"])),
        block_length=float(metrics["block_length"]),
    )

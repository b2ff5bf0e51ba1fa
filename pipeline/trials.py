"""The trials of an output directory: `<report.out_dir>/trials.jsonl`, one line per run and per
sweep point, so that a deflated Sharpe ratio counts every idea tried on the same universe and
date range (METHOD.md, "Selection bias"), failed ideas included.

The file is a `pipeline.jsonlines` file: concurrent runs never interleave their lines, and a
damaged line costs only itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.backtest.metrics import sharpe_ratio
from pipeline.config import Config
from pipeline.errors import OutputError, UnsafePathError
from pipeline.jsonlines import append_record, read_records
from pipeline.statistics.portfolio import finite_days, portfolio_statistics
from pipeline.statistics.sharpe import return_moments
from pipeline.statistics.trials import (
    comparable_trials,
    moments_fields,
    numbers_hash,
    trial_key,
    trial_sharpes,
)

TRIALS_NAME = "trials.jsonl"

logger = logging.getLogger(__name__)


def trial_record(config: Config, curves: pd.DataFrame, kind: str = "run") -> dict[str, Any]:
    """One trial: what identifies it and the moments of its portfolio, gross and net."""
    gross = finite_days(curves["strategy"]) if "strategy" in curves else finite_days([])
    net = finite_days(curves["strategy_net"]) if "strategy_net" in curves else gross
    return {
        "kind": kind,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": numbers_hash(config),
        **trial_key(config),
        "cost_bps": config.backtest.cost_bps,
        "sharpe": sharpe_ratio(gross),
        **moments_fields(return_moments(gross)),
        **moments_fields(return_moments(net), "_net"),
    }


def trials_path(out_dir: Path) -> Path:
    return Path(out_dir) / TRIALS_NAME


def append_trials(out_dir: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append each record as one line; OutputError when the file cannot be written."""
    for record in records:
        append_record(trials_path(out_dir), record, within=Path(out_dir))


def read_trials(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable trial, oldest first; damaged lines are skipped with a warning, and an
    unreadable file counts as none (with a warning): the DSR then counts this run alone."""
    try:
        return read_records(trials_path(out_dir))
    except OSError as exc:
        logger.warning("cannot read the trials of %s: %s", out_dir, exc)
        return []


def statistics_block(
    config: Config, curves: pd.DataFrame, records: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The manifest's `statistics`: the portfolio's Sharpe, interval, PSR, DSR over the trials
    of the same universe and range among `records` (this run's own record included), and the
    same keys with `_net` when costs were given."""
    this = trial_record(config, curves)
    trials = comparable_trials(records, trial_key(config))
    trials.setdefault(this["config_hash"], this)  # not recorded (no run directory): count it
    intervals = config.report.intervals
    block = portfolio_statistics(
        curves.get("strategy", pd.Series(dtype="float64")),
        trial_sharpes(trials, "sr"),
        intervals,
    )
    if config.backtest.cost_bps > 0 and "strategy_net" in curves:
        block.update(
            portfolio_statistics(
                curves["strategy_net"], trial_sharpes(trials, "sr_net"), intervals, "_net"
            )
        )
    block["config_hash"] = this["config_hash"]
    block["universe_hash"] = this["universe_hash"]
    return block


def record_and_assess(config: Config, curves: pd.DataFrame, kind: str = "run") -> dict[str, Any]:
    """Append this run's trial under report.out_dir, then assess it over every trial there."""
    out_dir = config.report.out_dir
    try:
        append_trials(out_dir, [trial_record(config, curves, kind)])
    except (OutputError, UnsafePathError) as exc:  # the results matter more than the log line
        logger.warning("this run is not recorded as a trial: %s", exc)
    return statistics_block(config, curves, read_trials(out_dir))

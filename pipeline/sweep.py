"""`pipeline sweep`: every combination of a grid of settings on one cache and one executor.

The grid's configurations x the universe's tickers run as tasks on ONE executor (pool or Dask):
the data stage downloads once, every job carries its configuration's settings, and the workers
start once. Each configuration's equal-weight portfolio is recorded as a trial; its DSR counts
every trial of the universe and range, the sweep's own configurations included, and the
probability of backtest overfitting (CSCV) is computed over the sweep's portfolios.

Shared work: the jobs of one ticker read the same cache file and build the same design
matrix; at a few milliseconds each against a few hundred for a walk-forward fit, sharing them
would save under 2% and would need a task of several configurations, so it is not done.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import trials
from pipeline.config import Config, load_config, parse_override
from pipeline.data.cache import PriceCache
from pipeline.errors import ConfigError
from pipeline.execution.executors import make_executor
from pipeline.report.aggregates import portfolio_returns
from pipeline.runner import (
    assemble_daily,
    assemble_summary,
    plan_jobs,
    run_backtest_stage,
    run_data_stage,
)
from pipeline.statistics.pbo import DEFAULT_BLOCKS, probability_of_overfitting
from pipeline.statistics.trials import numbers_hash

logger = logging.getLogger(__name__)

# Sections a grid may vary: those that change a ticker's numbers, not which prices are used.
GRID_SECTIONS = ("features", "model", "backtest")
SWEEP_CSV = "sweep.csv"
PORTFOLIOS = "portfolios.parquet"
SWEEP_JSON = "sweep.json"


@dataclass(frozen=True)
class GridPoint:
    """One configuration of the sweep: its grid values and its resolved config."""

    values: Mapping[str, Any]
    config: Config

    @property
    def config_hash(self) -> str:
        return numbers_hash(self.config)


@dataclass(frozen=True)
class SweepOutcome:
    table: pd.DataFrame  # sweep.csv
    portfolios: pd.DataFrame  # portfolios.parquet
    summary: dict[str, Any]  # sweep.json
    logits: tuple[float, ...]
    exit_code: int


def parse_grid(assignments: Sequence[str]) -> dict[str, list[Any]]:
    """`KEY=LIST` (LIST a TOML array) per grid axis; ConfigError names a bad one."""
    grid: dict[str, list[Any]] = {}
    for assignment in assignments:
        path, values = parse_override(assignment)
        key = ".".join(path)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid {assignment!r}: expected KEY=LIST with a TOML array, "
                              f"e.g. --grid features.lags=[3,6]")  # fmt: skip
        if path[0] not in GRID_SECTIONS or len(path) < 2:
            raise ConfigError(f"--grid {key}: a sweep varies {', '.join(GRID_SECTIONS)} keys "
                              "only; the universe, dates and execution are shared")  # fmt: skip
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        grid[key] = values
    if not grid:
        raise ConfigError("pipeline sweep needs at least one --grid KEY=LIST")
    return grid


def toml_value(value: Any) -> str:
    """A value as TOML text for --set (a date as a bare date, the rest as JSON is TOML)."""
    if isinstance(value, date):
        return value.isoformat()
    return json.dumps(value)


def grid_points(
    source: Config | Path | str | None, overrides: Sequence[str], grid: Mapping[str, list[Any]]
) -> list[GridPoint]:
    """Every combination, validated now: a bad value fails before any work starts."""
    points = []
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination, strict=True))
        assignments = [f"{key}={toml_value(value)}" for key, value in values.items()]
        points.append(GridPoint(values, load_config(source, [*overrides, *assignments])))
    hashes = [point.config_hash for point in points]
    if len(set(hashes)) < len(hashes):
        raise ConfigError("--grid gives the same configuration twice (a value repeated?)")
    return points


def run_sweep(
    points: Sequence[GridPoint],
    out_dir: Path,
    *,
    n_blocks: int = DEFAULT_BLOCKS,
    show_progress: bool = True,
) -> SweepOutcome:
    """Run every point on one executor, record the trials, write the sweep's files."""
    base = points[0].config
    cache = PriceCache(base.data.cache_dir)
    started = time.perf_counter()
    n_jobs = len(points) * len(base.data.universe)
    with (
        cache.lock(),
        make_executor(base.execution, base.backtest_settings, n_jobs) as executor,
    ):
        downloads = run_data_stage(base, cache, show_progress)
        # plan_jobs per point: each job's results-store entry is keyed by its own settings.
        planned = [plan_jobs(point.config, downloads) for point in points]
        jobs = [
            replace(job, settings=point.config.backtest_settings)
            for point, point_jobs in zip(points, planned, strict=True)
            for job in point_jobs
        ]
        results, execution = run_backtest_stage(jobs, executor, show_progress)
    per_point = len(planned[0])
    curves, rows = {}, []
    for number, point in enumerate(points):
        chunk = results[number * per_point : (number + 1) * per_point]
        summary = assemble_summary(base.data.universe, downloads, chunk)
        daily = assemble_daily(chunk)
        curve = portfolio_returns(daily, point.config.backtest.cost_bps)
        curves[point.config_hash] = curve
        rows.append(_counts(point, summary))
    records = [
        trials.trial_record(point.config, curves[point.config_hash], "sweep") for point in points
    ]
    trials.append_trials(base.report.out_dir, records)
    recorded = trials.read_trials(base.report.out_dir)
    for point, row in zip(points, rows, strict=True):
        stats = trials.statistics_block(point.config, curves[point.config_hash], recorded)
        row.update(_statistics_columns(stats, point.config.backtest.cost_bps > 0))
    table = pd.DataFrame(rows)
    portfolios = pd.DataFrame(
        {name: curve["strategy"] for name, curve in curves.items()}
    ).sort_index()
    portfolios.index.name = "date"
    pbo, logits = _pbo(portfolios, n_blocks)
    summary = {
        "n_configs": len(points),
        "pbo": pbo,
        "s_blocks": n_blocks,
        "grid": {key: [point.values[key] for point in points] for key in points[0].values},
        "grid_values": _grid_values(points),
        "n_trials": int(table["n_trials"].max()) if len(table) else 0,
        "n_common_days": int(portfolios.dropna().shape[0]),
        "tickers": len(base.data.universe),
        "execution": execution,
        "seconds": round(time.perf_counter() - started, 3),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    failed = int(table["failed"].sum()) if len(table) else 0
    outcome = SweepOutcome(table, portfolios, summary, tuple(logits), 3 if failed else 0)
    write_sweep(out_dir, outcome)
    return outcome


def _grid_values(points: Sequence[GridPoint]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for point in points:
        for key, value in point.values.items():
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return values


def _counts(point: GridPoint, summary: pd.DataFrame) -> dict[str, Any]:
    status = summary["status"]
    return {
        "config_hash": point.config_hash,
        **{
            key: toml_value(value) if isinstance(value, list | dict) else value
            for key, value in point.values.items()
        },
        "ok": int((status == "ok").sum()),
        "skipped": int((status == "skipped").sum()),
        "failed": int((status == "failed").sum()),
    }


def _statistics_columns(stats: Mapping[str, Any], with_costs: bool) -> dict[str, Any]:
    columns = {
        "sharpe": stats["portfolio_sharpe"],
        "sharpe_lo": stats["portfolio_sharpe_lo"],
        "sharpe_hi": stats["portfolio_sharpe_hi"],
        "psr": stats["psr"],
        "dsr": stats["dsr"],
        "n_trials": stats["n_trials"],
    }
    if with_costs:
        columns.update(sharpe_net=stats["portfolio_sharpe_net"], dsr_net=stats["dsr_net"])
    return columns


def _pbo(portfolios: pd.DataFrame, n_blocks: int) -> tuple[float | None, list[float]]:
    """PBO over the days every configuration has a return; None when CSCV cannot run."""
    common = portfolios.dropna()
    try:
        result = probability_of_overfitting(common.to_numpy(), n_blocks)
    except ValueError as exc:
        logger.warning("no PBO: %s", exc)
        return None, []
    return result.pbo, [float(x) for x in result.logits]


def write_sweep(out_dir: Path, outcome: SweepOutcome) -> list[Path]:
    """sweep.csv, portfolios.parquet, sweep.json and report.html, each written atomically."""
    from pipeline.outputs import atomic_write, atomic_write_text
    from pipeline.report.sweep_page import render_sweep_report

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / SWEEP_CSV, out_dir / PORTFOLIOS, out_dir / SWEEP_JSON]
    atomic_write_text(paths[0], outcome.table.to_csv(index=False))
    atomic_write(paths[1], lambda tmp: outcome.portfolios.to_parquet(tmp))
    plain = {**outcome.summary, "logits": list(outcome.logits)}
    atomic_write_text(paths[2], json.dumps(plain, indent=2, default=str) + "\n")
    html = render_sweep_report(outcome.table, outcome.summary, list(outcome.logits))
    atomic_write_text(out_dir / "report.html", html)
    return [*paths, out_dir / "report.html"]

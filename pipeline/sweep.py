"""`pipeline sweep`: every combination of a grid of settings on one cache and one executor.

The grid's configurations x the universe's tickers run as tasks on ONE executor (pool or Dask):
the data stage downloads once, every job carries its configuration's settings, and the workers
start once. Each configuration's equal-weight portfolio is recorded as a trial; its DSR counts
every trial of the universe and range, the sweep's own configurations included, and the
probability of backtest overfitting (CSCV) is computed over the sweep's portfolios.

Shared work: the design matrix of a ticker depends on its prices and `features` only, not on
the model or the backtest settings. The configurations that share the feature settings are run
on each ticker by one job (the same `run_job` task every executor runs, with the others as the
job's `variants`): it reads the cache file, cleans the prices and builds the design matrix
once, then fits each configuration. A number given as `execution.task_timeout_seconds` is per
configuration, so such a job may run that long times its number of configurations.
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
from pipeline.backtest.result import TickerResult
from pipeline.config import Config, ExecutionConfig, load_config, parse_override
from pipeline.data.cache import PriceCache
from pipeline.errors import ConfigError
from pipeline.execution.executors import make_executor
from pipeline.execution.jobs import TickerJob, Variant
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
    groups = feature_groups(points)
    n_jobs = len(groups) * len(base.data.universe)
    execution_config = per_job_timeout(base, max(len(group) for group in groups))
    with (
        cache.lock(),
        make_executor(execution_config, base.backtest_settings, n_jobs) as executor,
    ):
        downloads = run_data_stage(base, cache, show_progress)
        # plan_jobs per point: each job's results-store entry is keyed by its own settings.
        planned = [plan_jobs(point.config, downloads) for point in points]
        jobs = grouped_jobs(points, planned, groups)
        results, execution = run_backtest_stage(jobs, executor, show_progress)
    per_point = ungrouped_results(results, groups, len(points))
    curves, rows = {}, []
    for point, chunk in zip(points, per_point, strict=True):
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


def feature_groups(points: Sequence[GridPoint]) -> list[list[int]]:
    """The points' numbers grouped by their feature settings, in grid order."""
    groups: dict[str, list[int]] = {}
    for number, point in enumerate(points):
        groups.setdefault(point.config.features.model_dump_json(), []).append(number)
    return list(groups.values())


def grouped_jobs(
    points: Sequence[GridPoint],
    planned: Sequence[Sequence[TickerJob]],
    groups: Sequence[Sequence[int]],
) -> list[TickerJob]:
    """One job per feature group and ticker: the group's first point's settings, the others'
    as its variants (each with its own results-store entry)."""
    jobs = []
    for group in groups:
        first, others = group[0], group[1:]
        for position, job in enumerate(planned[first]):
            variants = []
            for number in others:
                twin = planned[number][position]
                if (twin.ticker, twin.path, twin.repairs) != (job.ticker, job.path, job.repairs):
                    raise RuntimeError("sweep points planned different jobs for one ticker")
                variants.append(Variant(points[number].config.backtest_settings, twin.results))
            settings = points[first].config.backtest_settings
            jobs.append(replace(job, settings=settings, variants=tuple(variants)))
    return jobs


def ungrouped_results(
    results: Sequence[TickerResult], groups: Sequence[Sequence[int]], n_points: int
) -> list[list[TickerResult]]:
    """Each point's results in ticker order, from `grouped_jobs`' jobs' results. A job that
    failed as a whole (its task raised) fails the ticker in every configuration of its group."""
    per_point: list[list[TickerResult]] = [[] for _ in range(n_points)]
    per_group = len(results) // len(groups) if groups else 0
    for number, group in enumerate(groups):
        for result in results[number * per_group : (number + 1) * per_group]:
            lead = replace(result, variants=())
            found = result.variants if len(result.variants) == len(group) - 1 else None
            for place, point in enumerate(group):
                if place == 0 or found is None:
                    per_point[point].append(lead)
                else:
                    per_point[point].append(found[place - 1])
    return per_point


def per_job_timeout(config: Config, group_size: int) -> ExecutionConfig:
    """The execution settings with a numeric task timeout scaled to a job's configurations."""
    timeout = config.execution.task_timeout_seconds
    if not isinstance(timeout, float) or group_size <= 1:
        return config.execution
    return config.execution.model_copy(update={"task_timeout_seconds": timeout * group_size})


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

"""The one place that wires the pipeline: download -> backtest -> outputs.

`run_pipeline` is what the CLI calls and what a notebook calls (through `pipeline.run_backtest`);
it returns frames and a manifest, and writes them only when it is given a run directory.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import manifest as run_manifest
from pipeline.backtest.incremental import settings_key
from pipeline.backtest.result import (
    BASELINE_DAILY_COLUMNS,
    DAILY_COLUMNS,
    SUMMARY_COLUMNS,
    TickerResult,
)
from pipeline.backtest.speed import speed_warnings
from pipeline.config import Config, config_warnings, load_config
from pipeline.data.cache import PriceCache
from pipeline.data.download import (
    DownloadReport,
    TickerDownload,
    download_universe,
    quality_record,
)
from pipeline.data.results_store import remove_leftovers, results_slot
from pipeline.data.sources.registry import make_source
from pipeline.execution.executors import Executor, collect_results, make_executor
from pipeline.execution.forked import ForkedCall, in_forked_child
from pipeline.execution.jobs import TickerJob
from pipeline.outputs import claim_out_dir, write_tables
from pipeline.progress import progress_reporter
from pipeline.report import Aggregates, compute_aggregates
from pipeline.signals import assemble_signals, reuse_counts, signal_counts, write_signals

if TYPE_CHECKING:
    from pipeline.report.charts import Chart

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced. `summary` has one row per requested ticker, in order."""

    summary: pd.DataFrame
    daily: pd.DataFrame
    manifest: dict[str, Any]
    run_dir: Path | None = None
    signals: pd.DataFrame | None = None  # next-session positions: one row per ok ticker
    # Wall seconds from the start of the run to its last file; the stages' own timings overlap
    # (the backtest starts while the download goes on), so they do not add up to this.
    seconds: float | None = None

    @property
    def aggregates(self) -> dict[str, Any]:
        """Figures across tickers: status counts, distributions, the equal-weight portfolio."""
        return self.manifest["aggregates"]

    @property
    def failed_tickers(self) -> list[str]:
        return self.summary.loc[self.summary["status"] == "failed", "ticker"].tolist()


class StageClock:
    """Wall seconds per stage, for the manifest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 3)


def run_data_stage(
    config: Config,
    cache: PriceCache,
    show_progress: bool = True,
    retry_dead: bool = False,
    on_outcome: Callable[[TickerDownload], None] | None = None,
    cancel: threading.Event | None = None,
) -> DownloadReport:
    """Bring every requested ticker's prices into the cache; failures are collected, not raised.
    `retry_dead` asks again for symbols the source recently called unknown or delisted;
    `on_outcome` and `cancel` are `download_universe`'s."""
    for warning in config_warnings(config):
        logger.warning(warning)
    source = make_source(config.data)
    universe = config.data.universe
    with progress_reporter("download", len(universe), enabled=show_progress) as progress:
        return download_universe(
            universe,
            source,
            cache,
            config.data,
            progress=progress,
            retry_dead=retry_dead,
            on_outcome=on_outcome,
            cancel=cancel,
        )


def plan_jobs(config: Config, downloads: DownloadReport, full: bool = False) -> list[TickerJob]:
    """One job per ticker with prices, each with its results-store entry beside its cache file
    (`full`: written, not read)."""
    key = settings_key(config.backtest_settings, config.data.start)
    return _jobs_of(config, downloads.outcomes, key, full)


def _jobs_of(
    config: Config, items: Sequence[TickerDownload], key: str, full: bool
) -> list[TickerJob]:
    planned = (plan_job(config, item, key, full) for item in items)
    return [job for job in planned if job is not None]


def plan_job(config: Config, item: TickerDownload, key: str, full: bool) -> TickerJob | None:
    """The job of one download outcome (None when it has no prices); `key`: `settings_key`."""
    if not item.ok or item.path is None:
        return None
    path = Path(item.path).resolve()
    return TickerJob(
        item.ticker,
        path,
        config.data.start,
        config.data.end,
        results=results_slot(path, key, read=not full),
        repairs=item.repairs,
    )


def log_reuse(results: Sequence[TickerResult], reuse: Mapping[str, Any]) -> None:
    for result in results:
        if result.reuse and result.reuse["reason"] and not reuse["full"]:
            logger.info("%s: computed in full: %s", result.ticker, result.reuse["reason"])
    logger.info(
        "results store: %d tickers reused, %d computed in full; %d rows reused, %d computed, "
        "%d refits",
        reuse["tickers_reused"],
        reuse["tickers_computed"],
        reuse["rows_reused"],
        reuse["rows_computed"],
        reuse["refits_computed"],
    )


def run_backtest_stage(
    jobs: Sequence[TickerJob], executor: Executor, show_progress: bool = True
) -> tuple[list[TickerResult], dict[str, Any]]:
    """Backtest every job on `executor`.

    Results stream back as they finish and are returned in job order, with the executor's
    description (executor, workers, chunksize) for the manifest.
    """
    with progress_reporter("backtest", len(jobs), enabled=show_progress) as progress:
        results = collect_results(jobs, executor.run(jobs), progress.advance)
    return results, executor.describe()


# How long the backtest waits for the data stage between looks (Ctrl-C is seen between them).
_ARRIVAL_POLL_SECONDS = 0.05


class _Arrivals:
    """The data stage's outcomes as they settle, handed from its thread to the backtest."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[TickerDownload | None] = queue.SimpleQueue()
        self.finished = False

    def put(self, item: TickerDownload) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(None)

    def take(self) -> list[TickerDownload]:
        """Every outcome settled since the last take, once there is one; [] once the data
        stage has finished and everything was taken."""
        taken: list[TickerDownload] = []
        while not self.finished:
            try:
                # Waits (in short looks, so that Ctrl-C is seen) only while nothing is taken.
                item = self._queue.get(block=not taken, timeout=_ARRIVAL_POLL_SECONDS)
            except queue.Empty:
                if taken:
                    break
                continue
            if item is None:
                self.finished = True
            else:
                taken.append(item)
        return taken


def run_data_and_backtest_stages(
    config: Config,
    cache: PriceCache,
    executor: Executor,
    clock: StageClock,
    show_progress: bool = True,
    full: bool = False,
    retry_dead: bool = False,
) -> tuple[DownloadReport, list[TickerResult], dict[str, Any]]:
    """The data stage and the backtest, overlapped: each ticker is backtested once its prices
    are in, while the data stage goes on with the others. Results in the universe's order.

    Why: a warm run's data stage (hundreds of cache files read and checked) and its backtest
    were two waits in a row, the workers idle through the first and this process through the
    second. The data stage runs in a thread of its own; the backtest takes, batch after batch,
    every ticker settled since its last batch, so no ticker's job or result changes. Anything
    that stops the backtest (Ctrl-C, SIGTERM, an error) stops the data stage too, once the
    cache writes under way have finished. The clock's "backtest" runs from the first batch to
    the last result, so it overlaps "download".
    """
    arrivals = _Arrivals()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def data_stage() -> None:
        try:
            with clock.stage("download"):
                outcome["report"] = run_data_stage(
                    config, cache, show_progress, retry_dead, arrivals.put, cancel
                )
        except BaseException as exc:  # handed to the main thread, which raises it
            outcome["error"] = exc
        finally:
            arrivals.close()

    thread = threading.Thread(target=data_stage, name="pipeline-data-stage", daemon=True)
    try:
        thread.start()
        results = _backtest_as_they_arrive(config, arrivals, executor, clock, show_progress, full)
    except BaseException:
        cancel.set()
        thread.join()
        raise
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    order = {ticker: index for index, ticker in enumerate(config.data.universe)}
    results.sort(key=lambda result: order[result.ticker])
    return outcome["report"], results, executor.describe()


def _backtest_as_they_arrive(
    config: Config,
    arrivals: _Arrivals,
    executor: Executor,
    clock: StageClock,
    show_progress: bool,
    full: bool,
) -> list[TickerResult]:
    """Every arriving ticker's result, in the order the batches finish. The batch that starts
    once the data stage is done runs under the backtest's progress bar (one bar at a time: the
    download's is gone by then), which counts the tickers already done."""
    key = settings_key(config.backtest_settings, config.data.start)
    results: list[TickerResult] = []
    started: float | None = None
    while batch := arrivals.take():
        started = started if started is not None else time.perf_counter()
        jobs = _jobs_of(config, batch, key, full)
        if not arrivals.finished:
            results.extend(collect_results(jobs, executor.run(jobs)))
            continue
        done = len(results)
        with progress_reporter("backtest", done + len(jobs), enabled=show_progress) as progress:
            progress.advance(done)
            results.extend(collect_results(jobs, executor.run(jobs), progress.advance))
    clock.seconds["backtest"] = round(time.perf_counter() - started, 3) if started else 0.0
    return results


def assemble_summary(
    universe: Sequence[str], downloads: DownloadReport, results: Sequence[TickerResult]
) -> pd.DataFrame:
    """One row per requested ticker in the requested order; download failures included."""
    rows: dict[str, dict[str, Any]] = {}
    for item in downloads.outcomes:
        if item.status in ("failed", "skipped"):
            not_run = TickerResult(item.ticker, item.status, f"download: {item.reason}")
            rows[item.ticker] = not_run.summary_row()
    for result in results:
        rows[result.ticker] = result.summary_row()
    summary = pd.DataFrame([rows[ticker] for ticker in universe], columns=list(SUMMARY_COLUMNS))
    summary["n_days"] = summary["n_days"].astype("Int64")
    summary["reason"] = summary["reason"].fillna("")
    return summary


def assemble_daily(results: Sequence[TickerResult]) -> pd.DataFrame:
    """All tickers' daily rows, ticker first, in the summary's ticker order.

    The ticker column is categorical: a small code per row instead of a string, which keeps
    5,000 tickers x 10 years (12 million rows) within memory, in Parquet as a dictionary.
    """
    done = [r for r in results if r.status == "ok" and r.daily is not None]
    if not done:
        return pd.DataFrame({column: [] for column in ["ticker", *DAILY_COLUMNS]})
    columns = [*DAILY_COLUMNS, *(c for c in BASELINE_DAILY_COLUMNS if c in done[0].daily)]
    codes = np.repeat(np.arange(len(done)), [len(r.daily) for r in done])  # type: ignore[arg-type]
    daily = pd.concat([r.daily for r in done], ignore_index=True)[columns]
    daily.insert(0, "ticker", pd.Categorical.from_codes(codes, categories=[r.ticker for r in done]))
    return daily


def merge_warnings(
    universe: Sequence[str], downloads: DownloadReport, results: Sequence[TickerResult]
) -> dict[str, list[str]]:
    """Each ticker's data-quality notes: the source's repairs first, then the backtest's.

    The source's notes travel with the cache file, so a run that only hit the cache reports
    them as well as the run that fetched them.
    """
    notes: dict[str, list[str]] = {ticker: [] for ticker in universe}
    for item in downloads.outcomes:
        notes[item.ticker].extend(item.warnings)
    for result in results:
        notes[result.ticker].extend(w for w in result.warnings if w not in notes[result.ticker])
    return {ticker: found for ticker, found in notes.items() if found}


def assess_portfolio(
    config: Config, curves: pd.DataFrame, daily: pd.DataFrame, record: bool
) -> dict[str, Any]:
    """The manifest's statistics block (with the baselines' portfolios and the verdict); with
    `record`, this run is appended as a trial first."""
    from pipeline import trials
    from pipeline.report.aggregates import baseline_portfolios
    from pipeline.statistics.portfolio import baseline_comparison
    from pipeline.statistics.verdict import run_verdict

    if record:
        block = trials.record_and_assess(config, curves)
    else:
        block = trials.statistics_block(config, curves, trials.read_trials(config.report.out_dir))
    baselines = baseline_portfolios(daily, config.backtest.cost_bps)
    block.update(baseline_comparison(
        block["portfolio_sharpe"], {name: b["strategy"] for name, b in baselines.items()}
    ))  # fmt: skip
    if "portfolio_sharpe_net" in block:
        net = {name: b["strategy_net"] for name, b in baselines.items() if "strategy_net" in b}
        block.update(baseline_comparison(block["portfolio_sharpe_net"], net, "_net"))
    block["verdict"] = run_verdict(block, in_sample=config.backtest.mode == "in_sample")
    return block


def draw_charts_meanwhile(
    summary: pd.DataFrame, daily: pd.DataFrame, aggregates: Aggregates
) -> AbstractContextManager[ForkedCall[list[Chart]]]:
    """The report's charts, drawn in a child process while the run computes its portfolio
    statistics and writes its tables (`pipeline.execution.forked`)."""
    from pipeline.report.build import report_charts

    return in_forked_child(lambda: report_charts(summary, daily, aggregates), "the charts")


def render_reports(
    run_dir: Path,
    summary: pd.DataFrame,
    daily: pd.DataFrame,
    manifest: Mapping[str, Any],
    signals: pd.DataFrame,
    charts: ForkedCall[list[Chart]] | None = None,
) -> None:
    """report.html, report.md and the charts, drawn from what the run holds in memory;
    `charts`, when given, are the charts being drawn already."""
    from pipeline.report.build import draw_report, write_report

    started = time.perf_counter()
    drawn = charts.result() if charts is not None else None
    files = draw_report(
        summary, daily, manifest, run_name=run_dir.name, signals=signals, charts=drawn
    )
    write_report(run_dir, files)
    logger.info("reports drawn in %.1f s", time.perf_counter() - started)


def _import_report_modules_meanwhile() -> None:
    """Import the report's modules (matplotlib, Jinja2: half a second) in a thread while the
    stages run, instead of after the last ticker, when the workers are gone and one core idles.

    Called once the executor has started its workers: a pool forks them from this process
    while it has one thread, so they never load these modules. Not a daemon: a run that ends
    early waits the half second rather than exit in the middle of an import.
    """

    def load() -> None:
        # An import that fails here fails again in the report stage, which reports it.
        with suppress(Exception):
            importlib.import_module("pipeline.report.build")

    threading.Thread(target=load, name="pipeline-report-imports").start()


def _download_and_backtest(
    config: Config,
    cache: PriceCache,
    clock: StageClock,
    run_dir: Path | None,
    show_progress: bool,
    full: bool,
    retry_dead: bool,
) -> tuple[DownloadReport, list[TickerResult], dict[str, Any]]:
    """The two stages on an executor started for them, and stopped however they end."""
    universe = config.data.universe
    with make_executor(config.execution, config.backtest_settings, len(universe)) as executor:
        if run_dir is not None:
            _import_report_modules_meanwhile()
        logger.info("run %s: %d tickers, config %s", run_dir, len(universe), config.digest())
        for warning in speed_warnings(config.backtest_settings):
            logger.warning(warning)
        return run_data_and_backtest_stages(
            config, cache, executor, clock, show_progress, full=full, retry_dead=retry_dead
        )


def run_pipeline(
    config: Config,
    run_dir: Path | None = None,
    show_progress: bool = True,
    lock_wait_seconds: float = 0.0,
    full: bool = False,
    retry_dead: bool = False,
) -> RunResult:
    """Run every stage. Writes the run directory when `run_dir` is given.

    Stored results are reused where METHOD.md "Incremental runs" allows; `full` recomputes
    every ticker (and stores the new results).

    Raises CacheLockedError when another run holds the cache for longer than
    `lock_wait_seconds`.
    """
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    clock = StageClock()
    cache = PriceCache(config.data.cache_dir)
    # One writer per cache; the backtest reads the files the download wrote, so it holds too.
    # The executor starts its workers before the download, so that they warm up meanwhile, and
    # stops them when the block ends, however it ends.
    with cache.lock(wait_seconds=lock_wait_seconds):
        remove_leftovers(cache.root)
        try:
            downloads, results, execution = _download_and_backtest(
                config, cache, clock, run_dir, show_progress, full, retry_dead
            )
        except BaseException:
            # The executor has stopped its workers; a worker stopped while it wrote a store
            # entry left that write's temporary file (never the entry itself): remove it now,
            # still holding the lock, rather than at the next run's start.
            remove_leftovers(cache.root)
            raise
    with ExitStack() as report_stage:
        with clock.stage("report"):
            summary = assemble_summary(config.data.universe, downloads, results)
            daily = assemble_daily(results)
            signals = assemble_signals(config.data.universe, results)
            reuse = reuse_counts(results, full)
            log_reuse(results, reuse)
            # The per-ticker frames now live in `daily`; keep only what the manifest needs.
            results = [replace(result, daily=None) for result in results]
            aggregates = compute_aggregates(summary, daily, cost_bps=config.backtest.cost_bps)
            writes = run_dir is not None
            charts = (
                report_stage.enter_context(draw_charts_meanwhile(summary, daily, aggregates))
                if writes
                else None
            )
            statistics = assess_portfolio(config, aggregates.curves, daily, record=writes)
            if run_dir is not None:
                write_tables(run_dir, summary, daily)
                write_signals(run_dir, signals)
        manifest = _run_manifest(
            config, started_at, clock, execution, summary, downloads, results, aggregates
        )
        manifest.update(reuse=reuse, signals=signal_counts(signals))
        manifest["statistics"] = statistics
        if run_dir is not None:
            # The manifest is final before the reports are drawn from it, so a later
            # `pipeline report` of this directory draws exactly the same ones.
            run_manifest.write_manifest(run_dir, manifest)
            render_reports(run_dir, summary, daily, manifest, signals, charts)
    return RunResult(
        summary=summary,
        daily=daily,
        manifest=manifest,
        run_dir=run_dir,
        signals=signals,
        seconds=round(time.perf_counter() - started, 3),
    )


def _run_manifest(
    config: Config,
    started_at: datetime,
    clock: StageClock,
    execution: dict[str, Any],
    summary: pd.DataFrame,
    downloads: DownloadReport,
    results: Sequence[TickerResult],
    aggregates: Aggregates,
) -> dict[str, Any]:
    return run_manifest.build_manifest(
        config,
        started_at=started_at,
        timings=clock.seconds,
        execution=execution,
        summary=summary,
        cache_counts={key: downloads.counts[key] for key in ("hits", "fetched", "refreshed")},
        warnings=merge_warnings(config.data.universe, downloads, results),
        fingerprints={r.ticker: r.fingerprint for r in results if r.fingerprint},
        aggregates=aggregates.to_dict(),
        data_quality=quality_record(config.data.quality, downloads.outcomes),
    )


def run_backtest(
    config: Config | Mapping[str, Any] | str | Path | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    show_progress: bool = False,
    full: bool = False,
    retry_dead: bool = False,
    force: bool = False,
) -> RunResult:
    """The notebook entry point: a config (file, dict or Config) in, frames and manifest out.

    `run_dir`, when given, is claimed as `pipeline run --out` claims it: a new or empty
    directory, or with `force` an earlier run's, which is replaced once this run has written
    its results (and stays if this run fails first).

    >>> result = run_backtest("configs/demo.toml", ["execution.executor=serial"])
    >>> result.summary.head(), result.signals
    """
    resolved = load_config(config, overrides)
    if run_dir is None:
        return run_pipeline(
            resolved, None, show_progress=show_progress, full=full, retry_dead=retry_dead
        )
    claimed = claim_out_dir(Path(run_dir), force=force, option="run_dir", force_hint="force=True")
    try:
        result = run_pipeline(
            resolved, claimed.path, show_progress=show_progress, full=full, retry_dead=retry_dead
        )
    except BaseException:
        claimed.give_back()
        raise
    claimed.keep()
    return result

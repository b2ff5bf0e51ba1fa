"""`pipeline bench`: the article's sequential-versus-parallel experiment, on this machine.

The original (Neuromancer Blues, "threading vs multiprocessing, part 2"; METHOD.md) timed one
SVC per ticker on five tickers run sequentially, one Process per ticker, `Pool.map` and
`ProcessPoolExecutor`. Here the same four run the pipeline's own task, `run_job`, on the cached
prices, beside our CrashProofPool, each with the plain fit and with the exact fast path. Only
the backtest stage is timed; the data stage runs once first. Every variant's results must equal
the sequential ones exactly: a variant that is fast but loses or changes results (the article's
global-dict bug) shows up as a mismatch, not as a speed-up.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.backtest.result import TickerResult
from pipeline.benchmarking.agreement import position_agreement, results_identical
from pipeline.benchmarking.machine import load_average, machine_details
from pipeline.benchmarking.variants import (
    VARIANTS,
    Plan,
    Variant,
    VariantRun,
    run_process_per_ticker,
)
from pipeline.benchmarking.workload import cached_workload, forkserver_context, settings_with_fit
from pipeline.config import BacktestSettings, Config
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import resolve_workers, usable_cpu_count
from pipeline.progress import progress_reporter

logger = logging.getLogger(__name__)

# Fit name -> model.fast_path.
FITS: dict[str, bool] = {"plain": False, "fast": True}
SEQUENTIAL = VARIANTS[0].name


@dataclass(frozen=True)
class BenchTiming:
    """One variant under one fit: wall seconds of every repeat, and how it ran."""

    variant: str
    fit: str
    workers: int
    seconds: tuple[float, ...]
    chunksize: int | None = None

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class BenchRow:
    """A line of the table: median seconds; speed-up over sequential (same fit, same repeat;
    the median over repeats) and parallel efficiency."""

    variant: str
    label: str
    fit: str
    workers: int
    chunksize: int | None
    seconds: float
    speedup: float
    efficiency: float


@dataclass(frozen=True)
class BenchResult:
    """What `pipeline bench` measured, and on what."""

    tickers: tuple[str, ...]
    failed_downloads: tuple[str, ...]
    data: dict[str, Any]
    usable_cpus: int
    repeats: int
    start_method: str
    timings: tuple[BenchTiming, ...]
    mismatches: tuple[str, ...]
    fast_vs_plain: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """Every variant returned exactly the sequential results, under each fit."""
        return not self.mismatches

    @property
    def rows(self) -> list[BenchRow]:
        return bench_rows(self.timings, self.usable_cpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": "article: sequential vs parallel, per-ticker SVC backtest",
            "tickers": list(self.tickers),
            "failed_downloads": list(self.failed_downloads),
            "data": self.data,
            "repeats": self.repeats,
            "start_method": self.start_method,
            "identical_results": self.identical,
            "mismatches": list(self.mismatches),
            "fast_vs_plain": self.fast_vs_plain,
            "rows": [asdict(row) for row in self.rows],
            "timings": [asdict(timing) for timing in self.timings],
            "machine": self.machine,
        }


def speedup(serial_seconds: float, seconds: float) -> float:
    """How many times faster than serial; 0 when `seconds` is not positive (nothing measured)."""
    return serial_seconds / seconds if seconds > 0 else 0.0


def parallel_efficiency(speed_up: float, workers: int, usable_cpus: int) -> float:
    """Speed-up per process that can run at once: min(workers, usable CPUs).

    Five processes on two cores can at best double the speed, so they count as two.
    """
    return speed_up / max(1, min(workers, usable_cpus))


def paired_speedup(serial_seconds: Sequence[float], seconds: Sequence[float]) -> float:
    """The median over repeats of each repeat's speed-up.

    Each repeat times every variant back to back, so a ratio within one repeat cancels most of
    the slow drift of a shared machine; the median then drops a repeat that was disturbed.
    """
    pairs = list(zip(serial_seconds, seconds, strict=True))
    return statistics.median(speedup(serial, own) for serial, own in pairs) if pairs else 0.0


def bench_rows(timings: Sequence[BenchTiming], usable_cpus: int) -> list[BenchRow]:
    labels = {variant.name: variant.label for variant in VARIANTS}
    serial = {t.fit: t.seconds for t in timings if t.variant == SEQUENTIAL}
    rows = []
    for timing in timings:
        gain = paired_speedup(serial.get(timing.fit, ()), timing.seconds)
        rows.append(
            BenchRow(
                variant=timing.variant,
                label=labels.get(timing.variant, timing.variant),
                fit=timing.fit,
                workers=timing.workers,
                chunksize=timing.chunksize,
                seconds=round(timing.median_seconds, 4),
                speedup=round(gain, 3),
                efficiency=round(parallel_efficiency(gain, timing.workers, usable_cpus), 3),
            )
        )
    return rows


def run_article_bench(
    config: Config, repeats: int = 1, *, show_progress: bool = False
) -> BenchResult:
    """Time every variant under both fits on the config's tickers; medians over `repeats`.

    Uses the config's data, features, model and backtest sections (the article: five tickers,
    in_sample, 1999-12-31..2019-12-31) and `execution.workers` / `execution.chunksize` for the
    parallel variants; `model.fast_path` is set per fit. Every run's results are compared with
    the sequential ones of the same fit; `BenchResult.mismatches` names any that differ.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    machine = machine_details()
    with cached_workload(config, show_progress) as workload:
        jobs = workload.jobs
        workers = resolve_workers(config.execution.workers, len(jobs))
        plan = Plan(forkserver_context(), workers, config.execution.chunksize)
        _warm_up(jobs, config, plan)
        measured = _measure(jobs, config, plan, repeats, show_progress)
    machine["load_average_at_end"] = load_average()
    return BenchResult(
        tickers=workload.tickers,
        failed_downloads=workload.failed_downloads,
        data=_describe_data(config),
        usable_cpus=usable_cpu_count(),
        repeats=repeats,
        start_method=plan.context.get_start_method(),
        timings=tuple(measured.timings()),
        mismatches=tuple(measured.mismatches),
        fast_vs_plain=_fast_vs_plain(measured.reference["plain"], measured.reference["fast"]),
        machine=machine,
    )


@dataclass
class _Measurements:
    """Seconds per (variant, fit) and how each ran; results are checked as they come and only
    the sequential reference is kept (sixty tickers' daily frames per run add up)."""

    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    shape: dict[tuple[str, str], tuple[int, int | None]] = field(default_factory=dict)
    reference: dict[str, list[TickerResult]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def add(self, variant: str, fit: str, repeat: int, seconds: float, run: VariantRun) -> None:
        self.seconds.setdefault((variant, fit), []).append(seconds)
        self.shape[(variant, fit)] = (run.workers, run.chunksize)
        if variant == SEQUENTIAL and fit not in self.reference:
            self.reference[fit] = run.results
        elif not results_identical(self.reference[fit], run.results):
            self.mismatches.append(f"{variant} ({fit} fit, repeat {repeat + 1})")

    def timings(self) -> list[BenchTiming]:
        return [
            BenchTiming(
                variant=variant,
                fit=fit,
                workers=self.shape[(variant, fit)][0],
                seconds=tuple(round(s, 4) for s in seconds),
                chunksize=self.shape[(variant, fit)][1],
            )
            for (variant, fit), seconds in self.seconds.items()
        ]


def _measure(
    jobs: Sequence[TickerJob], config: Config, plan: Plan, repeats: int, show_progress: bool
) -> _Measurements:
    measured = _Measurements()
    total = repeats * len(FITS) * len(VARIANTS)
    with progress_reporter("bench", total, unit="runs", enabled=show_progress) as progress:
        for repeat in range(repeats):
            for fit, fast_path in FITS.items():
                settings = settings_with_fit(config, fast_path)
                for variant in _rotated(VARIANTS, repeat):
                    seconds, run = _time_variant(variant, jobs, settings, plan)
                    logger.info("bench: %s, %s fit: %.3f s", variant.name, fit, seconds)
                    measured.add(variant.name, fit, repeat, seconds, run)
                    progress.advance()
    return measured


def _rotated(variants: Sequence[Variant], shift: int) -> list[Variant]:
    # A different order per repeat, so slow drift on a shared machine favours no variant. The
    # first repeat keeps the order: sequential first, the reference the others are checked on.
    shift %= len(variants)
    return [*variants[shift:], *variants[:shift]]


def _time_variant(
    variant: Variant, jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan
) -> tuple[float, VariantRun]:
    started = time.perf_counter()
    run = variant.run(jobs, settings, plan)
    return time.perf_counter() - started, run


def _warm_up(jobs: Sequence[TickerJob], config: Config, plan: Plan) -> None:
    """Pay one-off costs before the clock runs: imports in this process, the fork server's
    start (it imports scikit-learn once), the first read of a cache file."""
    settings = settings_with_fit(config, fast_path=True)
    run_job(jobs[0], settings)
    run_process_per_ticker(jobs[:1], settings, plan)


def _fast_vs_plain(plain: Sequence[TickerResult], fast: Sequence[TickerResult]) -> dict[str, Any]:
    same_summary = sum(results_identical([a], [b]) for a, b in zip(plain, fast, strict=True))
    return {
        "position_agreement": round(position_agreement(plain, fast), 6),
        "identical_tickers": same_summary,
        "tickers": len(plain),
    }


def _describe_data(config: Config) -> dict[str, Any]:
    """The inputs that shape the work, without any file path."""
    settings: Mapping[str, Any] = config.backtest_settings.model_dump(mode="json")
    return {
        "source": config.data.source,
        "start": config.data.start.isoformat(),
        "end": config.data.end.isoformat(),
        "mode": config.backtest.mode,
        "lags": config.features.lags,
        "model": {"kind": config.model.kind, "params": settings["model"]["params"]},
        "workers_setting": config.execution.workers,
        "chunksize_setting": config.execution.chunksize,
    }

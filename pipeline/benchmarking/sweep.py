"""`pipeline tune`: time the pool over workers x chunksize, compare "auto", recommend values.

The backtest stage (CrashProofPool over the cached jobs, exactly as `pipeline run` executes it)
is timed for every worker count from 1 to the usable CPUs and, for each, chunksizes 1, 2, 4, ...
up to one chunk per worker. The data stage runs once first, so every timing starts warm.

To keep the sweep short, a configuration is skipped when even a perfect pool could not come
within `HOPELESS_FACTOR` of the best time so far: its lower bound is the busiest worker's share
of the tasks times the serial time per task (no start-up, no messaging). Worker counts are swept
from the largest down, so the fast configurations set the bar before the slow ones are tried.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.benchmarking.workload import cached_workload, spread_sample
from pipeline.config import BacktestSettings, Config, ExecutionConfig
from pipeline.execution.executors import collect_results, make_executor
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import resolve_workers, usable_cpu_count
from pipeline.progress import ProgressSink, progress_reporter

logger = logging.getLogger(__name__)

# Skip a configuration whose ideal time exceeds the best measured time by more than this.
HOPELESS_FACTOR = 1.5
# "auto" should be within this fraction of the best configuration's time.
AUTO_TARGET_GAP = 0.15
# Tasks timed serially, in this process, to estimate the time of one task.
PILOT_TASKS = 3


@dataclass(frozen=True)
class SweepPoint:
    """One (workers, chunksize): seconds of every repeat, or none when it was skipped."""

    workers: int
    chunksize: int
    seconds: tuple[float, ...] = ()
    ideal_seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return not self.seconds

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.inf


@dataclass(frozen=True)
class AutoRun:
    """The pool with chunksize="auto" at the configured workers: what the pilot chose."""

    workers: int
    chosen_chunksize: int
    seconds: tuple[float, ...]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class SweepResult:
    tickers: tuple[str, ...]
    failed_downloads: tuple[str, ...]
    usable_cpus: int
    repeats: int
    task_seconds: float
    points: tuple[SweepPoint, ...]
    auto: AutoRun
    sweep_seconds: float
    data: dict[str, Any]

    @property
    def best(self) -> SweepPoint:
        return min(self.points, key=lambda point: point.median_seconds)

    @property
    def baseline(self) -> SweepPoint:
        """One worker, one task at a time: what the speed-ups are relative to."""
        return next(p for p in self.points if (p.workers, p.chunksize) == (1, 1))

    @property
    def auto_gap(self) -> float:
        """How much slower "auto" was than the best configuration (0.04 = 4% slower)."""
        return self.auto.median_seconds / self.best.median_seconds - 1.0

    @property
    def recommendation(self) -> dict[str, int | str]:
        """The best worker count; "auto" chunks when auto came within the target there."""
        best = self.best
        auto_is_good = self.auto.workers == best.workers and self.auto_gap <= AUTO_TARGET_GAP
        return {"workers": best.workers, "chunksize": "auto" if auto_is_good else best.chunksize}


def chunksize_ladder(n_tasks: int, workers: int) -> list[int]:
    """1, 2, 4, ... below ceil(n_tasks / workers), then that: one chunk per worker."""
    top = max(1, math.ceil(n_tasks / max(workers, 1)))
    ladder = [2**k for k in range(top.bit_length()) if 2**k < top]
    return [*ladder, top]


def busiest_worker_tasks(n_tasks: int, workers: int, chunksize: int) -> int:
    """Tasks run by the busiest worker when equal tasks are handed out `chunksize` at a time:
    chunks then go round in turn, worker k taking chunks k, k + workers, ..."""
    if n_tasks <= 0:
        return 0
    sizes = [min(chunksize, n_tasks - start) for start in range(0, n_tasks, chunksize)]
    return max(sum(sizes[k :: max(workers, 1)]) for k in range(min(workers, len(sizes))))


def ideal_seconds(n_tasks: int, workers: int, chunksize: int, task_seconds: float) -> float:
    """A lower bound of the stage's time: the busiest worker's tasks, nothing else."""
    return busiest_worker_tasks(n_tasks, workers, chunksize) * task_seconds


def is_hopeless(ideal: float, best_seconds: float, factor: float = HOPELESS_FACTOR) -> bool:
    return ideal > factor * best_seconds


def sample_config(config: Config, sample: int | None) -> Config:
    """The config restricted to `sample` tickers spread over its universe (all when None)."""
    universe = config.data.universe
    chosen = spread_sample(universe, sample)
    if len(chosen) == len(universe):
        return config
    data = config.data.model_copy(update={"tickers": tuple(chosen)})
    return config.model_copy(update={"data": data})


def sweep_execution(
    config: Config,
    sample: int | None = None,
    *,
    repeats: int = 1,
    show_progress: bool = False,
) -> SweepResult:
    """Time the backtest stage on CrashProofPool for each workers x chunksize, and "auto".

    Runs on the configured universe, or `sample` tickers spread over it; the config's model
    (fast path or not) and backtest mode are used as they are. Each timing is the median of
    `repeats` runs; configurations skipped as hopeless have no timing.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    started = time.perf_counter()
    config = sample_config(config, sample)
    with cached_workload(config, show_progress) as workload:
        task_seconds, points, auto = _measure_sweep(workload.jobs, config, repeats, show_progress)
    return SweepResult(
        tickers=workload.tickers,
        failed_downloads=workload.failed_downloads,
        usable_cpus=usable_cpu_count(),
        repeats=repeats,
        task_seconds=task_seconds,
        points=tuple(sorted(points, key=lambda p: (p.workers, p.chunksize))),
        auto=auto,
        sweep_seconds=time.perf_counter() - started,
        data={
            "source": config.data.source,
            "start": config.data.start.isoformat(),
            "end": config.data.end.isoformat(),
            "mode": config.backtest.mode,
            "fast_path": config.model.fast_path,
        },
    )


def _measure_sweep(
    jobs: Sequence[TickerJob], config: Config, repeats: int, show_progress: bool
) -> tuple[float, list[SweepPoint], AutoRun]:
    """Warm up, time one task serially, sweep the grid once, then repeat what was measured."""
    settings, execution = config.backtest_settings, config.execution
    max_workers = resolve_workers("auto", len(jobs))
    _warm_up(jobs, settings, execution, max_workers)
    task_seconds = _pilot_task_seconds(jobs, settings)
    grid_size = sum(len(chunksize_ladder(len(jobs), w)) for w in range(1, max_workers + 1))
    total = repeats * (grid_size + 1)
    with progress_reporter("tune", total, unit="runs", enabled=show_progress) as progress:
        grid = _sweep_grid(jobs, settings, execution, max_workers, task_seconds, progress)
        points, auto = _repeat(grid, jobs, settings, execution, repeats, progress)
    return task_seconds, points, auto


def time_stage(
    jobs: Sequence[TickerJob],
    settings: BacktestSettings,
    execution: ExecutionConfig,
    workers: int,
    chunksize: int | str,
) -> tuple[float, int]:
    """Wall seconds of the backtest stage on the pool, and the chunksize it ended up using."""
    pool = execution.model_copy(
        update={"executor": "pool", "workers": workers, "chunksize": chunksize}
    )
    clock = time.perf_counter()
    with make_executor(pool, settings, len(jobs)) as executor:
        collect_results(jobs, executor.run(jobs))
    seconds = time.perf_counter() - clock
    described = executor.describe()
    used = described["chunksize"]
    # "auto" that never left its pilot (too few tasks for a second round) handed out 1 at a time.
    return seconds, used if isinstance(used, int) else 1


def _warm_up(
    jobs: Sequence[TickerJob], settings: BacktestSettings, execution: ExecutionConfig, workers: int
) -> None:
    """Start the fork server (it imports scikit-learn once) before anything is timed."""
    time_stage(jobs[:workers], settings, execution, workers, 1)


def _pilot_task_seconds(jobs: Sequence[TickerJob], settings: BacktestSettings) -> float:
    """Median seconds of one task, run serially here; the sweep's yardstick for skipping."""
    run_job(jobs[0], settings)  # imports and first-call costs, untimed
    seconds = []
    for job in jobs[:PILOT_TASKS]:
        clock = time.perf_counter()
        run_job(job, settings)
        seconds.append(time.perf_counter() - clock)
    return statistics.median(seconds)


@dataclass
class _Grid:
    """The first pass: seconds of what was measured, the ideal time of every configuration."""

    ideal: dict[tuple[int, int], float]
    measured: dict[tuple[int, int], list[float]]
    auto_workers: int
    auto_seconds: list[float]
    auto_chunksize: int


def _sweep_grid(
    jobs: Sequence[TickerJob],
    settings: BacktestSettings,
    execution: ExecutionConfig,
    max_workers: int,
    task_seconds: float,
    progress: ProgressSink,
) -> _Grid:
    n = len(jobs)
    ideal: dict[tuple[int, int], float] = {}
    measured: dict[tuple[int, int], list[float]] = {}
    for workers in range(max_workers, 0, -1):
        for chunksize in chunksize_ladder(n, workers):
            key = (workers, chunksize)
            ideal[key] = ideal_seconds(n, workers, chunksize, task_seconds)
            best = min((s[0] for s in measured.values()), default=math.inf)
            # Chunks of one are always timed: the baseline, and each worker count's anchor.
            if chunksize > 1 and is_hopeless(ideal[key], best):
                logger.info(
                    "tune: skip %s x %d (ideal %.3f s)", _workers(workers), chunksize, ideal[key]
                )
            else:
                measured[key] = [time_stage(jobs, settings, execution, workers, chunksize)[0]]
                logger.info("tune: %s x %d: %.3f s", _workers(workers), chunksize, measured[key][0])
            progress.advance()
    auto_workers = resolve_workers(execution.workers, n)
    seconds, chosen = time_stage(jobs, settings, execution, auto_workers, "auto")
    logger.info("tune: %s x auto (chose %d): %.3f s", _workers(auto_workers), chosen, seconds)
    progress.advance()
    return _Grid(ideal, measured, auto_workers, [seconds], chosen)


def _repeat(
    grid: _Grid,
    jobs: Sequence[TickerJob],
    settings: BacktestSettings,
    execution: ExecutionConfig,
    repeats: int,
    progress: ProgressSink,
) -> tuple[list[SweepPoint], AutoRun]:
    """Time what the first pass measured `repeats - 1` more times; build the points."""
    for _ in range(repeats - 1):
        for (workers, chunksize), seconds in grid.measured.items():
            seconds.append(time_stage(jobs, settings, execution, workers, chunksize)[0])
            progress.advance()
        grid.auto_seconds.append(
            time_stage(jobs, settings, execution, grid.auto_workers, "auto")[0]
        )
        progress.advance(1 + len(grid.ideal) - len(grid.measured))
    points = [
        SweepPoint(w, c, tuple(grid.measured.get((w, c), ())), ideal)
        for (w, c), ideal in grid.ideal.items()
    ]
    auto_run = AutoRun(grid.auto_workers, grid.auto_chunksize, tuple(grid.auto_seconds))
    return points, auto_run


def format_sweep_table(result: SweepResult) -> str:
    """The sweep as a text table: the best marked, "auto" and the recommendation below."""
    baseline = result.baseline.median_seconds
    header = f"{'workers':>7} {'chunksize':>9} {'seconds':>9} {'speedup':>7}  note"
    lines = [header, "-" * (len(header) + 30)]
    best = result.best
    for point in result.points:
        if point.skipped:
            note = f"skipped: even ideally {point.ideal_seconds:.3f} s"
            lines.append(f"{point.workers:>7} {point.chunksize:>9} {'-':>9} {'-':>7}  {note}")
            continue
        seconds = point.median_seconds
        note = "<- best" if point is best else ""
        lines.append(
            f"{point.workers:>7} {point.chunksize:>9} {seconds:>9.3f} "
            f"{baseline / seconds:>6.2f}x  {note}".rstrip()
        )
    auto = result.auto
    verdict = "within" if result.auto_gap <= AUTO_TARGET_GAP else "OUTSIDE"
    recommended = result.recommendation
    data = result.data
    lines += [
        f"{auto.workers:>7} {'auto':>9} {auto.median_seconds:>9.3f} "
        f"{baseline / auto.median_seconds:>6.2f}x  auto chose chunksize {auto.chosen_chunksize}",
        "",
        f"best: {_workers(best.workers)}, chunksize {best.chunksize}, {best.median_seconds:.3f} s",
        f"auto: {_workers(auto.workers)}, chunksize {auto.chosen_chunksize} (from its pilot), "
        f"{auto.median_seconds:.3f} s: {result.auto_gap:+.1%} against the best "
        f"({verdict} the {AUTO_TARGET_GAP:.0%} target)",
        f"recommended: --set execution.workers={recommended['workers']} "
        f"--set execution.chunksize={recommended['chunksize']}",
        f"{len(result.tickers)} tickers, {data['mode']}, "
        f"{'fast path' if data['fast_path'] else 'plain fit'}, {data['start']}..{data['end']}; "
        f"median of {result.repeats} run(s); one task {result.task_seconds * 1e3:.1f} ms "
        f"serially; {result.usable_cpus} usable CPUs; sweep took {result.sweep_seconds:.0f} s.",
        "speedup: seconds of 1 worker x chunksize 1 / seconds.",
        f"target: auto's time within {AUTO_TARGET_GAP:.0%} of the best measured configuration's.",
    ]
    if result.repeats == 1:
        lines.append(
            "warning: one run per configuration; on a busy machine timings vary by more than "
            "the target from noise alone: use --repeats 3 or more before acting on it."
        )
    if result.failed_downloads:
        lines.append(f"not measured (no prices): {', '.join(result.failed_downloads)}")
    return "\n".join(lines)


def _workers(count: int) -> str:
    return f"{count} worker" if count == 1 else f"{count} workers"

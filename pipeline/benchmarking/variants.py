"""The article's ways of running the per-ticker task, plus ours, over the same jobs.

Every variant calls `run_job` (the task every executor runs) on the same `TickerJob`s and returns
the results in job order, so their outputs can be compared exactly. Every process is started
from the fork server (see `workload.forkserver_context`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing.context import BaseContext
from multiprocessing.queues import Queue

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.executors import MissingResultsError, collect_results
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.pool import CrashProofPool

_POLL_SECONDS = 0.5


class VariantError(RuntimeError):
    """A variant lost a result: the measurement is invalid, not merely slow."""


@dataclass(frozen=True)
class Plan:
    """How the parallel variants run: start method, worker processes, our pool's chunksize."""

    context: BaseContext
    workers: int
    chunksize: int | str


@dataclass(frozen=True)
class VariantRun:
    """One variant's results in job order, the processes that ran them and, for the pools
    that hand out chunks, the tasks per chunk used."""

    results: list[TickerResult]
    workers: int
    chunksize: int | None = None


Runner = Callable[[Sequence[TickerJob], BacktestSettings, Plan], VariantRun]


def run_sequential(jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan) -> VariantRun:
    return VariantRun([run_job(job, settings) for job in jobs], workers=1)


def put_result(results: Queue, index: int, job: TickerJob, settings: BacktestSettings) -> None:
    """The body of one Process: the result travels back through the queue.

    The article's workers wrote into a global dict instead; each process has its own copy of
    the globals, so the parent's dict stayed empty (METHOD.md, bug 3).
    """
    results.put((index, run_job(job, settings)))


def run_process_per_ticker(
    jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan
) -> VariantRun:
    """One `multiprocessing.Process` per ticker, all started at once, as the article did."""
    results: Queue = plan.context.Queue()
    processes = [
        plan.context.Process(target=put_result, args=(results, index, job, settings))
        for index, job in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    try:
        # Drain before joining: a child cannot exit while its result is unread in the pipe.
        collected = _collect(results, len(jobs), processes)
    finally:
        for process in processes:
            process.join(timeout=_POLL_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
    return VariantRun([collected[index] for index in range(len(jobs))], workers=len(jobs))


def _collect(results: Queue, expected: int, processes: Sequence) -> dict[int, TickerResult]:
    collected: dict[int, TickerResult] = {}
    while len(collected) < expected:
        try:
            index, result = results.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if any(process.is_alive() for process in processes):
                continue
            try:  # every child is gone: what they sent is in the pipe already
                index, result = results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                lost = expected - len(collected)
                raise VariantError(f"{lost} processes exited without a result") from None
        collected[index] = result
    return collected


def run_pool_map(jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan) -> VariantRun:
    """`multiprocessing.Pool.map` with its default chunksize, as the article did."""
    with plan.context.Pool(plan.workers) as pool:
        results = pool.map(partial(run_job, settings=settings), jobs)
    return VariantRun(results, workers=plan.workers, chunksize=_pool_map_chunksize(jobs, plan))


def _pool_map_chunksize(jobs: Sequence[TickerJob], plan: Plan) -> int:
    # What Pool.map chooses when given none: about four chunks per worker.
    return max(1, -(-len(jobs) // (4 * plan.workers)))


def run_process_pool_executor(
    jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan
) -> VariantRun:
    """`concurrent.futures.ProcessPoolExecutor.map`, default chunksize 1, as the article did."""
    task = partial(run_job, settings=settings)
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=plan.context) as executor:
        results = list(executor.map(task, jobs))
    return VariantRun(results, workers=plan.workers, chunksize=1)


def run_crash_proof_pool(
    jobs: Sequence[TickerJob], settings: BacktestSettings, plan: Plan
) -> VariantRun:
    """Our pool, with the configured chunksize ("auto": sized from a pilot of one task per
    worker); reports the chunksize it used."""
    with CrashProofPool(settings, plan.workers, plan.chunksize) as pool:
        try:
            results = collect_results(jobs, pool.run(jobs))
        except MissingResultsError as exc:
            raise VariantError(f"CrashProofPool: {exc}") from None
    used = pool.describe()["chunksize"]
    # "auto" that never left its pilot (too few tasks for a second round) handed out chunks of 1.
    return VariantRun(
        results, workers=pool.stats.workers, chunksize=used if isinstance(used, int) else 1
    )


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    run: Runner


VARIANTS: tuple[Variant, ...] = (
    Variant("sequential", "sequential", run_sequential),
    Variant("process_per_ticker", "Process per ticker", run_process_per_ticker),
    Variant("pool_map", "Pool.map", run_pool_map),
    Variant("process_pool_executor", "ProcessPoolExecutor", run_process_pool_executor),
    Variant("crash_proof_pool", "CrashProofPool", run_crash_proof_pool),
)

"""Choose the executor the config asks for. Every executor runs `run_job` unchanged.

An executor is a context manager: entering it starts what takes time to start (worker
processes, a Dask cluster) so that it overlaps the data stage, and leaving it stops everything
it started, however the block ends:

    with make_executor(config.execution, config.backtest_settings, n_jobs) as executor:
        results = collect_results(jobs, executor.run(jobs))

`run` may be called more than once inside the block, and a job carrying its own `settings`
runs with them instead of the executor's: one pool or cluster serves several configurations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings, ExecutionConfig
from pipeline.errors import PipelineError
from pipeline.execution.jobs import TickerJob
from pipeline.execution.tuning import resolve_workers


class MissingResultsError(PipelineError, RuntimeError):
    """An executor finished without a result for some job: a bug, never a ticker's fault."""


class Executor(Protocol):
    def __enter__(self) -> Self:
        """Start processes or a cluster now; they are stopped on leaving the block."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        """Yield (job index, result) for every job, in any order, as they finish."""
        ...

    def describe(self) -> dict[str, Any]:
        """Executor, workers and chunksize as used, for the manifest."""
        ...


def make_executor(
    execution: ExecutionConfig, settings: BacktestSettings, n_jobs: int
) -> Executor:
    """The executor `execution` describes, for about `n_jobs` jobs (workers never exceed it)."""
    if execution.executor == "serial":
        from pipeline.execution.serial import SerialExecutor

        return SerialExecutor(settings)
    workers = resolve_workers(execution.workers, max(n_jobs, 1))
    if execution.executor == "pool":
        from pipeline.execution.pool import CrashProofPool

        return CrashProofPool(
            settings, workers, execution.chunksize, execution.task_timeout_seconds
        )
    from pipeline.execution.dask_executor import DaskExecutor

    return DaskExecutor(
        settings,
        workers,
        execution.dask_address,
        execution.chunksize,
        task_timeout=execution.task_timeout_seconds,
    )


def collect_results(
    jobs: Sequence[TickerJob],
    stream: Iterable[tuple[int, TickerResult]],
    on_result: Callable[[], None] | None = None,
) -> list[TickerResult]:
    """The results of an executor's `run(jobs)` in job order; every job must have one."""
    results: list[TickerResult | None] = [None] * len(jobs)
    for index, result in stream:
        results[index] = result
        if on_result is not None:
            on_result()
    missing = [job.ticker for job, result in zip(jobs, results, strict=True) if result is None]
    if missing:
        raise MissingResultsError(f"the executor returned no result for {', '.join(missing)}")
    return [result for result in results if result is not None]

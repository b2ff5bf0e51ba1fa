"""Choose the executor the config asks for. Every executor runs `run_job` unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings, ExecutionConfig
from pipeline.execution.jobs import TickerJob
from pipeline.execution.tuning import resolve_workers


class Executor(Protocol):
    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        """Yield (job index, result) for every job, in any order, as they finish."""
        ...

    def prepare(self) -> None:
        """Start what takes time to start (processes, a cluster) while the data stage runs."""
        ...

    def describe(self) -> dict[str, Any]:
        """Executor, workers and chunksize as used, for the manifest."""
        ...


def make_executor(
    execution: ExecutionConfig, settings: BacktestSettings, n_jobs: int
) -> Executor:
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

    return DaskExecutor(settings, workers, execution.dask_address)

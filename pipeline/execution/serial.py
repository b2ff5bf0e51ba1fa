"""The reference executor: one ticker after another in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob, run_job


class SerialExecutor:
    def __init__(self, settings: BacktestSettings) -> None:
        self.settings = settings

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Nothing was started."""

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        """Yield (job index, result) in job order. Unlike the pools, a task's exception is
        raised here, where a debugger can see it."""
        for index, job in enumerate(jobs):
            own = job.settings if job.settings is not None else self.settings
            yield index, run_job(job, own)

    def describe(self) -> dict[str, Any]:
        return {"executor": "serial", "workers": 1, "chunksize": 1}

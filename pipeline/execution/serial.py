"""The reference executor: one ticker after another in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob, run_job


class SerialExecutor:
    def __init__(self, settings: BacktestSettings) -> None:
        self.settings = settings

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        """Yield (job index, result) in job order."""
        for index, job in enumerate(jobs):
            yield index, run_job(job, self.settings)

    def prepare(self) -> None:
        """Nothing to start."""

    def describe(self) -> dict[str, Any]:
        return {"executor": "serial", "workers": 1, "chunksize": 1}

"""Dask: the same per-ticker task on a cluster, for universes that outgrow one machine.

With `dask_address` the run connects to an existing scheduler; its workers must see the cache
directory at the same absolute path (a shared filesystem), because jobs carry file paths, not
prices. Without an address a local cluster of `workers` single-threaded processes is started.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob, run_job

logger = logging.getLogger(__name__)


class DaskExecutor:
    def __init__(self, settings: BacktestSettings, workers: int, address: str | None) -> None:
        self.settings = settings
        self.workers = workers
        self.address = address
        self._cluster_workers: int | None = None

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if self.address is None:
            cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
        client = Client(self.address or cluster)
        try:
            self._cluster_workers = len(client.scheduler_info().get("workers", {}))
            settings = client.scatter(self.settings, broadcast=True)
            futures = client.map(run_job, list(jobs), settings=settings, pure=False)
            index_of = {future.key: index for index, future in enumerate(futures)}
            for future in as_completed(futures):
                yield index_of[future.key], _result_of(future, jobs[index_of[future.key]])
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def describe(self) -> dict[str, Any]:
        return {
            "executor": "dask",
            "workers": self._cluster_workers or self.workers,
            "chunksize": 1,
            "dask_address": self.address or "local cluster",
        }


def _result_of(future: Any, job: TickerJob) -> TickerResult:
    try:
        return future.result()
    except Exception as exc:  # KilledWorker after Dask's own retries, or a task error
        return TickerResult(job.ticker, "failed", f"{type(exc).__name__}: {exc}")

"""What a measurement runs on: the configured tickers' cached prices, as planned jobs.

Both `pipeline bench` and `pipeline tune` time the backtest stage only, so the data stage runs
first (once, untimed) and the cache stays locked while the jobs read it, as in a real run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import TypeVar

from pipeline.config import BacktestSettings, Config
from pipeline.data.cache import PriceCache
from pipeline.errors import PipelineError
from pipeline.execution.jobs import TickerJob
from pipeline.execution.worker import worker_context
from pipeline.runner import plan_jobs, run_data_stage

T = TypeVar("T")


class NothingToMeasureError(PipelineError):
    """No requested ticker reached the cache, so there is no backtest to time."""


@dataclass(frozen=True)
class Workload:
    """Jobs ready to run (their prices are cached) and the tickers the data stage lost."""

    jobs: tuple[TickerJob, ...]
    failed_downloads: tuple[str, ...]

    @property
    def tickers(self) -> tuple[str, ...]:
        return tuple(job.ticker for job in self.jobs)


@contextmanager
def cached_workload(config: Config, show_progress: bool = False) -> Iterator[Workload]:
    """Run the data stage, then yield the jobs while holding the cache lock."""
    cache = PriceCache(config.data.cache_dir)
    with cache.lock():
        downloads = run_data_stage(config, cache, show_progress)
        jobs = tuple(plan_jobs(config, downloads))
        failed = tuple(item.ticker for item in downloads.failures)
        if not jobs:
            reasons = "; ".join(f"{item.ticker}: {item.reason}" for item in downloads.failures)
            raise NothingToMeasureError(f"no ticker's prices could be loaded ({reasons})")
        yield Workload(jobs, failed)


def settings_with_fit(config: Config, fast_path: bool) -> BacktestSettings:
    """The config's backtest settings with `model.fast_path` set as asked."""
    model = config.model.model_copy(update={"fast_path": fast_path})
    return config.backtest_settings.model_copy(update={"model": model})


def spread_sample(items: Sequence[T], size: int | None) -> list[T]:
    """`size` items spread evenly over `items`, in their order (all of them when size is None
    or not smaller): the first, then every (len / size)-th, so a sorted universe is sampled
    across its whole range rather than at its start."""
    if size is None or size >= len(items):
        return list(items)
    if size < 1:
        raise ValueError(f"a sample needs at least 1 ticker, got {size}")
    return [items[i * len(items) // size] for i in range(size)]


def forkserver_context() -> BaseContext:
    """The start method every measured variant uses, CrashProofPool's own (see
    `execution.worker.worker_context`): using it for every variant, not only where it is
    needed, keeps their start-up costs comparable."""
    return worker_context()

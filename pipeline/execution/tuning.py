"""How many workers, and how many tickers each worker takes at a time."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from statistics import median

logger = logging.getLogger(__name__)

# One chunk should cost well above the round trip of sending it and its results (about a
# millisecond on the pool, a few on Dask, whose best practices ask for tasks of 100 ms or more),
# so that the overhead stays a few percent of the work on either executor.
TARGET_CHUNK_SECONDS = 0.2
# Enough chunks per worker that the last ones do not leave cores idle at the end of a run.
MIN_CHUNKS_PER_WORKER = 4
# task_timeout_seconds = "auto": a ticker this many times slower than the median of the
# measured ones is a runaway (tickers differ in length, and a shared machine in speed, by far
# less), but never under the floor; until a task has been timed, the generous ceiling applies.
AUTO_TIMEOUT_FACTOR = 30.0
AUTO_TIMEOUT_FLOOR_SECONDS = 60.0
AUTO_TIMEOUT_UNMEASURED_SECONDS = 900.0

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpu_count() -> int:
    """CPUs this process may actually use: affinity mask and cgroup quota, not just the host."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(_CGROUP_CPU_MAX)
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def cgroup_cpu_quota(cpu_max: Path) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` file ("max 100000" or "200000 100000")."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def resolve_workers(setting: int | str, n_tasks: int) -> int:
    """`auto` is the usable CPU count; never more workers than tasks, nor than usable CPUs.

    The task is CPU-bound: a process beyond the CPUs it may run on adds memory (a worker holds
    scikit-learn and a ticker's frames, about 180 MB) and no speed. The cap is logged when a
    setting asked for more.
    """
    cpus = usable_cpu_count()
    if setting == "auto":
        return max(1, min(cpus, n_tasks))
    asked = int(setting)
    if asked > cpus and n_tasks > cpus:
        logger.warning(
            "execution.workers = %d, but this machine runs %d processes at once: using %d",
            asked,
            cpus,
            cpus,
        )
    return max(1, min(asked, cpus, n_tasks))


def choose_chunksize(
    seconds_per_task: float,
    n_tasks: int,
    workers: int,
    target_chunk_seconds: float = TARGET_CHUNK_SECONDS,
    min_chunks_per_worker: int = MIN_CHUNKS_PER_WORKER,
) -> int:
    """Tasks per chunk from a measured time per task.

    Long enough that a chunk takes about `target_chunk_seconds`, but capped so that every worker
    still gets `min_chunks_per_worker` chunks: the cap wins, idle cores cost more than overhead.
    """
    if n_tasks <= 0 or workers <= 0:
        return 1
    by_overhead = math.ceil(target_chunk_seconds / max(seconds_per_task, 1e-9))
    by_balance = n_tasks // (workers * min_chunks_per_worker)
    return max(1, min(by_overhead, by_balance))


class ChunkPlan:
    """How many tasks go in the next chunk: the setting when it is a number; for "auto", single
    tasks while a pilot of `pilot_per_worker` tasks per worker is timed, then `choose_chunksize`
    from the median of what the workers measured (the pilot's tasks are real work, not extra).
    """

    def __init__(
        self, setting: int | str, n_tasks: int, workers: int, pilot_per_worker: int = 1
    ) -> None:
        self.setting = setting
        self.n_tasks = n_tasks
        self.workers = max(1, workers)
        self.pilot_size = min(pilot_per_worker * self.workers, max(n_tasks, 1))
        self.chosen: int | None = setting if isinstance(setting, int) else None
        self._seconds: list[float] = []
        self._sample: list[float] = []

    @property
    def in_pilot(self) -> bool:
        return self.chosen is None and len(self._seconds) < self.pilot_size

    def observe(self, seconds_per_task: float) -> None:
        if self.chosen is None:
            self._seconds.append(seconds_per_task)
        if len(self._sample) < self.pilot_size:
            self._sample.append(seconds_per_task)

    @property
    def median_task_seconds(self) -> float | None:
        """The median of the first tasks timed (the pilot's, whatever the setting)."""
        return median(self._sample) if self._sample else None

    def size(self) -> int:
        """The next chunk's size; the first call after the pilot makes the choice."""
        if self.chosen is not None:
            return self.chosen
        if self.in_pilot:
            return 1
        self.chosen = choose_chunksize(median(self._seconds), self.n_tasks, self.workers)
        logger.info("chunksize %d chosen from the pilot", self.chosen)
        return self.chosen


def resolve_task_timeout(
    setting: float | str | None, median_task_seconds: float | None
) -> float | None:
    """Seconds a task may run: the setting's, none for "off", or for "auto" derived from the
    work: AUTO_TIMEOUT_FACTOR times the median measured task, at least the floor."""
    if setting is None or setting == "off":
        return None
    if setting != "auto":
        return float(setting)
    if median_task_seconds is None:
        return AUTO_TIMEOUT_UNMEASURED_SECONDS
    return max(AUTO_TIMEOUT_FLOOR_SECONDS, AUTO_TIMEOUT_FACTOR * median_task_seconds)

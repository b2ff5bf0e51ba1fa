"""How many workers, and how many tickers each worker takes at a time."""

from __future__ import annotations

import math
import os
from pathlib import Path

# One chunk should cost well above the round trip of sending it and its results (about a
# millisecond), so that inter-process overhead stays a few percent of the work.
TARGET_CHUNK_SECONDS = 0.05
# Enough chunks per worker that the last ones do not leave cores idle at the end of a run.
MIN_CHUNKS_PER_WORKER = 4

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
    """`auto` is the usable CPU count; never more workers than tasks."""
    workers = usable_cpu_count() if setting == "auto" else int(setting)
    return max(1, min(workers, n_tasks))


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

"""A crash-proof process pool for the per-ticker task.

Why not `multiprocessing.Pool.map`: a worker killed by the OS (SIGKILL, the OOM killer) or
crashing in native code makes it wait forever (python/cpython#96062), and
`ProcessPoolExecutor` fails every pending task when one worker dies. Here each worker has its own
pipe and the parent knows which chunk each worker holds, so a dead worker costs exactly the task
it was running: that task is retried once in a fresh worker, then marked failed; the rest of its
chunk is handed out again. A task over the timeout has its worker killed the same way.

Start method: "forkserver". The download stage ran threads in this process, and forking a process
that has threads can deadlock a child on a lock some other thread held. The fork server is a
fresh single-threaded process that has imported the backtest code once, so workers are cheap
forks of it that start with scikit-learn already loaded.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from statistics import median
from typing import Any

import numpy as np
import pandas as pd

from pipeline.backtest.result import TickerResult
from pipeline.backtest.task import backtest_ticker
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import choose_chunksize

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # the first run and one retry in a fresh worker
PILOT_TASKS_PER_WORKER = 2
_POLL_SECONDS = 0.5
_SHUTDOWN_GRACE_SECONDS = 2.0


def _start_method() -> str:
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


Task = Callable[[TickerJob, BacktestSettings], TickerResult]


def _worker_loop(conn: Connection, task: Task, settings: BacktestSettings) -> None:
    """Run chunks sent by the parent until told to stop or the parent is gone."""
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _warm_up(settings)
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for index, job in chunk:
            started = time.perf_counter()
            result = _run_guarded(task, job, settings)
            conn.send((index, result, time.perf_counter() - started))


def _warm_up(settings: BacktestSettings) -> None:
    """Pay a fresh worker's one-off costs (lazy imports, first calls) before timed work.

    Without it the pilot measures warm-up, not work: first tasks ran 5-10x slower than later
    ones, and "auto" chose chunks far too small.
    """
    days = pd.bdate_range("2000-01-03", periods=200)
    steps = np.resize(np.array([0.01, -0.012, 0.0, 0.007, -0.004, 0.011, -0.009]), len(days))
    prices = pd.Series(100.0 * np.exp(np.cumsum(steps)), index=days)
    toy = settings.backtest.model_copy(update={"mode": "in_sample", "min_eval_days": 1})
    backtest_ticker("WARMUP", prices, settings.model_copy(update={"backtest": toy}))


def _run_guarded(task: Task, job: TickerJob, settings: BacktestSettings) -> TickerResult:
    try:
        return task(job, settings)
    except Exception as exc:  # a bug in one ticker's task must not take the worker down
        return TickerResult(job.ticker, "failed", f"{type(exc).__name__}: {exc}")


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    chunk: deque[int] = field(default_factory=deque)
    task_started: float = 0.0

    @property
    def busy(self) -> bool:
        return bool(self.chunk)


@dataclass
class PoolStats:
    """What the pool did, for the manifest."""

    workers: int
    chunksize: int | str
    start_method: str
    worker_restarts: int = 0
    chosen_chunksize: int | None = None


class CrashProofPool:
    """Run `task(job, settings)` over jobs on `workers` processes.

    `run` yields (job index, result) as results arrive; `task` must be a top-level function
    (it is pickled by reference), `run_job` unless a test needs another.
    """

    def __init__(
        self,
        settings: BacktestSettings,
        workers: int,
        chunksize: int | str = "auto",
        task_timeout: float | None = None,
        task: Task = run_job,
    ) -> None:
        self.task = task
        self.settings = settings
        self.chunksize = chunksize
        self.task_timeout = task_timeout
        self.context = mp.get_context(_start_method())
        if self.context.get_start_method() == "forkserver":
            self.context.set_forkserver_preload(["pipeline.execution.jobs"])
        self.stats = PoolStats(workers, chunksize, self.context.get_start_method())
        self._workers: list[_Worker] = []
        self._task_seconds: list[float] = []

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        queue: deque[int] = deque(range(len(jobs)))
        attempts = [0] * len(jobs)
        self._workers = [self._spawn() for _ in range(min(self.stats.workers, len(jobs)))]
        try:
            while queue or any(worker.busy for worker in self._workers):
                self._dispatch(queue, jobs)
                yield from self._collect(queue, attempts, jobs)
        except BaseException:
            # Ctrl-C, or the consumer stopped early: no worker may outlive the run.
            self._kill_all()
            raise
        self._shutdown()

    def prepare(self) -> None:
        """Start the fork server now, so its imports overlap the download stage."""
        if self.stats.start_method == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()

    def describe(self) -> dict[str, Any]:
        chunksize = self.stats.chosen_chunksize or self.chunksize
        return {
            "executor": "pool",
            "workers": self.stats.workers,
            "chunksize": chunksize,
            "chunksize_setting": self.chunksize,
            "start_method": self.stats.start_method,
            "worker_restarts": self.stats.worker_restarts,
        }

    def _spawn(self) -> _Worker:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker_loop, args=(child_end, self.task, self.settings), daemon=True
        )
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def _current_chunksize(self, remaining: int) -> int:
        if isinstance(self.chunksize, int):
            return self.chunksize
        # Pilot: single tasks until each worker has timed PILOT_TASKS_PER_WORKER of them (the
        # first call in a fresh worker pays one-off warm-up costs), then size chunks from the
        # median time the workers measured, which leaves out the pipes and the queueing.
        if len(self._task_seconds) < PILOT_TASKS_PER_WORKER * len(self._workers):
            return 1
        if self.stats.chosen_chunksize is None:
            total = remaining + len(self._task_seconds)
            self.stats.chosen_chunksize = choose_chunksize(
                median(self._task_seconds), total, len(self._workers)
            )
            logger.info("pool: chunksize %d chosen from the pilot", self.stats.chosen_chunksize)
        return self.stats.chosen_chunksize

    def _dispatch(self, queue: deque[int], jobs: Sequence[TickerJob]) -> None:
        for worker in self._workers:
            if worker.busy or not queue:
                continue
            size = self._current_chunksize(len(queue))
            chunk = [queue.popleft() for _ in range(min(size, len(queue)))]
            worker.chunk.extend(chunk)
            worker.task_started = time.monotonic()
            try:
                worker.conn.send([(index, jobs[index]) for index in chunk])
            except (BrokenPipeError, EOFError, OSError):
                # The worker died while idle: nothing of this chunk ran, so no attempt counts.
                worker.chunk.clear()
                queue.extendleft(reversed(chunk))
                self._respawn(worker)

    def _collect(
        self, queue: deque[int], attempts: list[int], jobs: Sequence[TickerJob]
    ) -> Iterator[tuple[int, TickerResult]]:
        busy = [worker for worker in self._workers if worker.busy]
        ready = set(
            wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy],
                timeout=_POLL_SECONDS,
            )
        )
        for worker in busy:
            yield from self._drain(worker)
            if worker.busy and worker.process.sentinel in ready:
                yield from self._replace(worker, queue, attempts, jobs, self._death_reason(worker))
            elif worker.busy and self._overdue(worker):
                index = worker.chunk.popleft()
                worker.process.kill()
                yield from self._replace(worker, queue, attempts, jobs, None)
                reason = f"timed out after {self.task_timeout:g} s"
                yield index, TickerResult(jobs[index].ticker, "failed", reason)

    def _drain(self, worker: _Worker) -> Iterator[tuple[int, TickerResult]]:
        try:
            while worker.busy and worker.conn.poll():
                index, result, seconds = worker.conn.recv()
                self._task_seconds.append(seconds)
                worker.task_started = time.monotonic()
                worker.chunk.remove(index)
                yield index, result
        except (EOFError, OSError):
            return

    def _overdue(self, worker: _Worker) -> bool:
        if self.task_timeout is None:
            return False
        return time.monotonic() - worker.task_started > self.task_timeout

    @staticmethod
    def _death_reason(worker: _Worker) -> str:
        worker.process.join(timeout=1)
        code = worker.process.exitcode
        if code is not None and code < 0:
            return f"worker process killed by {signal.Signals(-code).name}"
        return f"worker process exited with code {code}"

    def _replace(
        self,
        worker: _Worker,
        queue: deque[int],
        attempts: list[int],
        jobs: Sequence[TickerJob],
        death: str | None,
    ) -> Iterator[tuple[int, TickerResult]]:
        """Swap a dead or killed worker for a fresh one; requeue or fail what it held."""
        lost = list(worker.chunk)
        if death is not None and lost:
            running, lost = lost[0], lost[1:]
            attempts[running] += 1
            if attempts[running] >= MAX_ATTEMPTS:
                reason = f"{death}, {attempts[running]} times"
                yield running, TickerResult(jobs[running].ticker, "failed", reason)
            else:
                ticker = jobs[running].ticker
                logger.warning("pool: %s while running %s; retrying it", death, ticker)
                queue.appendleft(running)
        queue.extendleft(reversed(lost))
        worker.chunk.clear()
        self._respawn(worker)

    def _respawn(self, worker: _Worker) -> None:
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        self._workers[self._workers.index(worker)] = self._spawn()
        self.stats.worker_restarts += 1

    def _kill_all(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
        for worker in self._workers:
            worker.process.join()
            worker.conn.close()

    def _shutdown(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        deadline = time.monotonic() + _SHUTDOWN_GRACE_SECONDS
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

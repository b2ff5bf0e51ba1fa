"""A crash-proof process pool for the per-ticker task.

Why not `multiprocessing.Pool.map`: a worker killed by the OS (SIGKILL, the OOM killer) or
crashing in native code makes it wait forever (python/cpython#96062), and
`ProcessPoolExecutor` fails every pending task when one worker dies. Here each worker has its own
pipe and the parent knows which chunk each worker holds, so a dead worker costs exactly the task
it was running: that task is retried once in a fresh worker, then marked failed; the rest of its
chunk is handed out again. A task over the timeout has its worker killed the same way.

The first workers are forked from this process when it has a single thread (before the data
stage starts its threads: `worker.direct_fork_context`), which costs milliseconds; replacements,
and all workers otherwise, start by fork server (see `worker.worker_context`), which costs its
start and imports once. The fork server is a process too and
can die (the OOM killer, a stray kill): its workers then die with it (their parent-death signal)
and their tickers are handed out again without counting as attempts, since nothing of theirs
crashed; a new fork server is started, or, if that fails, workers are started by spawn.

Lifecycle: `with CrashProofPool(...) as pool:` starts the workers at once (they warm up while the
data stage runs) and stops every process it started when the block ends, however it ends; `run`
may be called several times inside it. `run` outside a `with` block starts and stops the
workers itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from pipeline.backtest.models import (
    EstimatorImportDeferred,
    deferring_estimator_imports,
    estimator_is_imported,
)
from pipeline.backtest.result import TickerResult
from pipeline.backtest.task import backtest_ticker
from pipeline.config import BacktestSettings
from pipeline.errors import PipelineError
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import ChunkPlan, resolve_task_timeout
from pipeline.execution.worker import (
    Task,
    become_worker,
    direct_fork_context,
    keep_main_out_of_workers,
    parent_is_gone,
    run_guarded,
    worker_context,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # the first run and one retry in a fresh worker
PILOT_TASKS_PER_WORKER = 2
_POLL_SECONDS = 0.5
_SHUTDOWN_GRACE_SECONDS = 2.0
# Workers that die before they are ready, in a row, before the pool gives up starting them.
_MAX_START_FAILURES = 5
_READY = "ready"
# A worker's answer for a job it passed on to the fitting worker (`Chunk.may_defer`).
_DEFERRED = "deferred"
# Jobs the other workers may pass on to the fitting worker, at least, and as a share of the
# jobs run so far: past that, they import the estimator themselves (a full run fits everywhere).
_MIN_DEFERRALS = 16
_DEFERRAL_SHARE = 0.1
# Passed-on jobs waiting for the fitting worker beyond which an idle worker takes them itself.
_DEFERRED_BACKLOG = 8


@dataclass(frozen=True, slots=True)
class Chunk:
    """Jobs sent to a worker at once, by their index in the run. `may_defer`: a job whose model
    would make this worker import the estimator's module (scikit-learn and scipy.stats, 0.9 s
    of a core) comes back as _DEFERRED, for the fitting worker, instead.

    Why: a nightly run refits a few dozen of its hundreds of tickers, and every worker that
    met one paid that import; with one worker doing the fits, one process pays it.
    """

    jobs: list[tuple[int, TickerJob]]
    may_defer: bool = False


class PoolError(PipelineError, RuntimeError):
    """The pool cannot start worker processes at all."""


def _worker_loop(conn: Connection, task: Task, settings: BacktestSettings) -> None:
    """Warm up, say so, then run chunks sent by the parent until told to stop or it is gone."""
    parent = become_worker()
    # A worker forked from the main process inherits its log handlers (the terminal's display,
    # the run's log file); it logs as a fork server's worker does, to stderr for warnings.
    logging.getLogger().handlers.clear()
    _warm_up(settings)
    try:
        conn.send(_READY)
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            for index, job in chunk.jobs:
                if parent_is_gone(parent):
                    return
                conn.send(_run_one(index, job, task, settings, chunk.may_defer))
    except (EOFError, OSError):  # the parent is gone or closed the pipe: nothing to report to
        return


def _run_one(
    index: int, job: TickerJob, task: Task, settings: BacktestSettings, may_defer: bool
) -> tuple[int, TickerResult | str, float | None]:
    """(index, result, seconds) of one job; with `may_defer`, _DEFERRED in place of the
    result of a job that would import the estimator's module. A sweep's job (with variants)
    is never passed on: it stores each configuration's result as it goes, and run again it
    would find the entries it stored itself."""
    may_defer = may_defer and not job.variants
    modules = len(sys.modules)
    started = time.perf_counter()
    try:
        with deferring_estimator_imports() if may_defer else contextlib.nullcontext():
            result = run_guarded(task, job, settings)
    except EstimatorImportDeferred:
        return index, _DEFERRED, None
    seconds = time.perf_counter() - started
    # A task that imported modules (a worker's first fit imports scikit-learn) timed the
    # import, not the work: no sample for the chunksize or the timeout.
    return index, result, seconds if len(sys.modules) == modules else None


def _warm_up(settings: BacktestSettings) -> None:
    """Pay a fresh worker's one-off costs (first calls) before timed work, so that the pilot
    measures work: first tasks ran 5-10x slower than later ones, and "auto" chose chunks far
    too small. A failure here is left to the real tasks.

    The toy backtest fits a model, so it runs only where the estimator's module is loaded
    already (a fork server's worker: the server preloads it). A worker forked from the main
    process imports scikit-learn at its first fit instead, and one whose every ticker reuses
    its stored refits never does: that import is a second or more of each worker's start,
    a sixth of a nightly run of an unchanged universe. The task that imports is no pilot
    sample (`_worker_loop`).
    """
    if not estimator_is_imported(settings.model.kind):
        return
    days = pd.bdate_range("2000-01-03", periods=200)
    steps = np.resize(np.array([0.01, -0.012, 0.0, 0.007, -0.004, 0.011, -0.009]), len(days))
    prices = pd.Series(100.0 * np.exp(np.cumsum(steps)), index=days)
    toy = settings.backtest.model_copy(update={"mode": "in_sample", "min_eval_days": 1})
    with contextlib.suppress(Exception):
        backtest_ticker("WARMUP", prices, settings.model_copy(update={"backtest": toy}))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    via_server: bool = False  # started by the fork server (else forked from this process)
    ready: bool = False
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
    fork_server_restarts: int = 0
    chosen_chunksize: int | None = None
    deferred: int = 0  # jobs passed on to the fitting worker


class CrashProofPool:
    """Run `task(job, settings)` over jobs on `workers` processes.

    `run` yields (job index, result) as results arrive; `task` must be a top-level function
    (it is pickled by reference), `run_job` unless a test needs another. A job that carries its
    own settings runs with them instead of `settings`.
    """

    def __init__(
        self,
        settings: BacktestSettings,
        workers: int,
        chunksize: int | str = "auto",
        task_timeout: float | str | None = None,
        task: Task = run_job,
    ) -> None:
        self.task = task
        self.settings = settings
        self.chunksize = chunksize
        self.task_timeout = task_timeout
        self.context: BaseContext = worker_context()
        self.stats = PoolStats(workers, chunksize, self.context.get_start_method())
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._plan: ChunkPlan | None = None
        self._jobs_seen = 0  # over every `run`, for the share of jobs that may be deferred

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> CrashProofPool:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._kill_all()

    def start(self, workers: int | None = None) -> None:
        """Start the workers now, so that their start and warm-up overlap other work."""
        if self._workers:
            return
        keep_main_out_of_workers()
        count = self.stats.workers if workers is None else min(workers, self.stats.workers)
        direct = direct_fork_context()
        if direct is not None:
            self.stats.start_method = "fork"
        try:
            self._workers = [self._spawn(direct) for _ in range(max(1, count))]
        except BaseException:
            self._kill_all()
            raise

    def close(self) -> None:
        """Ask idle workers to stop, kill what does not within a grace period; safe twice."""
        if self._workers and self.stats.deferred:
            logger.info(
                "pool: %d jobs needing a model were passed on to the worker that fits",
                self.stats.deferred,
            )
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        deadline = time.monotonic() + _SHUTDOWN_GRACE_SECONDS
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        self._kill_all()

    def prepare(self) -> None:
        """Start the workers (the old name of `start`)."""
        self.start()

    def describe(self) -> dict[str, Any]:
        chunksize = self.stats.chosen_chunksize or self.chunksize
        return {
            "executor": "pool",
            "workers": self.stats.workers,
            "chunksize": chunksize,
            "chunksize_setting": self.chunksize,
            "start_method": self.stats.start_method,
            "worker_restarts": self.stats.worker_restarts,
            "fork_server_restarts": self.stats.fork_server_restarts,
            "task_timeout_seconds": self._timeout(),
            "task_timeout_setting": self.task_timeout,
        }

    # --- a run ----------------------------------------------------------------------------

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        owned = not self._workers
        if not jobs:
            return
        self.start(workers=len(jobs))
        self._jobs_seen += len(jobs)
        queue: deque[int] = deque(range(len(jobs)))
        deferred: deque[int] = deque()  # passed on by a worker, for the fitting worker
        attempts = [0] * len(jobs)
        plan = ChunkPlan(self.chunksize, len(jobs), len(self._workers), PILOT_TASKS_PER_WORKER)
        self._plan = plan
        try:
            while queue or deferred or any(worker.busy for worker in self._workers):
                self._dispatch(queue, deferred, jobs, plan)
                if isinstance(self.chunksize, str) and plan.chosen is not None:
                    self.stats.chosen_chunksize = plan.chosen
                yield from self._collect(queue, deferred, attempts, jobs, plan)
        except BaseException:
            # Ctrl-C, SIGTERM, or the consumer stopped early: no worker may outlive the run.
            self._kill_all()
            raise
        if owned:
            self.close()

    def _spawn(self, direct: BaseContext | None = None) -> _Worker:
        """A new worker process: forked from this one with a `direct` context, else from the
        pool's context; by spawn if the fork server cannot be started."""
        error: BaseException | None = None
        for attempt in range(3):
            context = direct or self.context
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=_worker_loop, args=(child_end, self.task, self.settings), daemon=True
            )
            try:
                process.start()
            except (OSError, EOFError) as exc:
                error = exc
                parent_end.close()
                if attempt == 0 and self._server_is_dead(wait_seconds=2.0):
                    # The next start finds it dead and starts a new one.
                    logger.warning("pool: the fork server died; starting a new one")
                    self.stats.fork_server_restarts += 1
                    continue
                self._fall_back_to_spawn(exc)
                continue
            finally:
                child_end.close()
            via_server = context.get_start_method() == "forkserver"
            return _Worker(process, parent_end, via_server)
        raise PoolError(f"cannot start worker processes for the backtest: {error}")

    def _fall_back_to_spawn(self, error: BaseException) -> None:
        if self.context.get_start_method() == "spawn":
            raise PoolError(f"cannot start worker processes for the backtest: {error}") from None
        logger.warning("pool: cannot start a fork server (%s); starting workers by spawn", error)
        self.context = worker_context("spawn")
        self.stats.start_method = "spawn"

    def _dispatch(
        self, queue: deque[int], deferred: deque[int], jobs: Sequence[TickerJob], plan: ChunkPlan
    ) -> None:
        """Hand each idle worker its next chunk. The first worker is the fitting one: it takes
        the jobs others passed on before any other; the others take them only when they pile
        up or the fitting worker is not ready (it is being replaced)."""
        for slot, worker in enumerate(self._workers):
            if worker.busy or not worker.ready:
                continue
            source = self._source(slot, queue, deferred)
            if not source:
                continue
            size = plan.size()
            chunk = [source.popleft() for _ in range(min(size, len(source)))]
            may_defer = slot > 0 and source is queue and self._may_defer()
            worker.chunk.extend(chunk)
            worker.task_started = time.monotonic()
            try:
                worker.conn.send(Chunk([(index, jobs[index]) for index in chunk], may_defer))
            except (BrokenPipeError, EOFError, OSError):
                # The worker died while idle: nothing of this chunk ran, so no attempt counts.
                worker.chunk.clear()
                source.extendleft(reversed(chunk))
                self._respawn(worker)

    def _source(self, slot: int, queue: deque[int], deferred: deque[int]) -> deque[int]:
        if slot == 0:
            return deferred or queue
        fitter = self._workers[0]
        if queue or not deferred:
            return queue
        return deferred if len(deferred) > _DEFERRED_BACKLOG or not fitter.ready else queue

    def _may_defer(self) -> bool:
        limit = max(_MIN_DEFERRALS, _DEFERRAL_SHARE * self._jobs_seen)
        return len(self._workers) > 1 and self.stats.deferred < limit

    def _timeout(self) -> float | None:
        median = self._plan.median_task_seconds if self._plan is not None else None
        return resolve_task_timeout(self.task_timeout, median)

    def _wait_seconds(self) -> float:
        """Until the next poll, or sooner when a running task reaches its timeout then."""
        timeout = self._timeout()
        if timeout is None:
            return _POLL_SECONDS
        deadlines = [w.task_started + timeout for w in self._workers if w.busy]
        if not deadlines:
            return _POLL_SECONDS
        return min(_POLL_SECONDS, max(0.0, min(deadlines) - time.monotonic()) + 0.001)

    def _collect(
        self,
        queue: deque[int],
        deferred: deque[int],
        attempts: list[int],
        jobs: Sequence[TickerJob],
        plan: ChunkPlan,
    ) -> Iterator[tuple[int, TickerResult]]:
        watched = [worker for worker in self._workers if worker.busy or not worker.ready]
        handles = [w.conn for w in watched] + [w.process.sentinel for w in watched]
        ready = set(wait(handles, timeout=self._wait_seconds()))
        died = [w for w in watched if w.process.sentinel in ready]
        if died and self._fork_server_died(died):
            self._restart_fork_server(queue)
            return
        for worker in watched:
            yield from self._drain(worker, plan, deferred)
            if worker.process.sentinel in ready and (worker.busy or not worker.ready):
                yield from self._replace(worker, queue, attempts, jobs, self._death_reason(worker))
            elif worker.busy and self._overdue(worker):
                index = worker.chunk.popleft()
                worker.process.kill()
                yield from self._replace(worker, queue, attempts, jobs, None)
                reason = f"timed out after {self._timeout():g} s"
                yield index, TickerResult(jobs[index].ticker, "failed", reason)

    def _drain(
        self, worker: _Worker, plan: ChunkPlan, deferred: deque[int]
    ) -> Iterator[tuple[int, TickerResult]]:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message == _READY:
                    worker.ready = True
                    self._start_failures = 0
                    continue
                index, result, seconds = message
                if seconds is not None:
                    plan.observe(seconds)
                worker.task_started = time.monotonic()
                worker.chunk.remove(index)
                if isinstance(result, str):  # _DEFERRED: for the fitting worker
                    self.stats.deferred += 1
                    deferred.append(index)
                    continue
                yield index, result
        except (EOFError, OSError):
            return

    def _overdue(self, worker: _Worker) -> bool:
        timeout = self._timeout()
        if timeout is None:
            return False
        return time.monotonic() - worker.task_started >= timeout

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
        if not worker.ready and not lost:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                raise PoolError(
                    f"worker processes die as they start ({death}, {self._start_failures} "
                    "times in a row)"
                )
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
        self._stop(worker)
        self._workers[self._workers.index(worker)] = self._spawn()
        self.stats.worker_restarts += 1

    # --- the fork server ------------------------------------------------------------------

    def _fork_server_died(self, died: Sequence[_Worker]) -> bool:
        """Whether workers died because their fork server did: it reports each worker's end
        on the worker's sentinel, so a dead server leaves them closed with no exit code
        (multiprocessing then says 255)."""
        if any(not worker.via_server or worker.process.exitcode != 255 for worker in died):
            return False
        return self._server_is_dead(wait_seconds=2.0)

    @staticmethod
    def _server_is_dead(wait_seconds: float) -> bool:
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid
        if pid is None:
            return False
        # Its pipes close as it exits, a moment before the kernel marks it dead. WNOWAIT: look
        # without reaping it, which multiprocessing does when it starts the next one.
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def _restart_fork_server(self, queue: deque[int]) -> None:
        """Its workers died with the fork server: hand their tickers out again, uncounted
        (nothing of theirs crashed), and start new workers through a new fork server."""
        orphans = [worker for worker in self._workers if worker.via_server]
        held = sorted(index for worker in orphans for index in worker.chunk)
        logger.warning(
            "pool: the fork server died; starting a new one and %d workers (%d tickers they "
            "held are handed out again)",
            len(orphans),
            len(held),
        )
        queue.extendleft(reversed(held))
        for worker in orphans:
            worker.chunk.clear()
            # The dead server cannot report its workers' ends: kill them by pid to be sure.
            with contextlib.suppress(OSError):
                if worker.process.pid is not None:
                    os.kill(worker.process.pid, signal.SIGKILL)
            self._stop(worker)
        self.stats.fork_server_restarts += 1
        self._workers = [self._spawn() if w.via_server else w for w in self._workers]

    # --- stopping -------------------------------------------------------------------------

    @staticmethod
    def _stop(worker: _Worker) -> None:
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=_SHUTDOWN_GRACE_SECONDS)

    def _kill_all(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                if worker.process.is_alive():
                    worker.process.kill()
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.process.join(timeout=_SHUTDOWN_GRACE_SECONDS)
                worker.conn.close()
        self._workers = []

"""Dask: the same per-ticker task on a cluster, for universes that outgrow one machine.

With `dask_address` the run connects to a running scheduler (`dask scheduler`). Its workers must
import the same `pipeline` version and see the cache directory at the same absolute path (a shared
filesystem), because jobs carry file paths, not prices. Without an address, a local cluster of
`workers` single-threaded worker processes is started for the run and closed after it, even when
the run fails or is interrupted.

Dask costs a few milliseconds per task (about 3 ms measured on 2 cores, where the scheduler, the
client and the workers share them), which is a third of a short ticker. So jobs travel in chunks:
a pilot of single jobs, one per worker thread, measures the task time and `choose_chunksize` sizes
the rest, as the process pool does.

A worker's death counts against every task it held, running or queued (Dask's accounting), so a
`KilledWorker` (after the scheduler's own retries) does not say which ticker killed it. Its
tickers become suspects, each rerun alone once the rest of the run is done: alone, a ticker that
kills its worker again is the culprit and fails; the bystanders come through.

The settings travel inside every chunk (about 500 bytes pickled) rather than scattered once:
scattered data has no lineage, so when the workers holding it die, every task needing it is
cancelled ("lost dependencies") instead of being retried.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.errors import ConfigError, PipelineError
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import choose_chunksize

if TYPE_CHECKING:
    from dask.distributed import Client, Future

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
# An external scheduler may be up before its workers; wait this long for the first one.
WORKERS_TIMEOUT_SECONDS = 30.0
# Dask's best practices ask for tasks of 100 ms or more; chunks aim a little above that.
TARGET_CHUNK_SECONDS = 0.2
# As in the process pool: a task that kills its worker is tried twice, then fails.
LOCAL_ALLOWED_FAILURES = 1

Task = Callable[[TickerJob, BacktestSettings], TickerResult]
Chunk = tuple[tuple[int, TickerJob], ...]
ChunkOutput = tuple[list[tuple[int, TickerResult]], float]


class DaskClusterError(PipelineError, RuntimeError):
    """The Dask scheduler cannot be reached, has no workers, or was lost during the run."""


def run_chunk(chunk: Chunk, settings: BacktestSettings, task: Task = run_job) -> ChunkOutput:
    """`task` over one chunk of (job index, job) on one worker, and the seconds it took.

    A task's exception fails its ticker, not the rest of the chunk.
    """
    started = time.perf_counter()
    results = [(index, _run_guarded(task, job, settings)) for index, job in chunk]
    return results, time.perf_counter() - started


def _run_guarded(task: Task, job: TickerJob, settings: BacktestSettings) -> TickerResult:
    try:
        return task(job, settings)
    except Exception as exc:
        return TickerResult(job.ticker, "failed", f"{type(exc).__name__}: {exc}")


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of the local cluster as it starts.

    Ctrl-C in a terminal reaches the whole process group; the client alone decides how to stop
    (it closes the cluster), so the workers ignore it instead of printing tracebacks.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DaskExecutor:
    """Run `task(job, settings)` over jobs on a Dask cluster; `task` is `run_job` unless a
    test needs another (a top-level function: workers import it by name)."""

    def __init__(
        self,
        settings: BacktestSettings,
        workers: int,
        address: str | None,
        chunksize: int | str = "auto",
        task: Task = run_job,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.address = address
        self.chunksize = chunksize
        self.task = task
        self._threads = workers
        self._chosen_chunksize: int | None = chunksize if isinstance(chunksize, int) else None
        self._client: Client | None = None
        self._close: weakref.finalize | None = None

    def prepare(self) -> None:
        """Start the local cluster, or connect to the scheduler, while the data stage runs.

        An unreachable scheduler thus fails the run before any download. `run` closes what this
        started; `close` does when `run` never comes (and so does garbage collection).
        """
        if self._client is not None:
            return
        stack = ExitStack()
        try:
            stack.enter_context(_quiet_distributed())
            self._client = stack.enter_context(self._connect())
        except BaseException:
            stack.close()
            raise
        self._close = weakref.finalize(self, stack.close)

    def close(self) -> None:
        """Close the client and the local cluster, if any; safe to call twice."""
        if self._close is not None:
            self._close()
        self._client = None

    def run(self, jobs: Sequence[TickerJob]) -> Iterator[tuple[int, TickerResult]]:
        """Yield (job index, result) for every job as its chunk finishes."""
        try:
            if not jobs:
                return
            self.prepare()
            assert self._client is not None
            nthreads = self._client.nthreads()
            self.workers, self._threads = len(nthreads), sum(nthreads.values())
            yield from self._stream(self._client, jobs)
        finally:
            self.close()

    def describe(self) -> dict[str, Any]:
        return {
            "executor": "dask",
            "workers": self.workers,
            "threads": self._threads,
            "chunksize": self._chosen_chunksize or 1,
            "chunksize_setting": self.chunksize,
            "dask_address": self.address,
        }

    @contextmanager
    def _connect(self) -> Iterator[Client]:
        if self.address is not None:
            with connect_scheduler(self.address) as client:
                yield client
            return
        import dask
        from dask.distributed import Client, LocalCluster

        local_config = {
            "distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES,
            # Worker processes set their log levels when they import distributed, before
            # `silence_logs` applies (and it lapses while they shut down): tell them at spawn.
            "distributed.nanny.pre-spawn-environ.DASK_LOGGING__DISTRIBUTED": "error",
        }
        with dask.config.set(local_config):
            cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # The scheduler serves HTTP (health, metrics) even without a dashboard, on
                # 8787 by default, with a warning when that port is taken: any free port will do.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
                preload=[__name__],  # runs `dask_setup` in each worker process
            )
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client

    def _stream(
        self, client: Client, jobs: Sequence[TickerJob]
    ) -> Iterator[tuple[int, TickerResult]]:
        from dask.distributed import KilledWorker, as_completed

        run = _RunState(deque(enumerate(jobs)), len(jobs), min(self._threads, len(jobs)))
        finished = as_completed(loop=client.loop, with_results=True, raise_errors=False)

        def submit(chunk: Chunk) -> str:
            future = client.submit(run_chunk, chunk, self.settings, self.task, pure=False)
            run.in_flight[future.key] = chunk
            finished.add(future)
            return future.key

        self._submit_next(run, submit)
        for future, result in finished:
            chunk = run.in_flight.pop(future.key)
            if future.status == "cancelled":
                # Nothing here cancels a task: the cluster dropped the run (scheduler lost).
                reason = getattr(result, "reason", result)
                raise DaskClusterError(
                    f"the Dask cluster dropped the run's tasks ({reason}); "
                    f"{run.n_jobs - run.n_done} tickers were not finished"
                )
            outcome = _outcome(future, result)
            if not isinstance(outcome, BaseException):
                results, seconds = outcome
                run.seconds_per_task.append(seconds / len(chunk))
                run.n_done += len(results)
                yield from results
            elif isinstance(outcome, KilledWorker) and future.key not in run.solo:
                logger.warning(
                    "dask: workers died holding %s; rerunning each alone at the end",
                    ", ".join(job.ticker for _, job in chunk),
                )
                run.suspects.extend(chunk)
            else:
                reason = _failure_reason(outcome)
                run.n_done += len(chunk)
                yield from ((i, TickerResult(job.ticker, "failed", reason)) for i, job in chunk)
            self._submit_next(run, submit)

    def _submit_next(self, run: _RunState, submit: Callable[[Chunk], str]) -> None:
        """The pilot's single jobs until it has a sample per thread, then every remaining job
        in chunks of the chosen size; when nothing else runs, the next suspect, alone."""
        if run.pending and self._chosen_chunksize is None:
            if len(run.seconds_per_task) < run.pilot_size:
                for _ in range(min(run.pilot_size - len(run.in_flight), len(run.pending))):
                    submit((run.pending.popleft(),))
                return
            self._chosen_chunksize = choose_chunksize(
                median(run.seconds_per_task),
                run.n_jobs,
                self._threads,
                target_chunk_seconds=TARGET_CHUNK_SECONDS,
            )
            logger.info("dask: chunksize %d chosen from the pilot", self._chosen_chunksize)
        while run.pending:
            size = min(self._chosen_chunksize or 1, len(run.pending))
            submit(tuple(run.pending.popleft() for _ in range(size)))
        if run.suspects and not run.in_flight:
            run.solo.add(submit((run.suspects.popleft(),)))


@dataclass
class _RunState:
    """One run's bookkeeping: jobs not sent yet, chunks out, suspects waiting to run alone."""

    pending: deque[tuple[int, TickerJob]]
    n_jobs: int
    pilot_size: int
    in_flight: dict[str, Chunk] = field(default_factory=dict)
    suspects: deque[tuple[int, TickerJob]] = field(default_factory=deque)
    solo: set[str] = field(default_factory=set)
    seconds_per_task: list[float] = field(default_factory=list)
    n_done: int = 0


@contextmanager
def connect_scheduler(
    address: str, timeout: float | None = None, workers_timeout: float | None = None
) -> Iterator[Client]:
    """A client of the running scheduler at `address` that has at least one worker."""
    timeout = CONNECT_TIMEOUT_SECONDS if timeout is None else timeout
    workers_timeout = WORKERS_TIMEOUT_SECONDS if workers_timeout is None else workers_timeout
    with _open_client(address, timeout) as client:
        try:
            client.wait_for_workers(1, timeout=workers_timeout)
        except TimeoutError:
            raise DaskClusterError(
                f"the Dask scheduler at execution.dask_address={address!r} has no workers "
                f"after {workers_timeout:g} s; start some with `dask worker {address}`"
            ) from None
        yield client


def _open_client(address: str, timeout: float) -> Client:
    from dask.distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except ValueError as exc:
        error: PipelineError = ConfigError(
            f"execution.dask_address: {address!r} is not a scheduler address ({exc}); "
            "expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
        )
    except (OSError, TimeoutError) as exc:
        error = DaskClusterError(
            f"cannot reach the Dask scheduler at execution.dask_address={address!r}: {exc}; "
            "start it with `dask scheduler`, or leave dask_address out to run on a local cluster"
        )
    # The Client that failed to start is freed by the cycle collector, and freed during a later
    # Client's start it deadlocks distributed on its event-loop lock: free it here and now.
    gc.collect()
    raise error


def _outcome(future: Future, result: Any) -> ChunkOutput | BaseException:
    """A chunk's output, or the error that stopped it (as_completed's raise_errors=False form:
    an erred future's result is (type, exception, traceback))."""
    if future.status == "error":
        return result[1]
    return result


def _failure_reason(error: BaseException) -> str:
    if type(error).__name__ == "KilledWorker":
        return "its Dask worker died on every attempt, with no other ticker running (KilledWorker)"
    return f"{type(error).__name__}: {error}"


@contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Keep distributed's logging off stderr while the cluster is ours.

    Its INFO lines narrate every start and stop, and its errors about worker deaths are handled
    here: the executor warns about the tickers concerned and failures carry their reasons.
    """
    # Importing distributed sets its loggers' levels: import first, then quieten.
    import distributed  # noqa: F401

    names = [name for name in logging.root.manager.loggerDict if name.startswith("distributed")]
    loggers = [logging.getLogger(name) for name in ["distributed", *names]]
    previous = {logger_: logger_.level for logger_ in loggers}
    for logger_, level in previous.items():
        if level != logging.NOTSET or logger_.name == "distributed":
            logger_.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger_, level in previous.items():
            logger_.setLevel(level)

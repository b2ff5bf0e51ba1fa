"""Dask: the same per-ticker task on a cluster, for universes that outgrow one machine.

With `dask_address` the run connects to a running scheduler (`dask scheduler`). Its workers must
import the same `pipeline` version and see the cache directory at the same absolute path (a shared
filesystem), because jobs carry file paths, not prices. Without an address, a local cluster of
`workers` single-threaded worker processes is started for the run and closed after it, even when
the run fails or is interrupted.

Dask costs a few milliseconds per task (about 3 ms measured on 2 cores, where the scheduler, the
client and the workers share them), which is a third of a short ticker. So jobs travel in chunks:
`execution.chunksize` of them, or with "auto" a pilot of single jobs, one per worker thread,
measures the task time and sizes the rest (`tuning.ChunkPlan`, as the process pool does).

`execution.task_timeout_seconds` is enforced on the worker: each task runs in a thread of its
own, and one still running at the timeout fails its ticker ("timed out after N s", as in the
pool); the rest of its chunk comes back unrun and is sent again. A thread cannot be killed, so
the worker holding the runaway fit is restarted (by its nanny; a worker without one is named in
a warning).

A worker that dies (the OOM killer, a crash) is survived: the scheduler reruns its tasks. The
run records each such death in the log and counts them in the manifest (`worker_restarts`).

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
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.errors import ConfigError, PipelineError
from pipeline.execution.jobs import TickerJob, run_job
from pipeline.execution.tuning import ChunkPlan, resolve_task_timeout
from pipeline.execution.worker import Task, become_worker, keep_main_out_of_workers, run_guarded

if TYPE_CHECKING:
    from dask.distributed import Client, Future

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
# An external scheduler may be up before its workers; wait this long for the first one.
WORKERS_TIMEOUT_SECONDS = 30.0
# As in the process pool: a task that kills its worker is tried twice, then fails.
LOCAL_ALLOWED_FAILURES = 1

Chunk = tuple[tuple[int, TickerJob], ...]


class ChunkOutput(NamedTuple):
    """What a chunk sends back: results, seconds, and after a timeout the jobs it did not run
    and the worker whose thread still runs the timed-out task."""

    results: list[tuple[int, TickerResult]]
    seconds: float
    unrun: Chunk = ()
    timed_out: bool = False
    stuck_worker: str | None = None


class DaskClusterError(PipelineError, RuntimeError):
    """The Dask scheduler cannot be reached, has no workers, or was lost during the run."""


def run_chunk(
    chunk: Chunk,
    settings: BacktestSettings,
    task: Task = run_job,
    timeout: float | None = None,
) -> ChunkOutput:
    """`task` over one chunk of (job index, job) on one worker, and the seconds it took.

    A task's exception fails its ticker, not the rest of the chunk; so does a task still running
    after `timeout` seconds, and the chunk then returns at once with the jobs it did not run.
    """
    started = time.perf_counter()
    results: list[tuple[int, TickerResult]] = []
    for position, (index, job) in enumerate(chunk):
        if timeout is None:
            results.append((index, run_guarded(task, job, settings)))
            continue
        result = _run_with_timeout(task, job, settings, timeout)
        if result is None:
            reason = f"timed out after {timeout:g} s"
            results.append((index, TickerResult(job.ticker, "failed", reason)))
            unrun = chunk[position + 1 :]
            seconds = time.perf_counter() - started
            return ChunkOutput(results, seconds, unrun, True, _worker_address())
        results.append((index, result))
    return ChunkOutput(results, time.perf_counter() - started)


def _run_with_timeout(
    task: Task, job: TickerJob, settings: BacktestSettings, timeout: float
) -> TickerResult | None:
    """The task's result, or None when it is still running after `timeout` seconds."""
    outcome: list[TickerResult] = []
    thread = threading.Thread(
        target=lambda: outcome.append(run_guarded(task, job, settings)),
        name=f"task-{job.ticker}",
        daemon=True,
    )
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else None


def _worker_address() -> str | None:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not on a worker (a test calling run_chunk directly)
        return None


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of the local cluster as it starts.

    Ctrl-C in a terminal reaches the whole process group; the client alone decides how to stop
    (it closes the cluster), so the workers ignore it instead of printing tracebacks. And a
    worker dies with the process that started the cluster (`worker.become_worker`).
    """
    become_worker()


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
        task_timeout: float | str | None = None,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.address = address
        self.chunksize = chunksize
        self.task = task
        self.task_timeout = task_timeout
        self._threads = workers
        self._chosen_chunksize: int | None = chunksize if isinstance(chunksize, int) else None
        self._client: Client | None = None
        self._close: weakref.finalize | None = None
        self._worker_deaths = 0
        self._timeouts = 0
        self._timeout_used: float | None = resolve_task_timeout(task_timeout, None)

    def __enter__(self) -> DaskExecutor:
        self.prepare()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def prepare(self) -> None:
        """Start the local cluster, or connect to the scheduler, while the data stage runs.

        An unreachable scheduler thus fails the run before any download. `run` closes what this
        started; `close` does when `run` never comes (and so does garbage collection).
        """
        if self._client is not None:
            return
        if self.address is None:
            keep_main_out_of_workers()
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
        """Yield (job index, result) for every job as its chunk finishes. Outside a `with`
        block, the cluster is started for the run and closed after it."""
        owned = self._client is None
        try:
            if not jobs:
                return
            self.prepare()
            assert self._client is not None
            nthreads = self._client.nthreads()
            self.workers, self._threads = len(nthreads), sum(nthreads.values())
            yield from self._stream(self._client, jobs)
        finally:
            if owned:
                self.close()

    def describe(self) -> dict[str, Any]:
        return {
            "executor": "dask",
            "workers": self.workers,
            "threads": self._threads,
            "chunksize": self._chosen_chunksize or 1,
            "chunksize_setting": self.chunksize,
            "task_timeout_seconds": self._timeout_used,
            "task_timeout_setting": self.task_timeout,
            "dask_address": self.address,
            "worker_restarts": self._worker_deaths,
            "timeouts": self._timeouts,
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

        plan = ChunkPlan(self.chunksize, len(jobs), min(self._threads, len(jobs)))
        run = _RunState(deque(enumerate(jobs)), len(jobs), plan, started=time.time())
        finished = as_completed(loop=client.loop, with_results=True, raise_errors=False)

        def submit(chunk: Chunk) -> str:
            self._timeout_used = resolve_task_timeout(self.task_timeout, plan.median_task_seconds)
            future = client.submit(
                run_chunk, chunk, self.settings, self.task, self._timeout_used, pure=False
            )
            run.in_flight[future.key] = chunk
            run.tickers[future.key] = [job.ticker for _, job in chunk]
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
                yield from self._take(run, chunk, outcome, client)
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
        self._record_worker_deaths(client, run)

    def _take(
        self, run: _RunState, chunk: Chunk, output: ChunkOutput, client: Client
    ) -> Iterator[tuple[int, TickerResult]]:
        """A finished chunk's results; after a timeout, its unrun jobs go back in the queue
        and the worker still running the timed-out task is restarted."""
        if output.timed_out:
            self._timeouts += 1
            run.pending.extendleft(reversed(output.unrun))
            _restart_worker(client, output.stuck_worker)
        else:
            run.plan.observe(output.seconds / len(chunk))
        run.n_done += len(output.results)
        yield from output.results

    def _submit_next(self, run: _RunState, submit: Callable[[Chunk], str]) -> None:
        """The pilot's single jobs until it has a sample per thread, then every remaining job
        in chunks of the planned size; when nothing else runs, the next suspect, alone."""
        if run.pending and run.plan.in_pilot:
            for _ in range(min(run.plan.pilot_size - len(run.in_flight), len(run.pending))):
                submit((run.pending.popleft(),))
            return
        while run.pending:
            size = min(run.plan.size(), len(run.pending))
            submit(tuple(run.pending.popleft() for _ in range(size)))
        self._chosen_chunksize = run.plan.chosen
        if run.suspects and not run.in_flight:
            run.solo.add(submit((run.suspects.popleft(),)))

    def _record_worker_deaths(self, client: Client, run: _RunState) -> None:
        """Log every worker that died unexpectedly during the run, with the tickers it held,
        and count them for the manifest; the scheduler reran their tasks."""
        try:
            events = client.get_events("all")
        except Exception as exc:  # a scheduler that keeps no events: say so, do not fail
            logger.warning("dask: cannot read the scheduler's events (%s)", exc)
            return
        for stamp, event in events:
            if stamp < run.started or not isinstance(event, dict):
                continue
            if event.get("action") != "remove-worker" or event.get("expected"):
                continue
            keys = event.get("processing-tasks", ())
            held = [ticker for key in keys for ticker in run.tickers.get(key, ())]
            self._worker_deaths += 1
            logger.warning(
                "dask: worker %s died while running %s; its tasks were run again",
                event.get("worker", "?"),
                ", ".join(held) or "no ticker of this run",
            )


def _restart_worker(client: Client, address: str | None) -> None:
    if address is None:
        return
    try:
        client.restart_workers([address], raise_for_error=True)
    except Exception as exc:
        logger.warning(
            "dask: worker %s still runs a timed-out task and could not be restarted (%s); "
            "restart it by hand",
            address,
            exc,
        )


@dataclass
class _RunState:
    """One run's bookkeeping: jobs not sent yet, chunks out, suspects waiting to run alone."""

    pending: deque[tuple[int, TickerJob]]
    n_jobs: int
    plan: ChunkPlan
    started: float
    in_flight: dict[str, Chunk] = field(default_factory=dict)
    tickers: dict[str, list[str]] = field(default_factory=dict)
    suspects: deque[tuple[int, TickerJob]] = field(default_factory=deque)
    solo: set[str] = field(default_factory=set)
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

"""The download stage: every requested ticker planned, fetched, merged and cached, in threads.

Fetching is I/O-bound, so threads overlap it well. Each ticker runs on one worker thread:
read the cache, `plan_fetch`, fetch with retries (all threads share one request-rate limiter),
merge, and write the cache. One ticker's failure never stops the others; every outcome is
collected, in the requested order.

A ticker that takes longer than `timeout_seconds` (its wall time, backoff included, waits for
the shared rate limiter excluded) is declared failed. A Python thread cannot be
killed, so the straggler keeps running; a hand-off (`_TickerTask`) guarantees that a ticker is
either declared timed out or written to the cache, never both, and a fresh worker takes the
straggler's place. Workers are daemon threads, not a ThreadPoolExecutor: an executor's threads
are joined at interpreter exit, so one hung request would hang the whole command after its
report was printed. The price of daemon threads: the interpreter stops them wherever they are
at exit, so an interrupted stage first lets the cache writes under way finish (milliseconds).
"""

from __future__ import annotations

import errno
import itertools
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.config import DataConfig, DownloadConfig
from pipeline.data.cache import CacheMeta, PriceCache, meta_for_frame, normalize_price_frame
from pipeline.data.dates import between
from pipeline.data.dead_symbols import DEAD_FILE, DeadSymbols
from pipeline.data.quality import Bars, Finding, detect, repairs_of, summarise
from pipeline.data.refresh import (
    FetchPlan,
    covered_range,
    merge_refresh,
    overlap_matches,
    plan_fetch,
    plan_full_refetch,
)
from pipeline.data.sources.base import DATA_NOTES, PriceSource
from pipeline.errors import (
    ConnectionFailedError,
    DataError,
    NotTradingError,
    PipelineError,
    RateLimitedError,
    SourceError,
    TransientSourceError,
    UnknownSymbolError,
)
from pipeline.progress import ProgressSink

logger = logging.getLogger(__name__)

# Providers that say "slow down" mean it: their backoff ceiling is this many times the usual one.
RATE_LIMIT_BACKOFF_FACTOR = 4.0
# Besides the sources' own transient errors, a raw socket error or timeout that escaped a source
# is worth another try (TimeoutError and ConnectionError are OSErrors).
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (TransientSourceError, OSError)
# Connection failures, with no answer at all from the host, after which it counts as unreachable:
# enough that one flaky connection does not stop a run, few enough to stop within seconds.
UNREACHABLE_AFTER = 3
# How often the stage looks for tickers past their deadline while it waits for results.
_POLL_SECONDS = 0.1
# How long an interrupted stage waits for cache writes under way: at exit the interpreter stops
# daemon threads wherever they are, which would leave their temporary files behind.
_WRITE_GRACE_SECONDS = 10.0

QualityPolicy = Literal["warn", "skip", "repair"]
DownloadStatus = Literal["hit", "fetched", "refreshed", "skipped", "failed"]
COUNT_NAMES: dict[DownloadStatus, str] = {
    "hit": "hits",
    "fetched": "fetched",
    "refreshed": "refreshed",
    "skipped": "skipped",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class TickerDownload:
    """One ticker's outcome.

    status: "hit" (served by the cache, no request), "fetched" (whole range fetched), "refreshed"
    (only recent days fetched and appended), "skipped" (the source has prices, but none inside
    [start, end]: the ticker did not trade then) or "failed" (`reason` says why). `reason` also
    notes why a fetch was needed. rows, first_date and last_date describe the cached rows inside the
    requested [start, end]; `path` is the ticker's cache file (None when failed).
    `attempts` counts source requests, `seconds` the ticker's wall time. `warnings` are the
    source's notes on what it repaired in the cached rows (`sources.base.DATA_NOTES`), kept with
    the file, for the run's data-quality section, followed by the provider errors found in the
    requested rows (`findings`, `pipeline.data.quality`) and what the `data.quality` policy did
    with them: kept the prices, skipped the ticker, or `repairs` for the backtest to apply.
    """

    ticker: str
    status: DownloadStatus
    reason: str = ""
    rows: int = 0
    first_date: date | None = None
    last_date: date | None = None
    path: Path | None = None
    attempts: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    repairs: tuple[tuple[date, date, float], ...] = ()

    @property
    def ok(self) -> bool:
        """Prices for the range are in the cache."""
        return self.status not in ("failed", "skipped")


@dataclass(frozen=True, slots=True)
class DownloadReport:
    """Every requested ticker's outcome, in the requested order."""

    outcomes: tuple[TickerDownload, ...]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """How many tickers ended each way: hits, fetched, refreshed, skipped, failed."""
        counts = dict.fromkeys(COUNT_NAMES.values(), 0)
        for outcome in self.outcomes:
            counts[COUNT_NAMES[outcome.status]] += 1
        return counts

    @property
    def failures(self) -> tuple[TickerDownload, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.status == "failed")


def quality_record(policy: QualityPolicy, outcomes: Sequence[TickerDownload]) -> dict[str, Any]:
    """What the data-quality policy found and did, for the manifest: the policy, how many
    tickers had findings, the findings by kind, the tickers skipped for them and the repairs
    made (ticker -> [first, last, factor])."""
    flagged = [outcome for outcome in outcomes if outcome.findings]
    kinds: dict[str, int] = {}
    for outcome in flagged:
        for finding in outcome.findings:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    return {
        "policy": policy,
        "tickers_flagged": len(flagged),
        "findings": kinds,
        "skipped": [o.ticker for o in flagged if o.status == "skipped"],
        "repaired": {
            o.ticker: [
                [first.isoformat(), last.isoformat(), factor] for first, last, factor in o.repairs
            ]
            for o in flagged
            if o.repairs
        },
    }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n (from 0) waits U(0, ceiling_n), where
    ceiling_n = min(max_backoff_seconds, backoff_seconds * 2**n [* RATE_LIMIT_BACKOFF_FACTOR])."""

    retries: int
    backoff_seconds: float
    max_backoff_seconds: float

    @classmethod
    def from_config(cls, settings: DownloadConfig) -> RetryPolicy:
        return cls(settings.retries, settings.backoff_seconds, settings.max_backoff_seconds)

    def delay(self, attempt: int, error: BaseException, jitter: float) -> float:
        """Seconds to wait after failed attempt `attempt`; `jitter` is uniform in [0, 1)."""
        factor = RATE_LIMIT_BACKOFF_FACTOR if isinstance(error, RateLimitedError) else 1.0
        ceiling = self.backoff_seconds * factor * 2.0 ** min(attempt, 30)
        return jitter * min(self.max_backoff_seconds, ceiling)


class RateLimiter:
    """At most `requests_per_second` request starts per second, across every thread.

    Each caller reserves the next free start time under the lock and sleeps outside it, so
    starts are spaced by at least 1 / requests_per_second and no burst follows an idle spell.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        self._interval = 1.0 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = float("-inf")

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> None:
        """Block until this caller may start a request; `on_wait(seconds)` hears of a wait first."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            if on_wait is not None:
                on_wait(start - now)
            self._sleep(start - now)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _TickerTask:
    """One ticker's hand-off between its worker and the stage.

    queued -> running (worker starts) -> finished (worker claims the right to report and write)
    queued | running -> abandoned (the stage declares a timeout, or stops on an interrupt).
    Both claims go through one lock, so exactly one side wins.
    """

    def __init__(self, index: int, ticker: str) -> None:
        self.index = index
        self.ticker = ticker
        self.started_at = 0.0
        self.queued_seconds = 0.0
        self.attempts = 0
        self._state = "queued"
        self._lock = threading.Lock()
        self.settled = threading.Event()  # the worker is done with this ticker, file and all

    def _move(self, allowed: tuple[str, ...], to: str) -> bool:
        with self._lock:
            if self._state not in allowed:
                return False
            self._state = to
            return True

    def start(self, now: float) -> bool:
        self.started_at = now
        return self._move(("queued",), "running")

    def finish(self) -> bool:
        return self._move(("running",), "finished")

    def abandon(self) -> bool:
        return self._move(("queued", "running"), "abandoned")

    @property
    def abandoned(self) -> bool:
        return self._state == "abandoned"

    @property
    def writing(self) -> bool:
        """The worker won the right to write the cache and may not have finished."""
        return self._state == "finished" and not self.settled.is_set()

    def queue_for_rate_limit(self, seconds: float) -> None:
        """Waiting for the shared rate limiter is other tickers' time, not this one's."""
        self.queued_seconds += seconds

    def overdue(self, now: float, timeout: float) -> bool:
        charged = now - self.started_at - self.queued_seconds
        return self._state == "running" and charged >= timeout


class DownloadCancelled(Exception):
    """The data stage was told to stop (`download_universe`'s `cancel`) before it finished."""


class _Abandoned(Exception):
    """The stage gave up on this ticker; its worker must stop without reporting or writing."""


@dataclass(frozen=True)
class _Stage:
    """What every worker shares: read-only settings plus the thread-safe limiter and cache."""

    source: PriceSource
    source_identity: str
    cache: PriceCache
    start: date
    end: date
    overlap_days: int
    policy: RetryPolicy
    limiter: RateLimiter | None
    sleep: Callable[[float], None]
    now: Callable[[], datetime]
    jitter: Callable[[], float]
    clock: Callable[[], float] = time.monotonic
    quality: QualityPolicy = "warn"
    dead: DeadSymbols | None = None  # remote sources only
    dead_ttl_days: int = 7
    retry_dead: bool = False
    reachability: Reachability = field(default_factory=lambda: Reachability())


def download_universe(
    tickers: Sequence[str],
    source: PriceSource,
    cache: PriceCache,
    data: DataConfig,
    *,
    progress: ProgressSink | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utc_now,
    jitter: Callable[[], float] = random.random,
    retry_dead: bool = False,
    clock: Callable[[], float] = time.monotonic,
    on_outcome: Callable[[TickerDownload], None] | None = None,
    cancel: threading.Event | None = None,
) -> DownloadReport:
    """Bring `tickers`' prices for [data.start, data.end] into `cache` from `source`.

    Never raises for one ticker's failure: it is reported. `progress.advance()` is called once
    per finished ticker. `sleep` (backoff and rate-limit waits), `clock` (seconds, for the rate
    limiter and the per-ticker timeout), `now` (UTC time of the fetch, which bounds the coverage
    recorded in the cache) and `jitter` (uniform in [0, 1)) exist for tests: with a fake clock
    and sleep, every wait the stage makes can be asserted exactly. A remote
    source's dead symbols (`dead_symbols`) are skipped unless `retry_dead`.

    `on_outcome` is called with each ticker's outcome as it is settled (from the thread that
    called this function, in the order tickers finish), so that later work can start on it
    before the whole universe is in. Setting `cancel` (from another thread) stops the stage as
    Ctrl-C does: DownloadCancelled, once the cache writes under way have finished.
    """
    if len(set(tickers)) != len(tickers):
        raise ValueError("tickers must be unique: two workers would write one cache file")
    settings = data.download
    stage = _Stage(
        source=source,
        source_identity=source.identity(),
        cache=cache,
        start=data.start,
        end=data.end,
        overlap_days=settings.refresh_overlap_days,
        policy=RetryPolicy.from_config(settings),
        # Local files and generated prices have no provider to protect from bursts.
        limiter=(
            RateLimiter(settings.requests_per_second, clock=clock, sleep=sleep)
            if source.remote
            else None
        ),
        sleep=sleep,
        clock=clock,
        now=now,
        jitter=jitter,
        quality=data.quality,
        dead=DeadSymbols(cache.root / source.name / DEAD_FILE) if source.remote else None,
        dead_ttl_days=settings.dead_ttl_days,
        retry_dead=retry_dead,
    )
    started = clock()
    tasks = [_TickerTask(index, ticker) for index, ticker in enumerate(tickers)]
    try:
        outcomes = _run_tasks(stage, tasks, settings, progress, on_outcome, cancel)
    finally:
        if stage.dead is not None:
            stage.dead.save()
    if stage.reachability.unreachable:
        logger.error("%s", stage.reachability.describe(source.name))
    report = DownloadReport(tuple(outcomes), seconds=clock() - started)
    logger.info("download: %d tickers in %.1f s: %s", len(tasks), report.seconds, report.counts)
    return report


def _run_tasks(
    stage: _Stage,
    tasks: list[_TickerTask],
    settings: DownloadConfig,
    progress: ProgressSink | None,
    on_outcome: Callable[[TickerDownload], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[TickerDownload]:
    """Run `tasks` on up to `settings.threads` workers (`first_threads` of them at once, one
    more whenever a poll passes with none finished); outcomes in task order."""
    todo: queue.SimpleQueue[_TickerTask] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[int, TickerDownload]] = queue.SimpleQueue()
    for task in tasks:
        todo.put(task)
    names = itertools.count(1)

    def start_worker() -> None:
        name = f"pipeline-download-{next(names)}"
        threading.Thread(target=_work, args=(stage, todo, done), name=name, daemon=True).start()

    outcomes: dict[int, TickerDownload] = {}

    def record(index: int, outcome: TickerDownload) -> None:
        outcomes[index] = outcome
        if outcome.status == "failed" and not stage.reachability.unreachable:
            logger.warning("%s: download failed: %s", outcome.ticker, outcome.reason)
        elif outcome.status == "skipped":
            logger.info("%s: skipped: %s", outcome.ticker, outcome.reason)
        if progress is not None:
            progress.advance()
        if on_outcome is not None:
            on_outcome(outcome)

    started = min(first_threads(stage.source, settings), len(tasks))
    for _ in range(started):
        start_worker()
    # Looking every task over for one past its timeout after every result made a warm run of
    # n cached tickers cost n^2 looks (25 million for 5,000): look at most once per poll.
    looked_at = -math.inf
    try:
        while len(outcomes) < len(tasks):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("the data stage was cancelled")
            try:
                record(*done.get(timeout=_POLL_SECONDS))
            except queue.Empty:  # every thread is waiting on something: one more may go on
                if started < min(settings.threads, len(tasks)) and not todo.empty():
                    start_worker()
                    started += 1
            else:
                if stage.clock() - looked_at < _POLL_SECONDS:
                    continue
            looked_at = stage.clock()
            for task in tasks:
                if task.overdue(looked_at, settings.timeout_seconds) and task.abandon():
                    record(task.index, _timed_out(task, settings.timeout_seconds))
                    start_worker()  # the straggler's thread is lost until its request returns
    except BaseException:
        for task in tasks:  # e.g. Ctrl-C: nothing still running may write the cache any more
            task.abandon()
        _await_writes(tasks)
        raise
    return [outcomes[index] for index in range(len(tasks))]


def first_threads(source: PriceSource, settings: DownloadConfig) -> int:
    """Threads the data stage starts with: `settings.threads` for a remote source, one for
    local files, which get one more, up to `settings.threads`, whenever a poll (0.1 s) passes
    without a ticker finished (a slow disk, a file that hangs).

    Threads pay off while requests wait on the network. Reading local files and the cache,
    checking and merging prices is Python holding the GIL, and more threads only take it from
    each other: 505 cached tickers cost 3.0-3.3 s of CPU on 8 threads, 2.1 s on 2 and 1.3-1.4 s
    on one, in 2.2-2.5, 1.6 and 1.3-1.4 s of wall time (benchmarks/RESULTS.md), while the
    backtest's workers need those cores.
    """
    return settings.threads if source.remote else 1


def _await_writes(tasks: list[_TickerTask]) -> None:
    """Let cache writes already under way finish, so an interrupted run leaves no temporary file.

    A second Ctrl-C ends the wait at once; so does the grace period, for a write that hangs.
    """
    deadline = time.monotonic() + _WRITE_GRACE_SECONDS
    for task in tasks:
        if task.writing:
            task.settled.wait(max(0.0, deadline - time.monotonic()))


def _work(
    stage: _Stage,
    todo: queue.SimpleQueue[_TickerTask],
    done: queue.SimpleQueue[tuple[int, TickerDownload]],
) -> None:
    """A worker thread: take tickers until none is left or this thread's ticker was abandoned."""
    while True:
        try:
            task = todo.get_nowait()
        except queue.Empty:
            return
        if not task.start(stage.clock()):
            continue
        try:
            outcome = _run_task(stage, task)
        finally:
            task.settled.set()
        if outcome is None:
            return  # timed out: a replacement worker already carries on
        done.put((task.index, outcome))


def _run_task(stage: _Stage, task: _TickerTask) -> TickerDownload | None:
    """The ticker's outcome, with its cache file written; None when it was abandoned."""
    try:
        outcome, pending = _download_ticker(stage, task)
    except _Abandoned:
        return None
    except NotTradingError as exc:
        outcome, pending = _skipped(task, str(exc)), None
    except PipelineError as exc:  # DataError, retries exhausted, a bad symbol
        outcome, pending = _failed(task, str(exc)), None
    except Exception as exc:  # a bug in a source must cost one ticker, not the run
        logger.exception("%s: unexpected error while downloading", task.ticker)
        outcome, pending = _failed(task, f"unexpected {type(exc).__name__}: {exc}"), None
    if not task.finish():
        return None  # declared timed out meanwhile: this late result must not land anywhere
    if pending is not None:
        try:
            path = stage.cache.write(stage.source.name, task.ticker, *pending)
        except OSError as exc:  # disk full, a read-only directory: the old file is untouched
            return _failed(task, _cache_trouble("write", stage, task, exc))
        except Exception as exc:
            logger.exception("%s: cannot write the cache", task.ticker)
            return _failed(task, f"cannot write the cache: {type(exc).__name__}: {exc}")
        if outcome.ok:
            outcome = replace(outcome, path=path)
    return replace(outcome, seconds=stage.clock() - task.started_at)


_Pending = tuple[pd.DataFrame, CacheMeta, tuple[str, ...]]


def _download_ticker(stage: _Stage, task: _TickerTask) -> tuple[TickerDownload, _Pending | None]:
    """Plan, fetch and merge one ticker: its outcome and the file still to write, if any."""
    try:
        cached = stage.cache.read(stage.source.name, task.ticker)
    except OSError as exc:  # the system's trouble, not the file's: the file stays as it is
        return _failed(task, _cache_trouble("read", stage, task, exc)), None
    meta = cached.meta if cached is not None else None
    fetched_at = stage.now()
    today = fetched_at.astimezone(UTC).date()
    dead = _known_dead(stage, task.ticker, today) if cached is None else None
    if dead is not None:
        return _skipped(task, dead), None
    plan = plan_fetch(
        meta,
        stage.source_identity,
        stage.start,
        stage.end,
        today=today,
        overlap_days=stage.overlap_days,
    )
    if plan.action == "hit":
        assert cached is not None, plan
        outcome = _succeeded(stage, task, "hit", plan.reason, cached.dates, cached.path)
        outcome = replace(outcome, warnings=cached.notes)
        return _assessed(stage, outcome, cached.bars(stage.start, stage.end)), None
    try:
        frame, notes = _fetch(stage, task, plan)
    except UnknownSymbolError as exc:
        if stage.dead is not None and cached is None:
            stage.dead.mark(task.ticker, today, str(exc))
        raise
    if stage.dead is not None:
        stage.dead.forget(task.ticker)
    status: DownloadStatus = "fetched"
    if plan.action == "refresh":
        assert cached is not None and plan.fetch_start is not None, plan
        if overlap_matches(cached.frame, frame, provisional_from=cached.meta.fetched_at.date()):
            frame, status = merge_refresh(cached.frame, frame, plan.fetch_start), "refreshed"
            notes = tuple(dict.fromkeys((*cached.notes, *notes)))
        else:
            plan = plan_full_refetch(cached.meta, plan)
            logger.info("%s: %s", task.ticker, plan.reason)
            frame, notes = _fetch(stage, task, plan)
    covered_start, covered_through = covered_range(plan, meta, today)
    new_meta = meta_for_frame(
        frame,
        ticker=task.ticker,
        source=stage.source.name,
        source_identity=stage.source_identity,
        covered_start=covered_start,
        covered_through=covered_through,
        fetched_at=fetched_at,
    )
    outcome = _succeeded(stage, task, status, plan.reason, frame.index.to_numpy(), None)
    requested = Bars.of_frame(between(frame, stage.start, stage.end))
    outcome = _assessed(stage, replace(outcome, warnings=notes), requested)
    return outcome, (frame, new_meta, notes)


def _assessed(stage: _Stage, outcome: TickerDownload, requested: Bars) -> TickerDownload:
    """`outcome` with the provider errors found in its `requested` rows, handled per policy."""
    if not outcome.ok:
        return outcome
    findings = detect(requested)
    if not findings:
        return outcome
    notes = [finding.describe() for finding in findings]
    for note in notes:
        logger.warning("%s: %s", outcome.ticker, note)
    outcome = replace(outcome, findings=findings, warnings=(*outcome.warnings, *notes))
    if stage.quality == "skip":
        return replace(outcome, status="skipped", reason=summarise(findings))
    if stage.quality == "repair":
        repairs = repairs_of(findings)
        done = tuple(f"repaired: {_describe_repair(repair)}" for repair in repairs)
        return replace(outcome, repairs=repairs, warnings=(*outcome.warnings, *done))
    return outcome


def _describe_repair(repair: tuple[date, date, float]) -> str:
    first, last, factor = repair
    return f"adjusted closes {first}..{last} multiplied by {factor:.6g}"


def _fetch(
    stage: _Stage, task: _TickerTask, plan: FetchPlan
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The source's frame for the plan's range and its notes, retrying transient errors per
    `stage.policy`."""
    assert plan.fetch_start is not None and plan.fetch_end is not None, plan
    attempts = stage.policy.retries + 1
    for attempt in range(attempts):
        if stage.reachability.unreachable:  # no request, and no turn at the rate cap either
            raise SourceError(stage.reachability.describe(stage.source.name))
        if stage.limiter is not None:
            stage.limiter.acquire(on_wait=task.queue_for_rate_limit)
        if task.abandoned:
            raise _Abandoned
        task.attempts += 1
        try:
            frame = stage.source.fetch(task.ticker, plan.fetch_start, plan.fetch_end)
        except DataError:
            stage.reachability.reached()
            raise
        except RETRYABLE_ERRORS as exc:
            if isinstance(exc, ConnectionFailedError) and stage.reachability.refused(exc):
                raise SourceError(stage.reachability.describe(stage.source.name)) from exc
            if not isinstance(exc, ConnectionFailedError):
                stage.reachability.reached()
            if attempt + 1 == attempts:
                raise SourceError(
                    f"gave up after {attempts} attempts; last error {type(exc).__name__}: {exc}"
                ) from exc
            delay = stage.policy.delay(attempt, exc, stage.jitter())
            logger.warning(
                "%s: attempt %d/%d failed (%s: %s); retrying in %.1f s",
                task.ticker,
                attempt + 1,
                attempts,
                type(exc).__name__,
                exc,
                delay,
            )
            stage.sleep(delay)
        else:
            stage.reachability.reached()
            return _checked(frame, stage.source.name, task.ticker)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _checked(
    frame: pd.DataFrame, source_name: str, ticker: str
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The source's frame in stored form and its notes; DataError when it breaks the `base`
    contract."""
    try:
        notes = tuple(map(str, frame.attrs.get(DATA_NOTES, ())))
        frame = normalize_price_frame(frame)
    except (ValueError, AttributeError) as exc:
        raise DataError(f"source {source_name!r} returned a malformed frame: {exc}") from exc
    if frame.empty:
        raise DataError(f"source {source_name!r} returned no rows")
    for note in notes:
        logger.warning("%s: %s", ticker, note)
    return frame, notes


def _cache_trouble(action: str, stage: _Stage, task: _TickerTask, exc: OSError) -> str:
    """'cannot write the cache file <path>: No space left on device (ENOSPC)'."""
    path = stage.cache.path_for(stage.source.name, task.ticker)
    return f"cannot {action} the cache file {path}: {describe_os_error(exc)}"


def describe_os_error(exc: OSError) -> str:
    """The system's words for `exc` and its errno name, however the OSError was built
    (`OSError(errno.ENOSPC)` alone has no errno and prints as '28')."""
    code = exc.errno
    if code is None and len(exc.args) == 1 and exc.args[0] in errno.errorcode:
        code = exc.args[0]
    if code is None:
        return str(exc) or type(exc).__name__
    return f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"


def _succeeded(
    stage: _Stage,
    task: _TickerTask,
    status: DownloadStatus,
    reason: str,
    dates: np.ndarray,
    path: Path | None,
) -> TickerDownload:
    """A successful outcome, described by the trading days inside the requested range."""
    days = pd.DatetimeIndex(dates)
    requested = days[(days >= pd.Timestamp(stage.start)) & (days <= pd.Timestamp(stage.end))]
    if requested.empty:
        span = f"{days[0].date()}..{days[-1].date()}" if len(days) else "none"
        return _skipped(
            task, f"did not trade from {stage.start} to {stage.end}; the source has {span}"
        )
    return TickerDownload(
        task.ticker,
        status,
        reason,
        rows=len(requested),
        first_date=requested[0].date(),
        last_date=requested[-1].date(),
        path=path,
        attempts=task.attempts,
    )


def _failed(task: _TickerTask, reason: str) -> TickerDownload:
    return TickerDownload(task.ticker, "failed", reason, attempts=task.attempts)


def _known_dead(stage: _Stage, ticker: str, today: date) -> str | None:
    """Why the ticker is not asked for: found dead within dead_ttl_days; None: ask."""
    if stage.dead is None or stage.retry_dead:
        return None
    entry = stage.dead.lookup(ticker, today, stage.dead_ttl_days)
    return None if entry is None else entry.describe(stage.dead_ttl_days)


class Reachability:
    """Whether the source's host answers at all, shared by every worker.

    A host that refuses every connection (offline, a firewall, a wrong proxy) would cost each
    ticker all its retries and backoff; after UNREACHABLE_AFTER connection failures without a
    single answer the stage stops asking, and every ticker left fails with one short reason.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0
        self._answered = False
        self.unreachable = False
        self.last_error = ""

    def reached(self) -> None:
        with self._lock:
            self._answered = True

    def refused(self, exc: BaseException) -> bool:
        """Count a connection failure; True once the host counts as unreachable."""
        with self._lock:
            self._failures += 1
            self.last_error = str(exc)
            if not self._answered and self._failures >= UNREACHABLE_AFTER:
                self.unreachable = True
            return self.unreachable

    def describe(self, source_name: str) -> str:
        hint = 'check the network, or read prices from files: data.source = "csv"'
        return f"{source_name} cannot be reached ({self.last_error}); {hint}"


def _skipped(task: _TickerTask, reason: str) -> TickerDownload:
    return TickerDownload(task.ticker, "skipped", reason, attempts=task.attempts)


def _timed_out(task: _TickerTask, timeout: float) -> TickerDownload:
    reason = f"timed out after {timeout:g} s"
    return replace(_failed(task, reason), seconds=timeout)

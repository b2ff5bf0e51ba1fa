"""The threaded download stage, against a fake source at the network boundary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig, DownloadConfig
from pipeline.data.cache import QUARANTINE_DIR, PriceCache
from pipeline.data.download import (
    DownloadCancelled,
    DownloadReport,
    RateLimiter,
    RetryPolicy,
    TickerDownload,
    _TickerTask,
    download_universe,
    first_threads,
)
from pipeline.errors import DataError, RateLimitedError, TransientSourceError
from tests.data.fakes import VirtualClock

NOW = datetime(2024, 1, 10, 22, 0, tzinfo=UTC)
TODAY = NOW.date()
START, END = date(2023, 1, 2), date(2023, 6, 30)


def fake_prices(ticker: str, start: date, end: date, scale: float) -> pd.DataFrame:
    """Business days in [start, end]; adj_close depends on the day only, so fetches agree."""
    index = pd.bdate_range(start, end, name="date").as_unit("ns")
    days = (index - pd.Timestamp("2000-01-01")).days.to_numpy()
    adj = (10.0 + len(ticker) + days / 100.0) * scale
    return pd.DataFrame({"adj_close": adj, "volume": np.full(len(index), 1e5)}, index=index)


class FakeSource:
    """A PriceSource that records its calls and misbehaves on request.

    errors[ticker]: exceptions raised by that ticker's first calls, in order.
    delays[ticker]: seconds each call takes. hangs[ticker]: calls block until the event is set.
    scale multiplies every adjusted close (a restatement, when changed between runs).
    """

    name = "fake"
    remote = True  # paced by the rate cap, like a network provider

    def __init__(self, identity: str = "fake:v1", today: date = TODAY) -> None:
        self._identity = identity
        self.today = today
        self.scale = 1.0
        self.errors: dict[str, list[BaseException]] = {}
        self.delays: dict[str, float] = {}
        self.hangs: dict[str, threading.Event] = {}
        self.frames: dict[str, Callable[[], Any]] = {}
        self.calls: list[tuple[str, date, date]] = []
        self.call_times: list[float] = []
        self.before_fetch: Callable[[str], None] | None = None
        self._lock = threading.Lock()

    def identity(self) -> str:
        return self._identity

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        with self._lock:
            self.calls.append((ticker, start, end))
            self.call_times.append(time.monotonic())
            pending = self.errors.get(ticker)
            error = pending.pop(0) if pending else None
        if self.before_fetch is not None:
            self.before_fetch(ticker)
        if ticker in self.hangs:
            self.hangs[ticker].wait(timeout=10)
        time.sleep(self.delays.get(ticker, 0.0))
        if error is not None:
            raise error
        if ticker in self.frames:
            return self.frames[ticker]()
        return fake_prices(ticker, start, min(end, self.today), self.scale)

    def calls_for(self, ticker: str) -> list[tuple[date, date]]:
        return [(start, end) for name, start, end in self.calls if name == ticker]


class CountingProgress:
    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n


def make_config(
    tmp_path: Path,
    tickers: Sequence[str] = ("KO", "XOM"),
    start: date = START,
    end: date = END,
    **download: Any,
) -> DataConfig:
    settings = {"requests_per_second": 10_000.0, "backoff_seconds": 1.0, **download}
    return DataConfig(
        source="synthetic",
        tickers=tuple(tickers),
        start=start,
        end=end,
        cache_dir=tmp_path / "cache",
        download=DownloadConfig(**settings),
    )


def run(
    config: DataConfig,
    source: FakeSource,
    *,
    sleeps: list[float] | None = None,
    now: datetime = NOW,
    progress: CountingProgress | None = None,
    tickers: Sequence[str] | None = None,
    clock: VirtualClock | None = None,
) -> DownloadReport:
    if clock is None:  # the stage's time moves by its own waits only: they are exact
        clock = VirtualClock(advancing=True)
        if sleeps is not None:
            clock.sleeps = sleeps
    timing = {"sleep": clock.sleep, "clock": clock}
    return download_universe(
        config.universe if tickers is None else tickers,
        source,
        PriceCache(config.cache_dir),
        config,
        progress=progress,
        now=lambda: now,
        jitter=lambda: 0.5,
        **timing,
    )


def statuses(report: DownloadReport) -> dict[str, str]:
    return {outcome.ticker: outcome.status for outcome in report.outcomes}


def cached_frame(config: DataConfig, ticker: str) -> pd.DataFrame:
    cached = PriceCache(config.cache_dir).read("fake", ticker)
    assert cached is not None
    return cached.frame


# --- concurrency, order, outcomes ---------------------------------------------------------


def test_threads_overlap_slow_fetches(tmp_path: Path) -> None:
    tickers = [f"T{i:02d}" for i in range(16)]
    config = make_config(tmp_path, tickers, threads=8)
    source = FakeSource()
    source.delays = dict.fromkeys(tickers, 0.2)

    began = time.monotonic()
    report = run(config, source)
    elapsed = time.monotonic() - began

    serial = 16 * 0.2
    assert elapsed < 0.5 * serial, f"{elapsed:.2f} s is not much faster than serial {serial} s"
    assert report.counts == {"hits": 0, "fetched": 16, "refreshed": 0, "skipped": 0, "failed": 0}


class LocalFiles(FakeSource):
    """A source of local files: no network to wait on, so no threads to overlap."""

    remote = False

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        self.threads.add(threading.current_thread().name)
        return super().fetch(ticker, start, end)


def test_a_local_source_is_read_on_one_thread_while_it_keeps_up(tmp_path: Path) -> None:
    tickers = [f"T{i:02d}" for i in range(12)]
    config = make_config(tmp_path, tickers, threads=8)
    source = LocalFiles()
    source.delays = dict.fromkeys(tickers, 0.01)  # long enough for a second thread to start
    report = run(config, source)
    assert report.counts["fetched"] == 12
    assert len(source.threads) == 1, source.threads
    assert [outcome.ticker for outcome in report.outcomes] == tickers
    assert first_threads(source, config.download) == 1
    assert first_threads(FakeSource(), config.download) == 8


def test_a_local_file_that_hangs_holds_up_no_other(tmp_path: Path) -> None:
    """One more thread for each poll in which none finished, up to `threads`."""
    tickers = ["SLOW", "HUNG", *(f"T{i:02d}" for i in range(10))]
    config = make_config(tmp_path, tickers, threads=3)
    source = LocalFiles()
    source.hangs = {"SLOW": threading.Event(), "HUNG": threading.Event()}
    others_done = threading.Event()
    fetched: list[str] = []

    def release_once_the_others_are_in(ticker: str) -> None:
        fetched.append(ticker)
        if len(fetched) == len(tickers):
            others_done.set()

    source.before_fetch = release_once_the_others_are_in
    def release_when_the_others_are_in() -> None:
        others_done.wait(5)
        for hung in source.hangs.values():
            hung.set()

    threading.Thread(target=release_when_the_others_are_in, daemon=True).start()
    report = run(config, source)
    assert others_done.is_set(), "the others waited for the files that hang"
    assert report.counts["fetched"] == 12
    assert len(source.threads) == 3, source.threads  # two held, the third read the others


def test_outcomes_follow_the_requested_order(tmp_path: Path) -> None:
    tickers = ["ZZ", "AA", "MM", "BB", "YY", "CC"]
    config = make_config(tmp_path, tickers, threads=6)
    source = FakeSource()
    source.delays = {ticker: 0.05 * (len(tickers) - i) for i, ticker in enumerate(tickers)}
    source.errors = {"MM": [DataError("no such symbol")]}

    report = run(config, source)

    assert [outcome.ticker for outcome in report.outcomes] == tickers
    assert statuses(report)["MM"] == "failed"


def test_outcome_describes_the_requested_rows(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO"], start=date(2023, 1, 1), end=date(2023, 1, 8))

    (outcome,) = run(config, FakeSource()).outcomes

    assert (outcome.rows, outcome.first_date, outcome.last_date) == (
        5,
        date(2023, 1, 2),
        date(2023, 1, 6),
    )
    assert outcome.path == config.cache_dir.absolute() / "fake" / "KO.parquet"
    assert outcome.path.exists()
    assert outcome.attempts == 1


def test_progress_advances_once_per_ticker(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO", "XOM", "PEP"])
    source = FakeSource()
    source.errors = {"XOM": [DataError("gone")]}
    progress = CountingProgress()

    run(config, source, progress=progress)

    assert progress.done == 3


def test_each_outcome_is_handed_on_as_it_settles(tmp_path: Path) -> None:
    tickers = ["SLOW", "KO", "XOM", "GONE"]
    config = make_config(tmp_path, tickers, threads=4)
    source = FakeSource()
    source.delays = {"SLOW": 0.3}
    source.errors = {"GONE": [DataError("no such symbol")]}
    handed: list[tuple[str, str]] = []

    report = download_universe(
        tickers,
        source,
        PriceCache(config.cache_dir),
        config,
        on_outcome=lambda outcome: handed.append((outcome.ticker, outcome.status)),
    )

    assert sorted(handed) == sorted(statuses(report).items())  # each once, as reported
    assert handed[-1] == ("SLOW", "fetched")  # in the order they settled, not requested
    assert [outcome.ticker for outcome in report.outcomes] == tickers


def test_cancel_stops_the_stage_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO", "HUNG", "XOM"], threads=3)
    source = FakeSource()
    release = threading.Event()
    source.hangs = {"HUNG": release}
    cancel = threading.Event()
    settled: list[str] = []

    def cancel_once_two_are_in(outcome: TickerDownload) -> None:
        settled.append(outcome.ticker)
        if len(settled) == 2:
            cancel.set()

    began = time.monotonic()
    with pytest.raises(DownloadCancelled):
        download_universe(
            ["KO", "HUNG", "XOM"],
            source,
            PriceCache(config.cache_dir),
            config,
            on_outcome=cancel_once_two_are_in,
            cancel=cancel,
        )
    assert time.monotonic() - began < 5  # HUNG is still hanging: it was not waited for
    release.set()
    for thread in download_threads():
        thread.join(timeout=5)
    assert sorted(settled) == ["KO", "XOM"]
    assert not (config.cache_dir / "fake" / "HUNG.parquet").exists()  # abandoned, not written
    assert list(config.cache_dir.rglob("*.tmp")) == []


def test_duplicate_tickers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        run(make_config(tmp_path), FakeSource(), tickers=["KO", "KO"])


def test_unsafe_symbol_fails_that_ticker_only(tmp_path: Path) -> None:
    source = FakeSource()
    report = run(make_config(tmp_path), source, tickers=["../etc", "KO"])

    bad, good = report.outcomes
    assert bad.status == "failed"
    assert "not a valid ticker symbol" in bad.reason
    assert good.status == "fetched"
    assert [call[0] for call in source.calls] == ["KO"]


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [TransientSourceError("HTTP 503"), ConnectionResetError("reset by peer"), TimeoutError("slow")],
    ids=["transient", "connection-reset", "timeout"],
)
def test_transient_errors_are_retried_with_backoff(tmp_path: Path, error: BaseException) -> None:
    config = make_config(tmp_path, ["KO"], retries=4, backoff_seconds=1.0)
    source = FakeSource()
    source.errors = {"KO": [error, error]}
    sleeps: list[float] = []

    (outcome,) = run(config, source, sleeps=sleeps).outcomes

    assert outcome.status == "fetched"
    assert outcome.attempts == 3
    assert len(source.calls) == 3
    assert sleeps == [0.5, 1.0]  # jitter 0.5 of ceilings 1 s, 2 s


def test_exhausted_retries_fail_the_ticker_with_the_last_error(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO", "XOM"], retries=2)
    source = FakeSource()
    source.errors = {"KO": [TransientSourceError(f"HTTP 503 #{i}") for i in range(1, 6)]}

    report = run(config, source)

    ko, xom = report.outcomes
    assert ko.status == "failed"
    assert "gave up after 3 attempts" in ko.reason
    assert "TransientSourceError: HTTP 503 #3" in ko.reason
    assert len(source.calls_for("KO")) == 3
    assert xom.status == "fetched"
    assert report.counts["failed"] == 1
    assert [f.ticker for f in report.failures] == ["KO"]


def test_data_error_is_not_retried(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO"], retries=4)
    source = FakeSource()
    source.errors = {"KO": [DataError("KO: no rows between 2023-01-02 and 2023-06-30")]}
    sleeps: list[float] = []

    (outcome,) = run(config, source, sleeps=sleeps).outcomes

    assert outcome.status == "failed"
    assert outcome.reason == "KO: no rows between 2023-01-02 and 2023-06-30"
    assert len(source.calls) == 1
    assert sleeps == []


def test_unexpected_exception_fails_that_ticker_without_retry(tmp_path: Path) -> None:
    source = FakeSource()
    source.errors = {"KO": [KeyError("Adj Close")]}

    report = run(make_config(tmp_path), source)

    assert statuses(report) == {"KO": "failed", "XOM": "fetched"}
    assert report.outcomes[0].reason == "unexpected KeyError: 'Adj Close'"
    assert len(source.calls_for("KO")) == 1


def test_malformed_frame_from_a_source_fails_that_ticker(tmp_path: Path) -> None:
    source = FakeSource()
    source.frames = {"KO": lambda: pd.DataFrame({"price": [1.0]})}

    (outcome,) = run(make_config(tmp_path, ["KO"]), source).outcomes

    assert outcome.status == "failed"
    assert "malformed frame" in outcome.reason


def test_rate_limited_errors_back_off_harder(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO", "XOM"], threads=1, backoff_seconds=1.0)
    source = FakeSource()
    source.errors = {"KO": [RateLimitedError("HTTP 429")], "XOM": [TransientSourceError("503")]}
    sleeps: list[float] = []

    run(config, source, sleeps=sleeps)

    # 0.5 * 4 * 1 s for the rate limit, 0.5 * 1 s otherwise; between them XOM's first request
    # waits its turn at the rate cap (10,000 a second) after KO's retry, at the same instant.
    assert sleeps == pytest.approx([2.0, 1e-4, 0.5])


@pytest.mark.parametrize(
    ("attempt", "error", "jitter", "expected"),
    [
        (0, TransientSourceError(), 1.0, 1.0),
        (1, TransientSourceError(), 1.0, 2.0),
        (3, TransientSourceError(), 1.0, 8.0),
        (6, TransientSourceError(), 1.0, 30.0),
        (2, OSError(), 0.25, 1.0),
        (0, RateLimitedError(), 1.0, 4.0),
        (2, RateLimitedError(), 1.0, 16.0),
        (3, RateLimitedError(), 1.0, 30.0),
        (500, TransientSourceError(), 0.0, 0.0),
    ],
    ids=[
        "first",
        "second",
        "fourth",
        "capped",
        "jittered",
        "429",
        "429-third",
        "429-capped",
        "huge",
    ],
)
def test_retry_delay(attempt: int, error: BaseException, jitter: float, expected: float) -> None:
    policy = RetryPolicy(retries=4, backoff_seconds=1.0, max_backoff_seconds=30.0)
    assert policy.delay(attempt, error, jitter) == pytest.approx(expected)


# --- request rate -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_request_starts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    starts = []

    for _ in range(4):
        limiter.acquire()
        starts.append(clock.now)
    clock.now += 10.0  # idle: no burst of saved-up requests afterwards, but no wait either
    limiter.acquire()
    starts.append(clock.now)
    limiter.acquire()
    starts.append(clock.now)

    assert starts == [0.0, 0.5, 1.0, 1.5, 11.5, 12.0]


def test_rate_limiter_reports_a_wait_before_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    heard: list[tuple[float, float]] = []

    for _ in range(3):
        limiter.acquire(on_wait=lambda seconds: heard.append((clock.now, seconds)))

    assert heard == [(0.0, 0.25), (0.25, 0.25)]


def test_queueing_for_the_rate_limiter_does_not_count_against_the_timeout(
    tmp_path: Path,
) -> None:
    # 2 requests/s on one thread: each ticker after the first queues 0.5 s for the rate cap,
    # beyond its 0.3 s timeout; the clock moves by exactly those waits.
    tickers = ["A", "B", "C", "D"]
    config = make_config(tmp_path, tickers, threads=1, requests_per_second=2.0, timeout_seconds=0.3)
    clock = VirtualClock(advancing=True)

    report = run(config, FakeSource(), clock=clock)

    assert report.counts["fetched"] == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert clock.now == 1.5


def test_rate_cap_is_shared_by_all_threads(tmp_path: Path) -> None:
    tickers = [f"T{i:02d}" for i in range(12)]
    config = make_config(tmp_path, tickers, threads=8, requests_per_second=20.0)
    clock = VirtualClock()  # stands still: every start is reserved from time 0

    run(config, FakeSource(), clock=clock)

    # 12 starts, 1/20 s apart, whichever thread takes which: 11 waits of 0.05, 0.10, ... 0.55 s.
    assert sorted(clock.sleeps) == pytest.approx([0.05 * k for k in range(1, 12)])


def test_local_sources_are_not_paced(tmp_path: Path) -> None:
    tickers = [f"T{i:02d}" for i in range(12)]
    config = make_config(tmp_path, tickers, threads=8, requests_per_second=20.0)
    source = FakeSource()
    source.remote = False  # type: ignore[misc]
    clock = VirtualClock()

    run(config, source, clock=clock)

    assert clock.sleeps == []  # paced, these 12 starts would wait 11 times (see above)


def test_rate_limiter_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="requests_per_second must be > 0, got 0"):
        RateLimiter(0)


# --- per-ticker timeout -------------------------------------------------------------------


def download_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pipeline-download-")]


def test_timeout_fails_the_ticker_and_its_late_result_is_discarded(tmp_path: Path) -> None:
    # One thread only: the others can only finish if a fresh worker replaces the stuck one.
    config = make_config(tmp_path, ["HUNG", "KO", "XOM"], threads=1, timeout_seconds=0.3)
    source = FakeSource()
    release = threading.Event()
    source.hangs = {"HUNG": release}
    clock = VirtualClock()
    # HUNG's request takes a second of the stage's time, then hangs until released.
    source.before_fetch = lambda ticker: clock.advance(1.0) if ticker == "HUNG" else None

    report = run(config, source, clock=clock)
    release.set()
    for thread in download_threads():
        thread.join(timeout=5)

    assert statuses(report) == {"HUNG": "failed", "KO": "fetched", "XOM": "fetched"}
    assert report.outcomes[0].reason == "timed out after 0.3 s"
    assert report.outcomes[0].seconds == 0.3
    assert report.outcomes[0].path is None
    assert [outcome.seconds for outcome in report.outcomes[1:]] == [0.0, 0.0]
    assert not (config.cache_dir / "fake" / "HUNG.parquet").exists()
    assert list(config.cache_dir.rglob("*.tmp")) == []
    assert len(source.calls_for("HUNG")) == 1  # the straggler did not retry either


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("finish", "abandon", (True, False)),
        ("abandon", "finish", (True, False)),
        ("abandon", "start", (True, False)),
    ],
    ids=["worker-first", "timeout-first", "abandoned-before-start"],
)
def test_a_ticker_is_either_reported_by_its_worker_or_timed_out(
    first: str, second: str, expected: tuple[bool, bool]
) -> None:
    task = _TickerTask(0, "KO")
    if first != "abandon" or second != "start":
        task.start(0.0)

    def act(name: str) -> bool:
        return task.start(0.0) if name == "start" else getattr(task, name)()

    assert (act(first), act(second)) == expected


# --- the cache through the stage ----------------------------------------------------------


def test_warm_cache_makes_no_requests(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    run(config, FakeSource())
    source = FakeSource()

    report = run(config, source)

    assert source.calls == []
    assert report.counts == {"hits": 2, "fetched": 0, "refreshed": 0, "skipped": 0, "failed": 0}
    assert all(outcome.path is not None and outcome.path.exists() for outcome in report.outcomes)


def test_later_end_fetches_only_the_new_days(tmp_path: Path) -> None:
    first = make_config(tmp_path, ["KO"], end=date(2023, 3, 31))
    run(first, FakeSource())
    later = make_config(tmp_path, ["KO"], end=END, refresh_overlap_days=5)
    source = FakeSource()

    (outcome,) = run(later, source).outcomes

    assert outcome.status == "refreshed"
    assert source.calls == [("KO", date(2023, 3, 26), END)]  # cached last day 03-31 minus 5
    expected = fake_prices("KO", START, END, 1.0)
    pd.testing.assert_frame_equal(cached_frame(later, "KO"), expected, check_freq=False)
    cached = PriceCache(later.cache_dir).read("fake", "KO")
    assert cached is not None
    assert (cached.meta.covered_start, cached.meta.covered_through) == (START, END)


def test_restated_history_triggers_a_full_refetch(tmp_path: Path) -> None:
    run(make_config(tmp_path, ["KO"], end=date(2023, 3, 31)), FakeSource())
    later = make_config(tmp_path, ["KO"], end=END)
    source = FakeSource()
    source.scale = 0.98  # a dividend restated every adjusted close

    (outcome,) = run(later, source).outcomes

    assert outcome.status == "fetched"
    assert "restated" in outcome.reason
    assert source.calls == [("KO", date(2023, 3, 26), END), ("KO", START, END)]
    expected = fake_prices("KO", START, END, 0.98)
    pd.testing.assert_frame_equal(cached_frame(later, "KO"), expected, check_freq=False)


def test_corrupt_cache_file_is_quarantined_and_fetched_again(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO"])
    run(config, FakeSource())
    path = config.cache_dir / "fake" / "KO.parquet"
    path.write_bytes(path.read_bytes()[:100])
    source = FakeSource()

    (outcome,) = run(config, source).outcomes

    assert outcome.status == "fetched"
    assert source.calls == [("KO", START, END)]
    assert len(list((config.cache_dir / "fake" / QUARANTINE_DIR).iterdir())) == 1
    assert cached_frame(config, "KO").index[-1] == pd.Timestamp("2023-06-30")


def test_another_source_identity_fetches_everything_again(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO"])
    run(config, FakeSource("fake:v1"))
    source = FakeSource("fake:v2")

    (outcome,) = run(config, source).outcomes

    assert outcome.status == "fetched"
    assert source.calls == [("KO", START, END)]
    assert PriceCache(config.cache_dir).read("fake", "KO").meta.source_identity == "fake:v2"  # type: ignore[union-attr]


def test_earlier_start_fetches_everything_again(tmp_path: Path) -> None:
    run(make_config(tmp_path, ["KO"]), FakeSource())
    earlier = make_config(tmp_path, ["KO"], start=date(2022, 1, 3))
    source = FakeSource()

    (outcome,) = run(earlier, source).outcomes

    assert outcome.status == "fetched"
    assert source.calls == [("KO", date(2022, 1, 3), END)]


def test_future_end_date_does_not_freeze_the_cache(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["KO"], end=date(2030, 1, 1))
    run(config, FakeSource())
    same_day, next_week = FakeSource(), FakeSource(today=TODAY + timedelta(days=7))

    again = run(config, same_day)
    later = run(config, next_week, now=NOW + timedelta(days=7))

    assert statuses(again) == {"KO": "hit"}
    assert same_day.calls == []
    assert statuses(later) == {"KO": "refreshed"}
    assert later.outcomes[0].last_date == date(2024, 1, 17)

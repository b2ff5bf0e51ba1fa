"""Progress of a long stage: a bar in a terminal, sparse log lines anywhere else.

    with progress_reporter("download", len(tickers)) as progress:
        ...
        progress.advance()          # from any thread

In a terminal (stderr is a tty) a rich bar shows done/total, percent, rate and ETA. Under cron, CI
or a pipe, a log line such as "download: 120/505 tickers (23.8%), 12.1/s, ETA 32 s" is written at
most every `log_every_seconds`, plus one when the stage ends. `enabled=False` shows nothing.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from types import TracebackType
from typing import Literal, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
Display = Literal["bar", "log", "quiet"]


class ProgressSink(Protocol):
    """What a stage needs from a progress display: being told that items finished."""

    def advance(self, n: int = 1) -> None: ...


def progress_line(
    label: str, done: int, total: int, elapsed: float, unit: str = "tickers", finished: bool = False
) -> str:
    """'download: 120/505 tickers (23.8%), 12.1/s, ETA 32 s'; 'done in 41 s' when finished.

    The rate is the mean since the start (`elapsed` seconds); the ETA assumes it holds.
    """
    percent = 100.0 * done / total if total else 100.0
    rate = done / elapsed if elapsed > 0 else 0.0
    if finished:
        tail = f"done in {format_duration(elapsed)}"
    elif rate > 0:
        tail = f"ETA {format_duration(max(total - done, 0) / rate)}"
    else:
        tail = "ETA unknown"
    return f"{label}: {done}/{total} {unit} ({percent:.1f}%), {rate:.1f}/s, {tail}"


def format_duration(seconds: float) -> str:
    """'32 s', '4 min 05 s', '2 h 03 min': precise enough for an estimate."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressReporter:
    """Counts finished items of one stage and shows them as `display` says.

    A context manager: entering starts the clock (and the bar), leaving stops the bar or logs the
    final line. `advance` is thread-safe.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        display: Display,
        unit: str = "tickers",
        log_every_seconds: float = LOG_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.display = display
        self.unit = unit
        self._log_every = log_every_seconds
        self._clock = clock
        self._stream = stream
        self._lock = threading.Lock()
        self._done = 0
        self._started = self._last_logged = clock()
        self._bar: Progress | None = None

    @property
    def done(self) -> int:
        return self._done

    def advance(self, n: int = 1) -> None:
        """Record `n` more finished items."""
        with self._lock:
            self._done += n
            now = self._clock()
            due = self.display == "log" and now - self._last_logged >= self._log_every
            if due:
                self._last_logged = now
                line = self.describe(now)
        if self._bar is not None:
            self._bar.advance(self._bar.task_ids[0], n)
        if due:
            logger.info(line)

    def describe(self, now: float | None = None, finished: bool = False) -> str:
        elapsed = (self._clock() if now is None else now) - self._started
        return progress_line(self.label, self._done, self.total, elapsed, self.unit, finished)

    def __enter__(self) -> ProgressReporter:
        self._started = self._last_logged = self._clock()
        if self.display == "bar":
            self._bar = _make_bar(self.unit, self._stream, self._clock)
            self._bar.add_task(self.label, total=self.total)
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.display == "log":
            line = self.describe(finished=exc_type is None)
            logger.info(line if exc_type is None else f"{line} (stopped: {exc_type.__name__})")


def progress_reporter(
    label: str,
    total: int,
    *,
    unit: str = "tickers",
    enabled: bool = True,
    interactive: bool | None = None,
    log_every_seconds: float = LOG_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    stream: TextIO | None = None,
) -> ProgressReporter:
    """The reporter for this environment: a bar when `stream` (stderr) is a terminal, log lines
    otherwise, nothing when not `enabled`. `interactive` overrides the terminal check."""
    if interactive is None:
        interactive = is_terminal(stream if stream is not None else sys.stderr)
    display: Display = "quiet" if not enabled else "bar" if interactive else "log"
    return ProgressReporter(
        label,
        total,
        display=display,
        unit=unit,
        log_every_seconds=log_every_seconds,
        clock=clock,
        stream=stream,
    )


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _RateColumn(ProgressColumn):
    """Items per second, as rich estimates it over its recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if not speed else f"{speed:.1f}/s", style="progress.data.speed")


@cache
def stderr_console() -> Console:
    """The one console on stderr that the bars and the log handler share, so that log lines
    print above a live bar instead of tearing it. It writes to whatever sys.stderr is."""
    return Console(stderr=True)


def _make_bar(unit: str, stream: TextIO | None, clock: Callable[[], float]) -> Progress:
    console = Console(file=stream) if stream is not None else stderr_console()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
        console=console,
        get_time=clock,
    )

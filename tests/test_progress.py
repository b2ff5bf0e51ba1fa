"""Progress reporting: log lines off a terminal, a bar on one, nothing when disabled."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from pipeline.progress import ProgressReporter, format_duration, progress_line, progress_reporter


class SteppedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"]


@pytest.mark.parametrize(
    ("done", "total", "elapsed", "finished", "expected"),
    [
        (120, 505, 120 / 12.1, False, "download: 120/505 tickers (23.8%), 12.1/s, ETA 32 s"),
        (0, 505, 0.0, False, "download: 0/505 tickers (0.0%), 0.0/s, ETA unknown"),
        (505, 505, 41.7, True, "download: 505/505 tickers (100.0%), 12.1/s, done in 42 s"),
        (0, 0, 0.0, True, "download: 0/0 tickers (100.0%), 0.0/s, done in 0.0 s"),
        (1, 1000, 10.0, False, "download: 1/1000 tickers (0.1%), 0.1/s, ETA 2 h 46 min"),
    ],
    ids=["midway", "start", "finished", "empty", "slow"],
)
def test_progress_line(
    done: int, total: int, elapsed: float, finished: bool, expected: str
) -> None:
    assert progress_line("download", done, total, elapsed, "tickers", finished) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.25, "0.2 s"),
        (32.4, "32 s"),
        (59.6, "1 min 00 s"),
        (245, "4 min 05 s"),
        (7380, "2 h 03 min"),
    ],
    ids=["sub-second", "seconds", "rounds-up", "minutes", "hours"],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_log_mode_writes_at_most_one_line_per_interval_and_one_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    clock = SteppedClock()
    reporter = progress_reporter(
        "download", 10, interactive=False, log_every_seconds=10.0, clock=clock
    )

    with reporter as progress:
        for step in (1.0, 4.0, 6.0, 1.0, 3.0):  # t = 1, 5, 11, 12, 15
            clock.now += step
            progress.advance()
        clock.now += 5.0

    assert reporter.display == "log"
    assert progress_messages(caplog) == [
        "download: 3/10 tickers (30.0%), 0.3/s, ETA 26 s",
        "download: 5/10 tickers (50.0%), 0.2/s, done in 20 s",
    ]


def test_log_mode_says_when_the_stage_stopped_early(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")

    with pytest.raises(KeyboardInterrupt), progress_reporter("backtest", 4, interactive=False):
        raise KeyboardInterrupt

    assert progress_messages(caplog)[-1].endswith("(stopped: KeyboardInterrupt)")


def test_advance_counts_every_item_from_many_threads() -> None:
    reporter = progress_reporter("download", 8000, interactive=False, log_every_seconds=0.0)

    def work(progress: ProgressReporter) -> None:
        for _ in range(1000):
            progress.advance()

    with reporter as progress:
        threads = [threading.Thread(target=work, args=(progress,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert reporter.done == 8000


def test_disabled_reporter_counts_but_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stream = TerminalStream()

    with progress_reporter("download", 3, enabled=False, stream=stream) as progress:
        progress.advance(3)

    assert progress.display == "quiet"
    assert progress.done == 3
    assert progress_messages(caplog) == []
    assert stream.getvalue() == ""


def test_terminal_gets_a_bar_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    stream = TerminalStream()

    with progress_reporter("download", 4, stream=stream) as progress:
        for _ in range(4):
            progress.advance()

    assert progress.display == "bar"
    assert "4/4" in stream.getvalue()
    assert "download" in stream.getvalue()
    assert progress_messages(caplog) == []


def test_a_pipe_gets_log_lines() -> None:
    assert progress_reporter("download", 4, stream=io.StringIO()).display == "log"

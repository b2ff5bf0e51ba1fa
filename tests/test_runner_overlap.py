"""The data stage and the backtest overlapped (`runner.run_data_and_backtest_stages`): tickers are
backtested while others still download, and nothing about the run's results shows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.data.sources.synthetic import SyntheticSource
from pipeline.execution import serial
from pipeline.safe_io import TEMP_SUFFIX
from tests.conftest import synthetic_raw_config

SLOW = "SYN000"  # the universe's first ticker, whose download is held back
HOLD_SECONDS = 30.0  # far longer than the test: it fails, rather than hangs, without overlap


def config(tmp_path: Path, cache: str = "cache", **execution: object) -> dict:
    return synthetic_raw_config(
        tmp_path / cache,
        n_tickers=5,
        n_days=500,
        seed=11,
        start=date(2019, 1, 1),
        backtest={"mode": "walk_forward", "train_days": 150, "retrain_every": 21},
        execution={"executor": "serial", **execution},
    )


class HeldDownload:
    """SLOW's download waits until `release` (or HOLD_SECONDS); records what ran meanwhile."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.backtested_while_held: list[str] = []
        self.held = threading.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fetch = SyntheticSource.fetch
        run_job = serial.run_job

        def held_fetch(source: SyntheticSource, ticker: str, start: date, end: date):
            if ticker == SLOW:
                self.held.set()
                self.release.wait(HOLD_SECONDS)
                self.held.clear()
            return fetch(source, ticker, start, end)

        def watched_job(job, settings):
            if self.held.is_set():
                self.backtested_while_held.append(job.ticker)
            return run_job(job, settings)

        monkeypatch.setattr(SyntheticSource, "fetch", held_fetch)
        monkeypatch.setattr(serial, "run_job", watched_job)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldDownload]:
    hold = HeldDownload()
    hold.install(monkeypatch)
    yield hold
    hold.release.set()  # a download thread still waiting is let go


def test_tickers_are_backtested_while_others_download_and_results_keep_universe_order(
    tmp_path: Path, held: HeldDownload, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Released by the backtest of the other tickers: without the overlap SLOW's download would
    # wait the whole HOLD_SECONDS before anything is backtested.
    watched = serial.run_job

    def release_after_others(job, settings):
        result = watched(job, settings)
        if len(held.backtested_while_held) >= 4:
            held.release.set()
        return result

    monkeypatch.setattr(serial, "run_job", release_after_others)
    started = time.monotonic()
    overlapped = run_backtest(config(tmp_path))
    assert time.monotonic() - started < HOLD_SECONDS / 2
    assert sorted(held.backtested_while_held) == ["SYN001", "SYN002", "SYN003", "SYN004"]

    held.release.set()
    reference = run_backtest(config(tmp_path, cache="reference-cache"))
    universe = [f"SYN{i:03d}" for i in range(5)]
    assert overlapped.summary["ticker"].tolist() == universe
    assert overlapped.daily["ticker"].astype(str).unique().tolist() == universe
    assert overlapped.summary.equals(reference.summary)
    assert overlapped.daily.equals(reference.daily)
    assert overlapped.signals is not None and reference.signals is not None
    assert overlapped.signals.equals(reference.signals)


def test_a_failing_backtest_stops_the_download_without_waiting_for_it(
    tmp_path: Path, held: HeldDownload, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(job, settings):
        raise RuntimeError(f"task broke on {job.ticker}")

    monkeypatch.setattr(serial, "run_job", broken)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"task broke on SYN00[1-4]"):
        run_backtest(config(tmp_path))
    assert time.monotonic() - started < HOLD_SECONDS / 2
    assert not [t for t in threading.enumerate() if t.name == "pipeline-data-stage"]
    assert not list((tmp_path / "cache").rglob(f"*{TEMP_SUFFIX}"))
    held.release.set()
    # The cache it left is whole: the next run reads it and runs every ticker.
    monkeypatch.undo()
    again = run_backtest(config(tmp_path))
    assert (again.summary["status"] == "ok").all()


def test_a_failing_data_stage_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unusable(self: SyntheticSource) -> str:
        raise OSError("the source cannot say who it is")

    monkeypatch.setattr(SyntheticSource, "identity", unusable)
    with pytest.raises(OSError, match="cannot say who it is"):
        run_backtest(config(tmp_path))
    assert not [t for t in threading.enumerate() if t.name == "pipeline-data-stage"]


@pytest.mark.slow
def test_the_pool_overlaps_the_same_way(tmp_path: Path, held: HeldDownload) -> None:
    held.release.set()  # no hold: the pool's workers cannot see the test's patches anyway
    pooled = run_backtest(config(tmp_path, executor="pool", workers=2))
    reference = run_backtest(config(tmp_path, cache="reference-cache"))
    assert pooled.summary.equals(reference.summary)
    assert pooled.daily.equals(reference.daily)
    assert isinstance(pooled.daily, pd.DataFrame)


def test_an_interrupted_run_removes_the_store_writes_its_workers_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker stopped in the middle of writing its store entry leaves the write's temporary
    # file (the entry itself is never half written): here a task leaves one, then Ctrl-C.
    def cut_short(job, settings):
        assert job.results is not None
        job.results.path.parent.mkdir(parents=True, exist_ok=True)
        (job.results.path.parent / f".{job.ticker}.parquet.1.cut{TEMP_SUFFIX}").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(serial, "run_job", cut_short)
    with pytest.raises(KeyboardInterrupt):
        run_backtest(config(tmp_path))
    assert not list((tmp_path / "cache").rglob(f"*{TEMP_SUFFIX}"))
    assert not [t for t in threading.enumerate() if t.name == "pipeline-data-stage"]

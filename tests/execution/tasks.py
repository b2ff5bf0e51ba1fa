"""Top-level tasks for pool tests: the pool pickles them by reference into its workers."""

from __future__ import annotations

import os
import signal
import sys
import time
import types
from pathlib import Path

from pipeline.backtest.models import EstimatorSpec
from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob


def echo_task(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """An ok result carrying the worker's pid, so tests can see who ran what."""
    if job.ticker.startswith("SLOW"):
        time.sleep(0.3)
    return TickerResult(job.ticker, "ok", metrics={"pid": os.getpid()})


def misbehaving_task(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """KILL* kills its own worker every time; ONCE* only on the first try; RAISE* raises;
    HANG* sleeps far past any timeout."""
    if job.ticker.startswith("KILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    if job.ticker.startswith("ONCE"):
        marker = Path(job.path)
        if not marker.exists():
            marker.write_text("tried")
            os.kill(os.getpid(), signal.SIGKILL)
    if job.ticker.startswith("RAISE"):
        raise ValueError("boom in the task")
    if job.ticker.startswith("HANG"):
        time.sleep(60)
    return echo_task(job, settings)


def settings_task(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """An ok result saying which settings it ran with (their lags), and where."""
    metrics = {"lags": settings.features.lags, "pid": os.getpid()}
    return TickerResult(job.ticker, "ok", metrics=metrics)


def importing_task(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """A worker's first task imports a module (as a worker's first fit imports scikit-learn)
    and takes 0.3 s doing it; every task takes 20 ms of work."""
    if "tests_imported_module" not in sys.modules:
        sys.modules["tests_imported_module"] = types.ModuleType("tests_imported_module")
        time.sleep(0.3)
    time.sleep(0.02)
    return echo_task(job, settings)


FAKE_MODULE = "tests.execution.fake_estimator"
FAKE_ESTIMATOR = EstimatorSpec(f"{FAKE_MODULE}.FakeEstimator", {}, weighted_fit_exact=True)


def fitting_task(job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """FIT* tickers build the fake estimator, whose module a worker imports at its first (as a
    worker's first refit imports scikit-learn); every task works for 20 ms. The result says
    where it ran and whether that process had the estimator's module loaded by then."""
    if job.ticker.startswith("FIT"):
        FAKE_ESTIMATOR.factory()
    time.sleep(0.02)
    loaded = FAKE_MODULE in sys.modules
    return TickerResult(job.ticker, "ok", metrics={"pid": os.getpid(), "loaded": loaded})

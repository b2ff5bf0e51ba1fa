"""Executors own their lifecycle: `with make_executor(...)` starts their processes and stops
every one of them however the block ends, a failure in the download stage included; and jobs
that carry their own settings run with them on one executor."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psutil
import pytest

from pipeline import run_backtest
from pipeline import runner as runner_module
from pipeline.config import BacktestSettings, ExecutionConfig, load_config
from pipeline.execution.executors import collect_results, make_executor
from pipeline.execution.jobs import TickerJob
from pipeline.execution.pool import CrashProofPool
from pipeline.execution.serial import SerialExecutor
from tests.conftest import synthetic_raw_config
from tests.execution.tasks import settings_task

pytestmark = pytest.mark.slow

BASE = load_config(
    {"data": {"source": "synthetic", "start": date(2015, 1, 1), "end": date(2020, 1, 1)}}
).backtest_settings


def with_lags(lags: int, base: BacktestSettings = BASE) -> BacktestSettings:
    return base.model_copy(update={"features": base.features.model_copy(update={"lags": lags})})


def workers_alive() -> list[psutil.Process]:
    """Processes this one started, but for multiprocessing's fork server and resource tracker
    (they live as long as the interpreter); the fork server's children are workers."""
    alive = []
    for child in psutil.Process().children():
        try:
            command = " ".join(child.cmdline())
            if "multiprocessing.resource_tracker" in command:
                continue
            family = child.children(recursive=True)
            if "multiprocessing.forkserver" not in command:
                family.append(child)
            alive.extend(p for p in family if p.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            continue
    return alive


def wait_gone(seconds: float = 5.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(workers_alive(), timeout=seconds)
    return alive


def mixed_jobs() -> list[TickerJob]:
    """Jobs of three configurations: lags 3, lags 9, and the executor's own (6)."""
    settings = [with_lags(3), with_lags(9), None]
    return [
        TickerJob(f"T{i}", Path("unused"), date(2015, 1, 1), date(2020, 1, 1), settings[i % 3])
        for i in range(9)
    ]


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_jobs_run_with_their_own_settings_on_one_executor(executor: str) -> None:
    jobs = mixed_jobs()
    if executor == "pool":
        built = CrashProofPool(BASE, workers=2, chunksize=2, task=settings_task)
    else:
        from pipeline.execution.dask_executor import DaskExecutor

        built = DaskExecutor(BASE, 1, None, chunksize=2, task=settings_task)
    with built as running:
        first = collect_results(jobs, running.run(jobs))
        again = collect_results(jobs[:3], running.run(jobs[:3]))  # a second run, same executor
    assert [r.metrics["lags"] for r in first] == [3, 9, 6] * 3
    assert [r.metrics["lags"] for r in again] == [3, 9, 6]
    assert wait_gone() == []


def test_serial_runs_a_job_with_its_own_settings(tmp_path: Path) -> None:
    raw = synthetic_raw_config(tmp_path / "cache", n_tickers=3, n_days=800, seed=1)
    config = load_config(raw, ["execution.executor=serial", "backtest.mode=in_sample"])
    summary = run_backtest(config).summary.set_index("ticker")
    ticker = summary.index[summary["status"] == "ok"][0]
    path = tmp_path / "cache" / "synthetic" / f"{ticker}.parquet"
    jobs = [
        TickerJob(ticker, path, config.data.start, config.data.end, settings)
        for settings in (None, with_lags(2, config.backtest_settings))
    ]
    with SerialExecutor(config.backtest_settings) as serial:
        default, own = collect_results(jobs, serial.run(jobs))
    assert default.metrics["accuracy"] == summary.loc[ticker, "accuracy"]
    assert own.status == "ok"
    # In-sample, two lags leave four more days to evaluate than the default six.
    assert own.metrics["n_days"] == default.metrics["n_days"] + 4


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_entering_starts_workers_and_leaving_stops_them(executor: str) -> None:
    execution = ExecutionConfig(executor=executor, workers=2)
    with make_executor(execution, BASE, n_jobs=10):
        assert len(workers_alive()) >= 1, "entering started no worker"
    assert wait_gone() == []


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_a_failing_download_stage_leaves_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    started: list[int] = []

    def broken_download(*args: object, **kwargs: object) -> None:
        started.extend(p.pid for p in workers_alive())
        raise OSError("disk on fire")

    monkeypatch.setattr(runner_module, "run_data_stage", broken_download)
    raw = synthetic_raw_config(tmp_path / "cache", n_tickers=4, n_days=300)
    with pytest.raises(OSError, match="disk on fire"):
        run_backtest(raw, [f"execution.executor={executor}", "execution.workers=2"])
    assert started, "the executor had started workers before the download"
    assert wait_gone() == []

"""The Dask executor on a real `dask scheduler` with `dask worker`s, and on a local cluster.

The cluster fixture starts the very commands the README gives users, as separate processes on
loopback ports, and stops them (and the worker processes they spawned) by pid afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

from pipeline import run_backtest
from pipeline.config import load_config
from pipeline.errors import ConfigError, PipelineError
from pipeline.execution import dask_executor
from pipeline.execution.dask_executor import DaskClusterError, DaskExecutor, connect_scheduler
from pipeline.execution.jobs import TickerJob
from tests.conftest import REPO_ROOT, synthetic_raw_config
from tests.execution.tasks import echo_task, misbehaving_task

START_TIMEOUT_SECONDS = 45.0
STOP_TIMEOUT_SECONDS = 10.0
SETTINGS = load_config(
    {"data": {"source": "synthetic", "start": date(2015, 1, 1), "end": date(2020, 1, 1)}}
).backtest_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`dask ARGUMENTS` as its own process; workers import `pipeline` and `tests` from the repo."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        # One retry after a worker death, as the local cluster and the pool do: keeps the
        # killed-worker test short.
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
    }
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *arguments],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, then SIGKILL for it and every process it started (its own
    session: the nannies' workers, even those restarted while it shut down)."""
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    _, survivors = psutil.wait_procs(session_of(process), timeout=STOP_TIMEOUT_SECONDS)
    for survivor in survivors:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()


def session_of(process: subprocess.Popen[Any]) -> list[psutil.Process]:
    members = []
    for candidate in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getsid(candidate.pid) == process.pid:
                members.append(candidate)
    return members


def fail_with_logs(what: str, logs: list[Path]) -> None:
    text = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in logs)
    pytest.fail(f"{what}\n{text}")


def wait_for_port(port: int, scheduler: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            fail_with_logs(f"dask scheduler exited with code {scheduler.returncode}", [log])
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    fail_with_logs(f"dask scheduler not listening after {START_TIMEOUT_SECONDS:g} s", [log])


def wait_for_workers(
    address: str, count: int, processes: list[subprocess.Popen[bytes]], logs: list[Path]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with connect_scheduler(address, timeout=10, workers_timeout=START_TIMEOUT_SECONDS) as client:
        while len(client.nthreads()) < count:
            exited = [p.returncode for p in processes if p.poll() is not None]
            if exited:
                fail_with_logs(f"a dask process exited with code {exited[0]}", logs)
            if time.monotonic() > deadline:
                fail_with_logs(f"{count} dask workers not up in {START_TIMEOUT_SECONDS:g} s", logs)
            time.sleep(0.1)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1`; yields the address."""
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler_log, worker_log = logs / "scheduler.log", logs / "worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            launch(
                [
                    *("scheduler", "--host", "127.0.0.1", "--port", str(port)),
                    *("--no-dashboard", "--dashboard-address", "127.0.0.1:0"),
                ],
                scheduler_log,
            )
        )
        wait_for_port(port, processes[0], scheduler_log)
        processes.append(
            launch(
                [
                    *("worker", address, "--nworkers", "2", "--nthreads", "1"),
                    *("--no-dashboard", "--host", "127.0.0.1"),
                ],
                worker_log,
            )
        )
        wait_for_workers(address, 2, processes, [scheduler_log, worker_log])
        yield address
    finally:
        for process in reversed(processes):
            stop(process)


def jobs_for(tickers: list[str], directory: Path) -> list[TickerJob]:
    return [
        TickerJob(t, directory / f"{t}.marker", date(2015, 1, 1), date(2020, 1, 1)) for t in tickers
    ]


def run_all(executor: DaskExecutor, jobs: list[TickerJob]) -> dict[str, tuple[str, str]]:
    seen: dict[int, Any] = {}
    for index, result in executor.run(jobs):
        assert index not in seen, f"job {index} reported twice"
        seen[index] = result
    assert sorted(seen) == list(range(len(jobs)))
    return {jobs[i].ticker: (r.status, r.reason) for i, r in seen.items()}


def synthetic_config(tmp_path: Path) -> dict[str, Any]:
    return synthetic_raw_config(
        tmp_path / "cache",
        n_tickers=5,
        n_days=600,
        backtest={"mode": "walk_forward", "train_days": 250, "retrain_every": 21},
        execution={"workers": 2},
    )


def new_children(before: set[int]) -> list[psutil.Process]:
    """Live child processes started since `before`, multiprocessing's helpers aside (they
    live as long as the interpreter, whoever started them)."""
    helpers = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.pid in before or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if not any(helper in " ".join(child.cmdline()) for helper in helpers):
                found.append(child)
    return found


def children_gone(before: set[int], within: float = STOP_TIMEOUT_SECONDS) -> bool:
    deadline = time.monotonic() + within
    while new_children(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not new_children(before)


# --- a real scheduler and workers --------------------------------------------------------------


@pytest.mark.slow
def test_a_run_on_a_real_cluster_equals_the_pool(dask_cluster: str, tmp_path: Path) -> None:
    config = synthetic_config(tmp_path)
    pooled = run_backtest(config, ["execution.executor=pool"])
    clustered = run_backtest(
        config, ["execution.executor=dask", f'execution.dask_address="{dask_cluster}"']
    )
    pd.testing.assert_frame_equal(pooled.summary, clustered.summary, check_exact=True)
    pd.testing.assert_frame_equal(pooled.daily, clustered.daily, check_exact=True)
    assert (pooled.summary["status"] == "ok").sum() >= 3
    execution = clustered.manifest["execution"]
    assert execution["executor"] == "dask"
    assert execution["dask_address"] == dask_cluster
    assert (execution["workers"], execution["threads"]) == (2, 2)


@pytest.mark.slow
def test_a_task_that_raises_fails_only_its_ticker(dask_cluster: str, tmp_path: Path) -> None:
    executor = DaskExecutor(SETTINGS, 2, dask_cluster, chunksize=2, task=misbehaving_task)
    outcome = run_all(executor, jobs_for(["A", "RAISE1", "B", "C"], tmp_path))
    assert outcome["RAISE1"] == ("failed", "ValueError: boom in the task")
    assert {outcome[t][0] for t in "ABC"} == {"ok"}


@pytest.mark.slow
def test_a_ticker_that_kills_its_worker_fails_alone(dask_cluster: str, tmp_path: Path) -> None:
    """KILL1 kills every worker that runs it, and Dask blames A, in the same chunk, as much.
    Rerun alone, A comes through and KILL1 fails."""
    executor = DaskExecutor(SETTINGS, 2, dask_cluster, chunksize=2, task=misbehaving_task)
    outcome = run_all(executor, jobs_for(["A", "KILL1", "B", "C"], tmp_path))
    assert outcome["KILL1"][0] == "failed"
    assert "KilledWorker" in outcome["KILL1"][1]
    assert {outcome[t] for t in "ABC"} == {("ok", "")}
    # The nannies restart the killed workers; later tests want both back.
    with connect_scheduler(dask_cluster, workers_timeout=START_TIMEOUT_SECONDS) as client:
        client.wait_for_workers(2, timeout=START_TIMEOUT_SECONDS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "expected"), [("auto", 25), (7, 7)], ids=["auto-from-pilot", "fixed"]
)
def test_jobs_travel_in_chunks(
    dask_cluster: str, tmp_path: Path, setting: int | str, expected: int
) -> None:
    """Instant tasks: the pilot's overhead target allows any size, so the balance cap decides,
    200 jobs // (2 threads * 4 chunks per thread) = 25."""
    executor = DaskExecutor(SETTINGS, 2, dask_cluster, chunksize=setting, task=echo_task)
    tickers = [f"T{i:03d}" for i in range(200)]
    assert run_all(executor, jobs_for(tickers, tmp_path)) == {t: ("ok", "") for t in tickers}
    described = executor.describe()
    assert (described["chunksize"], described["chunksize_setting"]) == (expected, setting)


@pytest.mark.slow
def test_a_task_over_the_timeout_fails_and_its_chunk_mates_finish(
    dask_cluster: str, tmp_path: Path
) -> None:
    """chunksize and task_timeout_seconds both honoured: HANG1 fails with the pool's reason,
    the rest of its chunk is sent again, the worker stuck in it is restarted."""
    executor = DaskExecutor(
        SETTINGS, 2, dask_cluster, chunksize=3, task=misbehaving_task, task_timeout=1.0
    )
    tickers = ["A", "HANG1", "B", "C", "D", "E"]
    started = time.monotonic()
    outcome = run_all(executor, jobs_for(tickers, tmp_path))
    assert time.monotonic() - started < 50, "the hung task was waited for, not timed out"
    assert outcome.pop("HANG1") == ("failed", "timed out after 1 s")
    assert outcome == {t: ("ok", "") for t in "ABCDE"}
    described = executor.describe()
    assert (described["chunksize"], described["timeouts"]) == (3, 1)
    assert described["task_timeout_seconds"] == 1.0
    with connect_scheduler(dask_cluster, workers_timeout=START_TIMEOUT_SECONDS) as client:
        client.wait_for_workers(2, timeout=START_TIMEOUT_SECONDS)


@pytest.mark.slow
def test_a_worker_death_is_logged_and_counted(
    dask_cluster: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ONCE1 kills its worker on the first try; Dask reruns it. The run says so."""
    executor = DaskExecutor(SETTINGS, 2, dask_cluster, chunksize=1, task=misbehaving_task)
    with caplog.at_level("WARNING", logger=dask_executor.__name__):
        outcome = run_all(executor, jobs_for(["A", "ONCE1", "B"], tmp_path))
    assert outcome == {t: ("ok", "") for t in ("A", "ONCE1", "B")}
    assert executor.describe()["worker_restarts"] >= 1
    assert "died while running" in caplog.text and "ONCE1" in caplog.text, caplog.text
    with connect_scheduler(dask_cluster, workers_timeout=START_TIMEOUT_SECONDS) as client:
        client.wait_for_workers(2, timeout=START_TIMEOUT_SECONDS)


def test_the_execution_settings_reach_the_dask_executor() -> None:
    from pipeline.config import ExecutionConfig
    from pipeline.execution.executors import make_executor

    execution = ExecutionConfig(executor="dask", workers=1, chunksize=3, task_timeout_seconds=2)
    executor = make_executor(execution, SETTINGS, n_jobs=10)
    assert isinstance(executor, DaskExecutor)
    assert (executor.chunksize, executor.task_timeout) == (3, 2.0)
    assert executor.describe()["chunksize_setting"] == 3


# --- addresses that do not lead to a usable cluster --------------------------------------------


@pytest.mark.slow
def test_an_unreachable_scheduler_fails_fast_and_before_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refused connection needs no patience: the timeout only bounds the wait.
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_SECONDS", 0.5)
    address = f"tcp://127.0.0.1:{free_port()}"
    overrides = ["execution.executor=dask", f'execution.dask_address="{address}"']
    started = time.monotonic()
    with pytest.raises(DaskClusterError, match=f"cannot reach the Dask scheduler at .*{address}"):
        run_backtest(synthetic_config(tmp_path), overrides)
    assert time.monotonic() - started < 10
    assert not list((tmp_path / "cache").rglob("*.parquet")), "the data stage ran first"
    assert issubclass(DaskClusterError, PipelineError)
    assert issubclass(DaskClusterError, RuntimeError)


@pytest.mark.parametrize(
    "address", ["nonsense", "http://127.0.0.1:8786"], ids=["no-port", "wrong-scheme"]
)
def test_a_malformed_address_is_a_config_error(tmp_path: Path, address: str) -> None:
    overrides = ["execution.executor=dask", f'execution.dask_address="{address}"']
    with pytest.raises(ConfigError, match=r"execution\.dask_address: .* tcp://HOST:PORT"):
        run_backtest(synthetic_config(tmp_path), overrides)


@pytest.mark.slow
def test_a_scheduler_without_workers_is_named() -> None:
    from dask.distributed import LocalCluster

    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        pytest.raises(DaskClusterError, match=r"has no workers after 0\.5 s; start some with"),
        connect_scheduler(cluster.scheduler_address, workers_timeout=0.5),
    ):
        pass


@pytest.mark.slow
def test_losing_the_scheduler_mid_run_fails_the_run(tmp_path: Path) -> None:
    """Not a ticker's failure: the run stops with a clear error instead of failing them all."""
    from dask.distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    try:
        executor = DaskExecutor(SETTINGS, 1, cluster.scheduler_address, 1, task=echo_task)
        jobs = jobs_for([f"SLOW{i}" for i in range(10)], tmp_path)
        with pytest.raises(DaskClusterError, match=r"dropped the run's tasks .* not finished"):
            for _ in executor.run(jobs):
                cluster.close()
    finally:
        cluster.close()


# --- a local cluster ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_cluster_is_quiet_and_leaves_nothing_behind(
    capfd: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder, tmp_path: Path
) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with socket.socket() as dashboard_port:
        # Dask's default HTTP port taken, as by another cluster: still no warning about ports.
        with contextlib.suppress(OSError):
            dashboard_port.bind(("127.0.0.1", 8787))
            dashboard_port.listen()
        # Entered as the runner does, before the download; left after the run.
        with DaskExecutor(SETTINGS, 2, None, task=echo_task) as executor:
            assert len(new_children(before)) >= 2, "entering started no worker processes"
            tickers = [f"T{i:02d}" for i in range(12)]
            expected = {t: ("ok", "") for t in tickers}
            assert run_all(executor, jobs_for(tickers, tmp_path)) == expected
    described = executor.describe()
    assert (described["workers"], described["threads"], described["dask_address"]) == (2, 2, None)
    assert children_gone(before), [child.cmdline() for child in new_children(before)]
    err = capfd.readouterr().err
    assert "distributed" not in err and "arning" not in err, err
    assert not [str(w.message) for w in recwarn], [str(w.message) for w in recwarn]


@pytest.mark.slow
def test_close_without_a_run_stops_the_local_cluster() -> None:
    """The runner prepares the executor before the download; if no run follows, close does."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    executor = DaskExecutor(SETTINGS, 1, None, task=echo_task)
    executor.prepare()
    assert new_children(before), "prepare started no worker process"
    executor.close()
    executor.close()
    assert children_gone(before), [child.cmdline() for child in new_children(before)]


@pytest.mark.slow
def test_stopping_early_closes_the_local_cluster(tmp_path: Path) -> None:
    """Ctrl-C reaching the consumer between two results: no worker outlives the run."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    executor = DaskExecutor(SETTINGS, 1, None, chunksize=1, task=echo_task)
    with pytest.raises(KeyboardInterrupt):
        for _ in executor.run(jobs_for([f"SLOW{i}" for i in range(20)], tmp_path)):
            assert new_children(before), "no worker processes while the run is on"
            raise KeyboardInterrupt
    assert children_gone(before), [child.cmdline() for child in new_children(before)]


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_exits_130_quietly_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, mid-backtest on a local
    cluster: exit 130, no traceback from the workers, no process left behind."""
    command = [
        *(sys.executable, "-m", "pipeline", "run", "configs/demo.toml", "--out"),
        str(tmp_path / "run"),
        *("--set", f'data.cache_dir="{(tmp_path / "cache").as_posix()}"'),
        *("--set", "data.synthetic.n_tickers=30", "--set", "execution.executor=dask"),
        *("--set", "execution.workers=1"),
    ]
    child = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=read_lines, args=(child, lines), daemon=True)
    reader.start()
    try:
        # The cluster starts before the download, so its end means the workers are up.
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not any("download:" in line and "done" in line for line in lines):
            assert child.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        time.sleep(0.5)
        seen = psutil.Process(child.pid).children(recursive=True)
        assert seen, f"no worker process\n{''.join(lines)}"
        os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within 60 s of Ctrl-C\n{''.join(lines)}")
        reader.join(timeout=5)
        stderr = "".join(lines)
        assert child.returncode == 130, stderr
        assert "pipeline: interrupted" in stderr
        assert "Traceback" not in stderr, stderr
        _, alive = psutil.wait_procs(seen, timeout=STOP_TIMEOUT_SECONDS)
        assert not alive, [process.cmdline() for process in alive]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for straggler in session_of(child):
            with contextlib.suppress(psutil.NoSuchProcess):
                straggler.kill()


def read_lines(child: subprocess.Popen[str], lines: list[str]) -> None:
    assert child.stderr is not None
    for line in child.stderr:
        lines.append(line)

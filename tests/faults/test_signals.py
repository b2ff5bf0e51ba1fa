"""What schedulers, `timeout`, systemd and the OOM killer do to a run, done to real runs.

- SIGTERM or SIGHUP mid-backtest (pool or Dask): handled as Ctrl-C is: exit 128 + the signal,
  one line on stderr, a history line with that exit code, the cache lock free at once,
  `latest` not moved, and no process of the run alive within three seconds.
- SIGKILL of the main process (no clean-up possible): every worker, and the fork server, gone
  by themselves within five seconds.
- SIGKILL of the fork server mid-run: the run notices, starts a new one, finishes every ticker
  and exits 0; the workers that died with the fork server are not counted as crashes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from pipeline.data.cache import PriceCache
from tests.conftest import REPO_ROOT
from tests.faults.conftest import base_settings, pipeline_command

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]

N_TICKERS = 24


def settings_for(tmp_path: Path, executor: str) -> dict[str, object]:
    """Plain fits on a walk-forward: long enough per ticker that a signal lands mid-task."""
    extra = {
        "data.source": "synthetic",
        "data.synthetic.n_tickers": N_TICKERS,
        "data.synthetic.n_days": 1500,
        "data.start": "2015-01-01",
        "data.end": "2021-12-31",
        "backtest.mode": "walk_forward",
        "backtest.train_days": 250,
        "model.fast_path": False,
        "execution.executor": executor,
        "execution.workers": 2,
        "execution.chunksize": 1,
    }
    return base_settings(tmp_path, extra)


def living(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def wait_dead(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while living(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return living(processes)


@contextmanager
def started_run(tmp_path: Path, executor: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`python -m pipeline run` in its own session, back once its backtest is under way."""
    settings = settings_for(tmp_path, executor)
    run_dir = tmp_path / "reports" / "the-run"
    command = pipeline_command(settings, "--out", str(run_dir))
    log = (tmp_path / "stderr.txt").open("w")
    child = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        run_log = run_dir / "run.log"
        while f"download: {N_TICKERS} tickers in" not in _text(run_log):
            assert child.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the backtest never started"
            time.sleep(0.05)
        time.sleep(1.0)  # tickers in flight on every worker
        yield child, run_dir
    finally:
        session = [p for p in psutil.process_iter() if _session(p) == child.pid]
        if child.poll() is None:
            child.kill()
        child.wait()
        for straggler in living(session):
            with suppress(psutil.NoSuchProcess):
                straggler.kill()
        log.close()


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def last_history(tmp_path: Path) -> dict:
    lines = (tmp_path / "reports" / "history.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


@pytest.mark.parametrize(
    ("executor", "signum"),
    [("pool", signal.SIGTERM), ("pool", signal.SIGHUP), ("dask", signal.SIGTERM)],
    ids=["pool-sigterm", "pool-sighup", "dask-sigterm"],
)
def test_sigterm_and_sighup_end_a_run_as_ctrl_c_does(
    tmp_path: Path, executor: str, signum: int
) -> None:
    with started_run(tmp_path, executor) as (child, run_dir):
        seen = psutil.Process(child.pid).children(recursive=True)
        assert len(living(seen)) >= 2, "no worker processes under way"
        child.send_signal(signum)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within 30 s of {signal.Signals(signum).name}")
        left = wait_dead(seen, 3.0)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert child.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"pipeline: interrupted by {signal.Signals(signum).name}"
    ), stderr
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    assert not left, [p.cmdline() for p in left]
    history = last_history(tmp_path)
    assert history["exit_code"] == 128 + signum and history["run_id"] == run_dir.name
    assert not (tmp_path / "reports" / "latest").exists()
    assert not (run_dir / "manifest.json").exists()
    with PriceCache(tmp_path / "cache").lock():  # free for the next run at once
        pass


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_a_killed_main_process_leaves_no_worker(tmp_path: Path, executor: str) -> None:
    with started_run(tmp_path, executor) as (child, _):
        seen = psutil.Process(child.pid).children(recursive=True)
        assert len(living(seen)) >= 2, "no worker processes under way"
        child.kill()
        child.wait()
        left = wait_dead(seen, 5.0)
    assert not left, [p.cmdline() for p in left]


def fork_server_of(main: psutil.Process, seconds: float = 60.0) -> psutil.Process:
    """The run's fork server, once it has a worker."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for child in living(main.children()):
            with suppress(psutil.NoSuchProcess):
                command = " ".join(child.cmdline())
                if "multiprocessing.forkserver" in command and living(child.children()):
                    return child
        time.sleep(0.05)
    raise AssertionError("the run never started a fork server with a worker")


def test_a_killed_fork_server_costs_no_ticker(tmp_path: Path) -> None:
    """The first workers are forked from the run itself; killing one makes the pool start its
    replacement through the fork server, which is then killed in turn."""
    with started_run(tmp_path, "pool") as (child, run_dir):
        main = psutil.Process(child.pid)
        forked = [p for p in living(main.children()) if "resource_tracker" not in _cmd(p)]
        assert len(forked) == 2, [_cmd(p) for p in forked]
        forked[0].kill()
        server = fork_server_of(main)
        replacements = living(server.children())
        server.kill()
        try:
            child.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail("the run did not finish after its fork server was killed")
        orphans = wait_dead(replacements, 5.0)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert not orphans, "the fork server's workers outlived it"
    summary = (run_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + N_TICKERS
    assert not [line for line in summary[1:] if ",failed," in line], summary
    execution = json.loads((run_dir / "manifest.json").read_text())["execution"]
    assert execution["fork_server_restarts"] >= 1, execution
    assert "fork server died" in (run_dir / "run.log").read_text()


def _cmd(process: psutil.Process) -> str:
    with suppress(psutil.NoSuchProcess):
        return " ".join(process.cmdline())
    return ""

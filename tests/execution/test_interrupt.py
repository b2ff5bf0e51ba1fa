"""Ctrl-C during a pooled run: workers stopped, no orphan process, exit code 130."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test runs the pipeline in a subprocess


def descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            continue
    return living


def test_ctrl_c_stops_the_workers_and_exits_130(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        "configs/demo.toml",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
        "--set",
        f'data.cache_dir="{(tmp_path / "cache").as_posix()}"',
        "--set",
        "data.synthetic.n_tickers=400",
        "--set",
        "execution.workers=2",
        "--set",
        "execution.chunksize=1",
    ]
    child = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    parent = psutil.Process(child.pid)
    seen: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    # Wait until the backtest runs: two workers exist (forked from the run, or from its fork
    # server).
    while time.monotonic() < deadline and child.poll() is None:
        seen = descendants(parent)
        if len(pool_workers(parent)) >= 2:
            break
        time.sleep(0.1)
    assert child.poll() is None, child.communicate()
    assert len(pool_workers(parent)) >= 2, "the pool never started"
    time.sleep(0.5)
    seen = descendants(parent) or seen

    child.send_signal(signal.SIGINT)
    try:
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr
    # Everything the run started is gone within a few seconds of its exit.
    deadline = time.monotonic() + 5
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(seen), [p.cmdline() for p in alive(seen)]
    assert not (tmp_path / "run" / "manifest.json").exists()


def pool_workers(parent: psutil.Process) -> list[psutil.Process]:
    """The run's workers: its own children forked from it (they share its command line), and
    the fork server's children, if it started one."""
    workers: list[psutil.Process] = []
    for child in alive(parent.children()):
        command = " ".join(child.cmdline())
        if "multiprocessing.forkserver" in command:
            workers.extend(alive(descendants(child)))
        elif "resource_tracker" not in command:
            workers.append(child)
    return workers


def test_a_worker_killed_mid_run_costs_nothing(tmp_path: Path) -> None:
    """SIGKILL a pool worker during `pipeline run`: the run ends by itself, every ticker in."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        "configs/demo.toml",
        "--quiet",
        "--out",
        str(run_dir),
        "--set",
        f'data.cache_dir="{(tmp_path / "cache").as_posix()}"',
        "--set",
        "data.synthetic.n_tickers=40",
        "--set",
        "execution.workers=2",
        "--set",
        "execution.chunksize=1",
    ]
    child = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    parent = psutil.Process(child.pid)
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and child.poll() is None:
        workers = pool_workers(parent)
        if len(workers) >= 2:
            time.sleep(1.0)  # let it get into the run, with tickers in flight
            victim = workers[0]
        time.sleep(0.05)
    assert victim is not None, child.communicate()
    victim.send_signal(signal.SIGKILL)
    try:
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stderr
    summary = (run_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 40
    manifest = (run_dir / "manifest.json").read_text()
    assert '"worker_restarts": 0' not in manifest

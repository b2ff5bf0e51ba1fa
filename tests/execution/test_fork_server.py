"""A pool whose workers all come from the fork server (a process with threads cannot fork
itself safely): the fork server killed mid-run costs no ticker and blames no worker."""

from __future__ import annotations

import threading
import time
from multiprocessing import forkserver

import psutil
import pytest

from pipeline.execution import pool as pool_module
from pipeline.execution.pool import CrashProofPool
from tests.execution.tasks import echo_task
from tests.execution.test_pool import SETTINGS, jobs_for, run_all

pytestmark = pytest.mark.slow


def test_killing_the_fork_server_mid_run_costs_no_ticker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "direct_fork_context", lambda: None)
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=echo_task)
    assert pool.context.get_start_method() == "forkserver"
    killer = threading.Thread(target=kill_fork_server_when_busy, daemon=True)
    killer.start()
    outcome = run_all(pool, jobs_for([f"SLOW{i}" for i in range(16)]))
    killer.join(timeout=30)
    assert outcome == {f"SLOW{i}": ("ok", "") for i in range(16)}
    described = pool.describe()
    assert described["fork_server_restarts"] == 1
    assert described["worker_restarts"] == 0, "healthy workers were blamed for the server"


def kill_fork_server_when_busy() -> None:
    """Once the fork server has two workers, wait a moment (tasks in flight), then kill it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pid = forkserver._forkserver._forkserver_pid
        if pid is not None:
            try:
                server = psutil.Process(pid)
                if len(server.children()) >= 2:
                    time.sleep(0.5)
                    server.kill()
                    return
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)

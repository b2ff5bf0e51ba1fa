"""What the task imports on first use is imported once, before workers are forked, however they
are started: each worker would otherwise pay about a second of imports (arch pulls in
statsmodels and matplotlib) in its warm-up while the first tickers wait."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters, one of which starts a pool

REPO_ROOT = Path(__file__).resolve().parents[2]

POOL_START = """
import json, sys
from datetime import date
from pipeline.config import load_config
from pipeline.execution.pool import CrashProofPool
from pipeline.execution.worker import TASK_LAZY_IMPORTS

data = {"source": "synthetic", "start": date(2015, 1, 1), "end": date(2020, 1, 1)}
settings = load_config({"data": data}).backtest_settings
before = [name for name in TASK_LAZY_IMPORTS if name in sys.modules]
with CrashProofPool(settings, workers=2) as pool:
    after = [name for name in TASK_LAZY_IMPORTS if name in sys.modules]
    method = pool.describe()["start_method"]
print(json.dumps({"before": before, "after": after, "method": method}))
"""

FORK_SERVER_PRELOAD = """
import json, sys
import pipeline.execution.forkserver_setup
from pipeline.execution.worker import TASK_LAZY_IMPORTS
print(json.dumps({"loaded": [name for name in TASK_LAZY_IMPORTS if name in sys.modules]}))
"""


def run_fresh(script: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_the_task_has_lazy_imports_to_preload() -> None:
    from pipeline.execution.worker import TASK_LAZY_IMPORTS

    assert "arch.bootstrap" in TASK_LAZY_IMPORTS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="direct forks on Linux only")
def test_a_pool_that_forks_itself_imports_them_before_it_forks() -> None:
    report = run_fresh(POOL_START)
    assert report["method"] == "fork"
    assert report["before"] == [], "loaded before the pool started: the test proves nothing"
    assert report["after"] == ["arch.bootstrap"]


def test_the_fork_server_imports_them_for_its_workers() -> None:
    assert run_fresh(FORK_SERVER_PRELOAD) == {"loaded": ["arch.bootstrap"]}

"""What a run's main process imports: not arch (its volatility models pull in statsmodels) nor
scipy.stats, about a second of every run's start together. The statistics a run computes in
the main process and in every ticker's task come from numpy and scipy.special."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a fresh interpreter

REPO_ROOT = Path(__file__).resolve().parents[2]



RUN_PATH = """
import json, sys
import numpy as np
import pipeline.cli, pipeline.runner, pipeline.report.build, pipeline.execution.jobs
from pipeline.backtest.metrics import accuracy_p_value
from pipeline.statistics.bootstrap import ticker_intervals, ticker_seed
from pipeline.statistics.sharpe import deflated_sharpe, return_moments

returns = np.random.default_rng(0).normal(0.0005, 0.01, 500)
ticker_intervals(returns, returns > 0, n_samples=50, confidence=0.95, seed=ticker_seed(0, "X"))
deflated_sharpe(return_moments(returns), [0.01, 0.02, 0.03])
accuracy_p_value(260, 500, 0.5)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("arch",
      "statsmodels") or name == "scipy.stats")))
"""


def test_a_run_computes_its_statistics_without_arch_or_scipy_stats() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", RUN_PATH],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert json.loads(finished.stdout.strip().splitlines()[-1]) == []

"""Every executor runs the same `run_job`, so serial, pool and Dask runs agree to the last bit.

Each universe goes through the real pipeline (data stage into a temporary cache, then backtest)
once per executor; summaries and daily frames must be equal exactly, not approximately.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.runner import RunResult
from tests.conftest import synthetic_raw_config

EXECUTORS = ("serial", "pool", "dask")


def synthetic_config(tmp_path: Path) -> dict[str, Any]:
    """Six synthetic tickers, walk-forward with a monthly refit: several refits per ticker."""
    return synthetic_raw_config(
        tmp_path / "cache",
        n_tickers=6,
        n_days=600,
        seed=3,
        backtest={"mode": "walk_forward", "train_days": 250, "retrain_every": 21},
        report={"out_dir": str(tmp_path / "reports")},
    )


def csv_sample_config(tmp_path: Path, sample: Path) -> dict[str, Any]:
    """Four real tickers from the shared sample, in-sample over five years."""
    return {
        "data": {
            "source": "csv",
            "path": str(sample),
            "tickers": ["AAPL", "KO", "XOM", "ADSK"],
            "start": date(2014, 1, 1),
            "end": date(2018, 12, 31),
            "cache_dir": str(tmp_path / "cache"),
        },
        "backtest": {"mode": "in_sample"},
        "report": {"out_dir": str(tmp_path / "reports")},
    }


def run_with(config: dict[str, Any], executor: str) -> RunResult:
    overrides = [f"execution.executor={executor}", "execution.workers=2"]
    return run_backtest(config, overrides)


def assert_runs_equal(reference: RunResult, other: RunResult, executor: str) -> None:
    pd.testing.assert_frame_equal(reference.summary, other.summary, check_exact=True, obj=executor)
    pd.testing.assert_frame_equal(reference.daily, other.daily, check_exact=True, obj=executor)


def assert_all_agree(config: dict[str, Any]) -> dict[str, RunResult]:
    runs = {executor: run_with(config, executor) for executor in EXECUTORS}
    for executor in EXECUTORS:
        assert runs[executor].manifest["execution"]["executor"] == executor
    reference = runs["serial"]
    assert (reference.summary["status"] != "failed").all(), reference.summary[["ticker", "reason"]]
    for executor in EXECUTORS[1:]:
        assert_runs_equal(reference, runs[executor], executor)
    return runs


@pytest.mark.slow
def test_serial_pool_and_dask_agree_on_a_synthetic_walk_forward(tmp_path: Path) -> None:
    runs = assert_all_agree(synthetic_config(tmp_path))
    summary, daily = runs["serial"].summary, runs["serial"].daily
    # Synthetic tickers list on different days: some are too short and skipped, with a reason
    # that must agree as well.
    assert (summary["status"] == "ok").sum() >= 3
    assert daily["ticker"].nunique() == (summary["status"] == "ok").sum()
    # Not a vacuous comparison: positions change and strategy returns are not all zero.
    assert daily["position"].nunique() > 1
    assert daily["strategy_log_return"].abs().sum() > 0
    assert runs["dask"].manifest["execution"]["workers"] == 2


@pytest.mark.slow
def test_serial_pool_and_dask_agree_on_real_prices(tmp_path: Path, sp500_sample: Path) -> None:
    runs = assert_all_agree(csv_sample_config(tmp_path, sp500_sample))
    summary = runs["serial"].summary
    assert summary["ticker"].tolist() == ["AAPL", "KO", "XOM", "ADSK"]
    assert (summary["status"] == "ok").all(), summary[["ticker", "reason"]]
    assert (summary["n_days"] > 1000).all()


def test_a_one_bit_difference_is_caught(tmp_path: Path) -> None:
    """The comparison is exact: nudging one daily return by one ulp fails it."""
    reference = run_with(synthetic_config(tmp_path), "serial")
    nudged_daily = reference.daily.copy()
    column = nudged_daily.columns.get_loc("strategy_log_return")
    nudged_daily.iat[10, column] = math.nextafter(nudged_daily.iat[10, column], math.inf)
    nudged = RunResult(reference.summary, nudged_daily, reference.manifest)
    with pytest.raises(AssertionError, match="strategy_log_return"):
        assert_runs_equal(reference, nudged, "nudged")

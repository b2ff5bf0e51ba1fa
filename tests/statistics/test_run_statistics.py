"""A run's statistics block, its trials file, and the per-ticker baselines and intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.features import build_design
from pipeline.backtest.metrics import sharpe_ratio
from pipeline.backtest.task import backtest_ticker
from pipeline.config import load_config
from pipeline.report.aggregates import portfolio_returns
from pipeline.runner import run_pipeline
from pipeline.statistics.sharpe import deflated_sharpe, probabilistic_sharpe, return_moments
from pipeline.trials import read_trials


def _run(overrides: list[str], run_dir: Path, *extra: str):
    config = load_config("configs/demo.toml", [*overrides, *extra])
    return run_pipeline(config, run_dir, show_progress=False)


@pytest.mark.slow
def test_statistics_recomputed_from_the_run_files(small_run_overrides, tmp_path):
    result = _run(small_run_overrides, tmp_path / "a", "backtest.cost_bps=5")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    stats = manifest["statistics"]
    daily = pd.read_parquet(tmp_path / "a" / "daily.parquet")
    # METHOD.md by hand: mean of simple returns per day, then its log
    simple = np.expm1(daily["strategy_log_return"]).groupby(daily["date"]).mean()
    book = np.log1p(simple).to_numpy()
    assert stats["portfolio_sharpe"] == pytest.approx(sharpe_ratio(book))
    moments = return_moments(book)
    assert stats["psr"] == pytest.approx(probabilistic_sharpe(moments))
    assert stats["n_trials"] == 1 and stats["dsr"] == pytest.approx(stats["psr"])
    assert stats["portfolio_sharpe_lo"] <= stats["portfolio_sharpe"] <= stats["portfolio_sharpe_hi"]
    assert {"portfolio_sharpe_net", "psr_net", "dsr_net", "n_trials_net"} <= set(stats)
    assert result.manifest["statistics"] == stats


@pytest.mark.slow
def test_each_distinct_configuration_is_one_trial(small_run_overrides, tmp_path):
    _run(small_run_overrides, tmp_path / "a")
    _run(small_run_overrides, tmp_path / "b")  # the same configuration again
    third = _run(small_run_overrides, tmp_path / "c", "features.lags=3")
    other_range = _run(small_run_overrides, tmp_path / "d", "data.start=2016-01-01")
    records = read_trials(tmp_path / "reports")
    assert len(records) == 4
    stats = third.manifest["statistics"]
    assert stats["n_trials"] == 2
    assert other_range.manifest["statistics"]["n_trials"] == 1
    sharpes = [r["sr"] for r in records[:1] + records[2:3]]
    daily = third.daily
    book = portfolio_returns(daily)["strategy"].to_numpy()
    assert stats["dsr"] == pytest.approx(deflated_sharpe(return_moments(book), sharpes))


def test_a_run_without_a_directory_records_no_trial(small_run_overrides, tmp_path):
    result = _run(small_run_overrides, None)
    assert result.manifest["statistics"]["n_trials"] == 1
    assert read_trials(tmp_path / "reports") == []


@pytest.mark.slow
def test_summary_intervals_and_baselines(small_run_overrides, tmp_path):
    summary = _run(small_run_overrides, tmp_path / "a").summary
    ok = summary[summary["status"] == "ok"]
    assert len(ok) == 3
    assert (ok["sharpe_lo"] <= ok["sharpe"]).all() and (ok["sharpe"] <= ok["sharpe_hi"]).all()
    assert (ok["accuracy_lo"] <= ok["accuracy"]).all()
    assert (ok["accuracy"] <= ok["accuracy_hi"]).all()
    assert set(ok["best_baseline"]) <= {"long", "majority", "momentum", "reversal"}
    best = ok[["long_sharpe", "majority_sharpe", "momentum_sharpe", "reversal_sharpe"]].max(axis=1)
    assert ok["edge_sharpe"].to_numpy() == pytest.approx((ok["sharpe"] - best).to_numpy())


def test_bootstrap_off_leaves_the_intervals_empty(small_run_overrides, tmp_path):
    summary = _run(small_run_overrides, None, "report.bootstrap_samples=0").summary
    assert summary["sharpe_lo"].isna().all()


def _prices(n: int, seed: int) -> pd.Series:
    steps = np.random.default_rng(seed).normal(0.0003, 0.015, n)
    return pd.Series(100 * np.exp(np.cumsum(steps)), index=pd.bdate_range("2010-01-04", periods=n))


def test_baselines_of_the_task_by_hand():
    """long's Sharpe is buy-and-hold's; momentum's positions are today's sign; the majority
    of an in_sample model is the majority of every row."""
    config = load_config("configs/demo.toml", ["backtest.mode=in_sample"])
    prices = _prices(300, 3)
    result = backtest_ticker("X", prices, config.backtest_settings)
    design = build_design(prices, config.features.lags)
    daily = result.daily
    assert result.metrics["long_sharpe"] == pytest.approx(sharpe_ratio(design.next_returns))
    assert daily["momentum_position"].tolist() == design.features[:, 0].tolist()
    values, counts = np.unique(design.targets, return_counts=True)
    assert set(daily["majority_position"]) == {int(values[np.argmax(counts)])}
    reversal = sharpe_ratio(-design.features[:, 0] * design.next_returns)
    assert result.metrics["reversal_sharpe"] == pytest.approx(reversal)
    assert math.isfinite(result.metrics["sharpe_lo"])


@pytest.mark.slow
def test_an_unwritable_trials_file_warns_and_the_run_goes_on(small_run_overrides, tmp_path, caplog):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "trials.jsonl").mkdir()  # a directory where the file should be: appends fail
    result = _run(small_run_overrides, tmp_path / "a")
    assert result.manifest["statistics"]["n_trials"] == 1
    assert "not recorded as a trial" in caplog.text

"""pipeline sweep: the grid, one executor for every configuration, files as CONTRACT.md."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.data.sources.base import ADJ_CLOSE, INDEX_NAME
from pipeline.errors import ConfigError
from pipeline.execution.jobs import TickerJob, Variant, run_job
from pipeline.report.aggregates import portfolio_returns
from pipeline.runner import run_pipeline
from pipeline.statistics.pbo import probability_of_overfitting
from pipeline.statistics.sharpe import deflated_sharpe, return_moments
from pipeline.statistics.trials import numbers_hash
from pipeline.sweep import feature_groups, grid_points, parse_grid, run_sweep
from pipeline.trials import read_trials

GRID = ["features.lags=[3,6]", "backtest.retrain_every=[21,63]"]


@pytest.fixture
def overrides(small_run_overrides: list[str]) -> list[str]:
    return [*small_run_overrides, "data.synthetic.n_days=900", "report.bootstrap_samples=50"]


@pytest.mark.parametrize(
    ("assignments", "match"),
    [
        pytest.param(["features.lags=3"], "TOML array", id="not-a-list"),
        pytest.param(["features.lags=[]"], "TOML array", id="empty-list"),
        pytest.param(["data.start=[2015-01-01]"], "features, model, backtest", id="data-key"),
        pytest.param(["features.lags=[3]", "features.lags=[4]"], "twice", id="twice"),
        pytest.param([], "at least one", id="none"),
    ],
)
def test_bad_grids_are_config_errors(assignments, match):
    with pytest.raises(ConfigError, match=match):
        parse_grid(assignments)


def test_a_bad_grid_value_fails_before_any_work(overrides):
    with pytest.raises(ConfigError, match="lags"):
        grid_points("configs/demo.toml", overrides, parse_grid(["features.lags=[3,0]"]))


@pytest.mark.slow
def test_sweep_files_and_figures(overrides, tmp_path):
    points = grid_points("configs/demo.toml", overrides, parse_grid(GRID))
    assert [dict(p.values) for p in points] == [
        {"features.lags": 3, "backtest.retrain_every": 21},
        {"features.lags": 3, "backtest.retrain_every": 63},
        {"features.lags": 6, "backtest.retrain_every": 21},
        {"features.lags": 6, "backtest.retrain_every": 63},
    ]
    outcome = run_sweep(points, tmp_path / "sweep", n_blocks=8, show_progress=False)
    out = tmp_path / "sweep"
    table = pd.read_csv(out / "sweep.csv")
    for column in ["config_hash", "features.lags", "backtest.retrain_every", "ok", "failed",
                   "sharpe", "psr", "dsr"]:  # fmt: skip
        assert column in table.columns
    assert list(table["config_hash"]) == [numbers_hash(p.config) for p in points]
    assert (table["ok"] == 3).all() and (table["failed"] == 0).all()
    portfolios = pd.read_parquet(out / "portfolios.parquet")
    assert list(portfolios.columns) == list(table["config_hash"])
    assert portfolios.index.name == "date"
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["n_configs"] == 4 and summary["s_blocks"] == 8
    assert summary["grid"]["features.lags"] == [3, 3, 6, 6]
    # PBO recomputed independently from portfolios.parquet
    recomputed = probability_of_overfitting(portfolios.dropna().to_numpy(), 8).pbo
    assert summary["pbo"] == pytest.approx(recomputed)
    # DSR over the trials recorded: the four configurations of the sweep
    trials = read_trials(tmp_path / "reports")
    assert len(trials) == 4 and {t["kind"] for t in trials} == {"sweep"}
    sharpes = [t["sr"] for t in trials]
    for name, dsr in zip(table["config_hash"], table["dsr"], strict=True):
        moments = return_moments(portfolios[name].dropna().to_numpy())
        assert dsr == pytest.approx(deflated_sharpe(moments, sharpes))
    assert (table["n_trials"] == 4).all()
    html = (out / "report.html").read_text()
    assert "ranked by deflated Sharpe ratio" in html and "data:image/png;base64," in html
    assert outcome.exit_code == 0


@pytest.mark.slow
def test_each_configuration_equals_its_own_run(overrides, tmp_path):
    """Every job runs with its own configuration's settings, not the executor's, and the
    configurations sharing one design matrix per ticker (same lags) give what a run of each
    alone gives: the portfolio's returns equal, bit for bit, and its statistics."""
    grid = ["features.lags=[3,6]", "backtest.retrain_every=[21,63]"]
    points = grid_points("configs/demo.toml", overrides, parse_grid(grid))
    assert feature_groups(points) == [[0, 1], [2, 3]]  # two configurations per design matrix
    outcome = run_sweep(points, tmp_path / "sweep", n_blocks=8, show_progress=False)
    columns = []
    for point in points:
        alone = run_pipeline(point.config, None, show_progress=False)
        expected = portfolio_returns(alone.daily)["strategy"]
        got = outcome.portfolios[point.config_hash].dropna()
        assert got.rename(None).equals(expected.rename(None))
        row = outcome.table.set_index("config_hash").loc[point.config_hash]
        assert row["sharpe"] == alone.manifest["statistics"]["portfolio_sharpe"]
        assert row["ok"] == (alone.summary["status"] == "ok").sum()
        columns.append(got.to_numpy())
    for first, second in [(0, 1), (0, 2), (2, 3)]:  # the grid did change the numbers
        assert not np.array_equal(columns[first], columns[second])


@pytest.fixture
def cached_prices(tmp_path):
    """One ticker's cache file: 700 business days of a random walk."""
    rng = np.random.default_rng(8)
    dates = pd.bdate_range("2016-01-01", periods=700, name=INDEX_NAME)
    prices = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.012, len(dates))))
    path = tmp_path / "XYZ.parquet"
    pd.DataFrame({ADJ_CLOSE: prices}, index=dates).reset_index().to_parquet(path)
    return path, dates[0].date(), dates[-1].date()


def test_a_job_with_variants_equals_one_job_per_configuration(overrides, cached_prices):
    """One task running several configurations on a ticker (sharing its cleaned prices and
    each design matrix) gives every configuration's result exactly as a job of its own does:
    daily frames equal, metrics, signal and fingerprint equal; the order is the job's."""
    path, start, end = cached_prices
    changes = [["backtest.retrain_every=21"], ["backtest.retrain_every=63"], ["features.lags=3"],
               ["model.params.C=4.0"], ["backtest.cost_bps=0"]]  # fmt: skip
    settings = [load_config("configs/demo.toml", [*overrides, *c]).backtest_settings
                for c in changes]  # fmt: skip
    job = TickerJob("XYZ", path, start, end, settings=settings[0],
                    variants=tuple(Variant(s) for s in settings[1:]))  # fmt: skip
    grouped = run_job(job, settings[0])
    together = [grouped, *grouped.variants]
    assert len(together) == len(settings)
    for result, own in zip(together, settings, strict=True):
        alone = run_job(TickerJob("XYZ", path, start, end), own)
        assert result.status == alone.status == "ok"
        assert result.daily.equals(alone.daily)
        assert pd.Series(result.metrics).equals(pd.Series(alone.metrics))
        assert result.signal == alone.signal and result.fingerprint == alone.fingerprint
    assert all(variant.variants == () for variant in grouped.variants)
    assert not together[0].daily.equals(together[1].daily)


@pytest.mark.slow
def test_cli_sweep(overrides, tmp_path):
    args = ["sweep", "configs/demo.toml", "--grid", "features.lags=[3,6]",
            "--out", str(tmp_path / "s")]  # fmt: skip
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "PBO" in result.stdout and (tmp_path / "s" / "sweep.csv").is_file()
    bad = CliRunner().invoke(app, ["sweep", "configs/demo.toml", "--grid", "data.end=[1]"])
    assert bad.exit_code == 2
    assert "features, model, backtest" in bad.stderr


def test_a_job_that_failed_as_a_whole_fails_its_ticker_in_every_configuration():
    from pipeline.backtest.result import TickerResult
    from pipeline.sweep import ungrouped_results

    ok = TickerResult("A", "ok", variants=(TickerResult("A", "skipped", "short"),))
    crashed = TickerResult("B", "failed", "RuntimeError: boom")  # the task raised: no variants
    per_point = ungrouped_results([ok, crashed], [[0, 2]], 3)
    assert [r.status for r in per_point[0]] == ["ok", "failed"]
    assert [r.status for r in per_point[2]] == ["skipped", "failed"]
    assert per_point[2][1].reason == "RuntimeError: boom" and per_point[1] == []
    assert all(r.variants == () for r in per_point[0])

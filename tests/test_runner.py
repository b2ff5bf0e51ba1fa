"""The wired pipeline through its Python entry point, as a notebook uses it."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.backtest.result import BASELINE_DAILY_COLUMNS, DAILY_COLUMNS, SUMMARY_COLUMNS
from pipeline.config import load_config
from tests.conftest import REPO_ROOT, synthetic_raw_config


def synthetic_config(
    tmp_path: Path, n_tickers: int = 4, n_days: int = 700, seed: int = 3, **backtest: object
) -> dict:
    return synthetic_raw_config(
        tmp_path / "cache",
        n_tickers=n_tickers,
        n_days=n_days,
        seed=seed,
        start=date(2019, 1, 1),
        backtest={"mode": "walk_forward", "train_days": 200, **backtest},
        execution={"executor": "serial"},
    )


@pytest.mark.slow
def test_notebook_entry_returns_frames_and_manifest(tmp_path: Path) -> None:
    result = run_backtest(synthetic_config(tmp_path))
    assert list(result.summary.columns) == list(SUMMARY_COLUMNS)
    assert result.summary["ticker"].tolist() == ["SYN000", "SYN001", "SYN002", "SYN003"]
    assert list(result.daily.columns) == ["ticker", *DAILY_COLUMNS, *BASELINE_DAILY_COLUMNS]
    for key in ("config", "config_hash", "versions", "started_at", "finished_at", "timings"):
        assert key in result.manifest
    assert set(result.manifest["timings"]) == {"download", "backtest", "report"}
    # The run's wall time covers every stage; the download and the backtest overlap.
    assert result.seconds is not None
    assert result.seconds >= max(result.manifest["timings"].values())
    assert result.run_dir is None and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_daily_rows_add_up_to_the_summary(tmp_path: Path) -> None:
    result = run_backtest(synthetic_config(tmp_path, cost_bps=0.0))
    ok = result.summary[result.summary["status"] == "ok"]
    assert len(ok) >= 2
    assert set(result.daily["ticker"]) == set(ok["ticker"])
    for row in ok.itertuples():
        days = result.daily[result.daily["ticker"] == row.ticker]
        assert len(days) == row.n_days
        assert days["date"].is_monotonic_increasing
        assert days["strategy_log_return"].sum() == pytest.approx(math.log(row.cum_return))
        assert days["asset_log_return"].sum() == pytest.approx(math.log(row.buy_hold))


@pytest.mark.slow
@pytest.mark.parametrize("form", ["dict", "config", "file"], ids=str)
def test_every_config_form_gives_the_same_run(tmp_path: Path, form: str) -> None:
    raw = synthetic_config(tmp_path)
    reference = run_backtest(raw).summary
    if form == "dict":
        argument: object = raw
    elif form == "config":
        argument = load_config(raw)
    else:
        toml = tmp_path / "run.toml"
        toml.write_text(
            f"""[data]
source = "synthetic"
start = 2019-01-01
end = 2021-12-31
cache_dir = "{(tmp_path / "cache").as_posix()}"
[data.synthetic]
n_tickers = 4
n_days = 700
seed = 3
[backtest]
train_days = 200
[execution]
executor = "serial"
"""
        )
        argument = toml
    pd.testing.assert_frame_equal(run_backtest(argument).summary, reference)


def test_overrides_apply_in_the_notebook_entry(tmp_path: Path) -> None:
    result = run_backtest(synthetic_config(tmp_path), ["backtest.mode=in_sample"])
    assert set(result.summary["mode"]) == {"in_sample"}
    assert result.manifest["config"]["backtest"]["mode"] == "in_sample"


@pytest.mark.slow
def test_pool_workers_return_their_results(tmp_path: Path) -> None:
    """The article's bug 3: workers wrote into a global dict, so the parent saw nothing."""
    raw = synthetic_config(tmp_path)
    raw["execution"] = {"executor": "pool", "workers": 2, "chunksize": 1}
    pooled = run_backtest(raw)
    serial = run_backtest(synthetic_config(tmp_path))
    assert pooled.summary["status"].eq("ok").sum() >= 3
    pd.testing.assert_frame_equal(pooled.summary, serial.summary)
    pd.testing.assert_frame_equal(pooled.daily, serial.daily)
    assert pooled.manifest["execution"]["executor"] == "pool"


def test_exact_ticker_selection_through_the_whole_run(tmp_path: Path) -> None:
    """The article's bug 2: ticker 'A' matched 'AAPL' and 'AAL' by regular expression."""
    prices = tmp_path / "prices"
    prices.mkdir()
    days = pd.bdate_range("2015-01-01", periods=300)
    for ticker, drift in [("A", 1.001), ("AAPL", 0.999), ("AAL", 1.0005)]:
        noise = pd.Series(range(300)).mod(7).sub(3).mul(0.004)
        close = 50 * (drift + noise).cumprod()
        pd.DataFrame({"timestamp": days, "adjusted_close": close.to_numpy()}).to_csv(
            prices / f"{ticker}.csv", index=False
        )
    raw = {
        "data": {
            "source": "csv",
            "path": str(prices),
            "tickers": ["A"],
            "start": date(2015, 1, 1),
            "end": date(2016, 12, 31),
            "cache_dir": str(tmp_path / "cache"),
        },
        "backtest": {"mode": "in_sample"},
        "execution": {"executor": "serial"},
    }
    alone = run_backtest(raw)
    together = run_backtest(raw, ['data.tickers=["AAL","A","AAPL"]'])
    assert alone.summary["ticker"].tolist() == ["A"]
    a_row = together.summary.set_index("ticker").loc["A"]
    assert a_row["buy_hold"] == alone.summary.loc[0, "buy_hold"]
    buy_holds = together.summary["buy_hold"]
    assert buy_holds.nunique() == 3


@pytest.mark.slow
def test_shipped_demo_config_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    result = run_backtest(
        "configs/demo.toml",
        [
            f'data.cache_dir="{(tmp_path / "cache").as_posix()}"',
            "data.synthetic.n_tickers=2",
            "execution.executor=serial",
        ],
    )
    assert result.summary["status"].eq("ok").all()
    assert result.failed_tickers == []


def _small_config(tmp_path: Path) -> dict:
    return synthetic_config(tmp_path, n_tickers=2, n_days=320, seed=5, mode="in_sample")


def test_the_notebook_entry_claims_its_run_dir_as_pipeline_run_does(tmp_path: Path) -> None:
    """An existing run is not overwritten file by file: refused, or with force replaced whole
    once the new run has written its results; other files are never replaced."""
    from pipeline.errors import OutPathError

    run_dir = tmp_path / "run"
    first = run_backtest(_small_config(tmp_path), run_dir=run_dir)
    assert (run_dir / "manifest.json").is_file() and first.run_dir == run_dir
    stray = run_dir / "notes-of-mine.txt"
    stray.write_text("an analyst's notes")

    with pytest.raises(OutPathError, match=r"already exists .* force=True"):
        run_backtest(_small_config(tmp_path), run_dir=run_dir)
    assert stray.read_text() == "an analyst's notes"

    second = run_backtest(_small_config(tmp_path), run_dir=run_dir, force=True)
    assert second.manifest["config_hash"] == first.manifest["config_hash"]
    assert (run_dir / "manifest.json").is_file() and not stray.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []

    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(OutPathError, match="not a run's"):
        run_backtest(_small_config(tmp_path), run_dir=other, force=True)
    assert (other / "thesis.tex").read_text() == "keep me"


def test_a_failed_notebook_run_gives_back_the_run_it_was_to_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import runner

    run_dir = tmp_path / "run"
    run_backtest(_small_config(tmp_path), run_dir=run_dir)
    before = sorted(p.name for p in run_dir.iterdir())

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the machine fell over")

    monkeypatch.setattr(runner, "run_pipeline", broken)
    with pytest.raises(RuntimeError, match="fell over"):
        run_backtest(_small_config(tmp_path), run_dir=run_dir, force=True)
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize("fork", [True, False], ids=["charts-forked", "charts-here"])
def test_the_run_draws_the_reports_that_pipeline_report_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    """Whether the charts were drawn in a child process or here, the run's report files are
    byte for byte those `pipeline report` draws from its directory."""
    from pipeline.execution import forked
    from pipeline.report.build import build_report

    monkeypatch.setattr(forked, "fork_is_safe", lambda: fork)
    run_dir = tmp_path / "run"
    run_backtest(synthetic_config(tmp_path), run_dir=run_dir)
    drawn = {path.name: path.read_bytes() for path in sorted(run_dir.glob("*.png"))}
    pages = {name: (run_dir / name).read_bytes() for name in ("report.html", "report.md")}
    assert len(drawn) >= 5
    rebuilt = build_report(run_dir)
    assert {path.name: path.read_bytes() for path in rebuilt if path.suffix == ".png"} == drawn
    assert {name: (run_dir / name).read_bytes() for name in pages} == pages

"""Nightly runs end to end: a run as of a later day reuses the stored results and equals a
`--full` run bit for bit; signals.csv, the manifest's reuse and signals blocks; every executor
reuses the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.backtest.incremental import REASON_FULL, REASON_RESTATED
from tests.backtest.reference import reference_signal

TICKERS = ["AAA", "BBB", "CCC"]
DAYS = pd.bdate_range("2020-01-01", periods=420)


def write_universe(directory: Path, restate: dict[str, int] | None = None) -> None:
    """One CSV per ticker: a random walk over DAYS; `restate` nudges one day of a ticker."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, ticker in enumerate(TICKERS):
        steps = np.random.default_rng(number).normal(0.0, 0.012, len(DAYS))
        prices = 40.0 * np.exp(np.cumsum(steps))
        if restate and ticker in restate:
            prices[restate[ticker]] *= 1.0001
        frame = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "adj_close": prices})
        frame.to_csv(directory / f"{ticker}.csv", index=False)


def config(tmp_path: Path, end: date, executor: str = "serial") -> dict:
    return {
        "data": {
            "source": "csv",
            "path": (tmp_path / "prices").as_posix(),
            "tickers": TICKERS,
            "start": date(2020, 1, 1),
            "end": end,
            "cache_dir": (tmp_path / "cache").as_posix(),
        },
        "backtest": {"mode": "walk_forward", "train_days": 120, "retrain_every": 21},
        "execution": {"executor": executor, "workers": 2},
        "report": {"out_dir": (tmp_path / "reports").as_posix()},
    }


def day(index: int) -> date:
    return DAYS[index].date()


def assert_same_run(got, expected) -> None:
    assert got.summary.equals(expected.summary)
    assert got.daily.equals(expected.daily)
    assert got.signals.equals(expected.signals)


@pytest.mark.slow
def test_a_later_run_reuses_the_store_and_equals_a_full_run(tmp_path: Path) -> None:
    write_universe(tmp_path / "prices")
    first = run_backtest(config(tmp_path, day(380)))
    assert first.manifest["reuse"]["tickers_reused"] == 0
    assert first.manifest["reuse"]["reasons"] == {"no stored result for these settings": 3}
    one_day = run_backtest(config(tmp_path, day(381)))
    reuse = one_day.manifest["reuse"]
    # The new day stays in each ticker's last block: its stored pattern table predicts it.
    assert reuse["tickers_reused"] == 3 and reuse["refits_computed"] == 0
    assert reuse["rows_reused"] + reuse["rows_computed"] == len(one_day.daily)
    assert_same_run(one_day, run_backtest(config(tmp_path, day(381)), full=True))
    month = run_backtest(config(tmp_path, day(403)))
    assert month.manifest["reuse"]["tickers_reused"] == 3
    assert month.manifest["reuse"]["rows_computed"] == 3 * 21
    full = run_backtest(config(tmp_path, day(403)), full=True)
    assert full.manifest["reuse"]["reasons"] == {"--full: the store is ignored": 3}
    assert_same_run(month, full)


@pytest.mark.slow
def test_a_restated_ticker_is_computed_in_full_and_the_others_reused(tmp_path: Path) -> None:
    write_universe(tmp_path / "prices")
    run_backtest(config(tmp_path, day(380)))
    # Within the cache's overlap: the cache refetches BBB, the store sees its history changed.
    write_universe(tmp_path / "prices", restate={"BBB": 378})
    later = run_backtest(config(tmp_path, day(390)))
    assert later.manifest["reuse"]["tickers_reused"] == 2
    assert later.manifest["reuse"]["reasons"] == {REASON_RESTATED: 1}
    assert_same_run(later, run_backtest(config(tmp_path, day(390)), full=True))


@pytest.mark.slow
def test_signals_csv_and_the_manifest_say_what_to_hold_next_session(tmp_path: Path) -> None:
    write_universe(tmp_path / "prices")
    result = run_backtest(config(tmp_path, day(400)), run_dir=tmp_path / "run")
    on_disk = pd.read_csv(tmp_path / "run" / "signals.csv")
    assert on_disk["ticker"].tolist() == TICKERS
    assert on_disk["position"].tolist() == result.signals["position"].tolist()
    assert (on_disk["as_of"] == day(400).isoformat()).all()
    parquet = pd.read_parquet(tmp_path / "run" / "signals.parquet")
    assert parquet.equals(result.signals)
    counts = result.manifest["signals"]
    sides = {-1: "short", 0: "flat", 1: "long"}
    for side in sides.values():
        assert counts[side] == sum(sides[p] == side for p in on_disk["position"])
    frames = {t: pd.read_csv(tmp_path / "prices" / f"{t}.csv") for t in TICKERS}
    for ticker, frame in frames.items():
        prices = pd.Series(
            frame["adj_close"].to_numpy(), index=pd.DatetimeIndex(frame["date"])
        ).loc[: str(day(400))]
        expected = reference_signal(prices, 6, "walk_forward", train_days=120, retrain_every=21)
        got = result.signals.set_index("ticker").loc[ticker]
        # The fast path at the default tolerance agrees with the plain fit on these rows.
        assert got["position"] == expected["position"], ticker


def test_a_stale_ticker_is_flagged(tmp_path: Path) -> None:
    write_universe(tmp_path / "prices")
    short = pd.read_csv(tmp_path / "prices" / "CCC.csv").iloc[:395]
    short.to_csv(tmp_path / "prices" / "CCC.csv", index=False)
    result = run_backtest(config(tmp_path, day(400)))
    stale = result.signals.set_index("ticker")["stale"]
    assert stale.to_dict() == {"AAA": False, "BBB": False, "CCC": True}
    assert result.manifest["signals"]["stale"] == ["CCC"]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_every_executor_reuses_the_store_the_same_way(tmp_path: Path, executor: str) -> None:
    write_universe(tmp_path / "prices")
    run_backtest(config(tmp_path, day(380), executor))
    later = run_backtest(config(tmp_path, day(392), executor))
    assert later.manifest["reuse"]["tickers_reused"] == 3
    serial = run_backtest(config(tmp_path, day(392)), full=True)
    assert_same_run(later, serial)


@pytest.mark.slow
def test_pipeline_run_prints_the_counts_and_full_ignores_the_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app
    from tests.test_cli import csv_config, write_csv_prices

    for seed, ticker in enumerate(["KO", "XOM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    config = str(csv_config(tmp_path, ["KO", "XOM"]))
    runner = CliRunner()
    first = runner.invoke(app, ["run", config, "--quiet", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    signals = pd.read_csv(tmp_path / "a" / "signals.csv")
    sides = signals["side"].value_counts()
    last_line = first.stdout.strip().splitlines()[-2]  # the report's path comes last
    assert last_line == (
        f"next session (as of {signals['as_of'].max()}): {sides.get('long', 0)} long, "
        f"{sides.get('flat', 0)} flat, {sides.get('short', 0)} short"
    )
    again = runner.invoke(app, ["run", config, "--quiet", "--out", str(tmp_path / "b")])
    reuse = json.loads((tmp_path / "b" / "manifest.json").read_text())["reuse"]
    assert again.exit_code == 0 and reuse["tickers_reused"] == 2 and not reuse["full"]
    full = runner.invoke(app, ["run", config, "--quiet", "--full", "--out", str(tmp_path / "c")])
    reuse = json.loads((tmp_path / "c" / "manifest.json").read_text())["reuse"]
    assert full.exit_code == 0 and reuse["tickers_reused"] == 0 and reuse["full"]
    assert reuse["rows_reused"] == 0 and reuse["reasons"] == {REASON_FULL: 2}
    for name in ("summary.parquet", "daily.parquet", "signals.parquet"):
        assert pd.read_parquet(tmp_path / "b" / name).equals(pd.read_parquet(tmp_path / "c" / name))


STAGGERED = [f"N{i:02d}" for i in range(12)]


def write_staggered_universe(directory: Path) -> None:
    """Twelve tickers whose histories start a day apart: ten days on, about half of them cross
    a refit and the others do not."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, ticker in enumerate(STAGGERED):
        steps = np.random.default_rng(100 + number).normal(0.0, 0.012, len(DAYS))
        frame = pd.DataFrame(
            {"date": DAYS.strftime("%Y-%m-%d"), "adj_close": 40.0 * np.exp(np.cumsum(steps))}
        )
        frame.iloc[number:].to_csv(directory / f"{ticker}.csv", index=False)


def processes_importing(module: str, importtime_log: str) -> int:
    """How many processes imported `module`, from the log of PYTHONPROFILEIMPORTTIME."""
    return sum(line.rsplit("|", 1)[-1].strip() == module for line in importtime_log.splitlines())


@pytest.mark.slow
def test_a_nightly_run_fits_its_few_refits_in_one_worker(tmp_path: Path) -> None:
    """The pool passes the tickers that refit to one worker, so one process, not each worker,
    imports scikit-learn; the run still equals a full serial run."""
    write_staggered_universe(tmp_path / "prices")
    config = tmp_path / "nightly.toml"
    tickers = ", ".join(f'"{ticker}"' for ticker in STAGGERED)
    config.write_text(
        f"""
[data]
source = "csv"
path = "{(tmp_path / "prices").as_posix()}"
tickers = [{tickers}]
start = 2020-01-01
end = {day(380).isoformat()}
cache_dir = "{(tmp_path / "cache").as_posix()}"

[backtest]
mode = "walk_forward"
train_days = 120
retrain_every = 21

[execution]
executor = "pool"
workers = 2

[report]
out_dir = "{(tmp_path / "reports").as_posix()}"
"""
    )
    command = [sys.executable, "-m", "pipeline", "run", str(config), "--quiet"]
    subprocess.run([*command, "--out", str(tmp_path / "a")], check=True, capture_output=True)
    later = subprocess.run(
        [*command, "--out", str(tmp_path / "b"), "--as-of", day(390).isoformat()],
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    reuse = json.loads((tmp_path / "b" / "manifest.json").read_text())["reuse"]
    assert reuse["tickers_reused"] == len(STAGGERED)
    assert reuse["refits_computed"] >= 4
    assert processes_importing("sklearn.base", later.stderr) == 1
    serial = [*command, "--out", str(tmp_path / "c"), "--as-of", day(390).isoformat(), "--full"]
    subprocess.run(
        [*serial, "--set", 'execution.executor="serial"'], check=True, capture_output=True
    )
    for name in ("summary.parquet", "daily.parquet", "signals.parquet"):
        assert pd.read_parquet(tmp_path / "b" / name).equals(pd.read_parquet(tmp_path / "c" / name))

"""What a scheduled job relies on: run logs, JSON logs, --as-of, the history index, latest,
and one writer per cache."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.data.cache import PriceCache
from pipeline.history import read_history
from tests.test_cli import csv_config, write_csv_prices

runner = CliRunner()


@pytest.fixture
def csv_setup(tmp_path: Path) -> str:
    for seed, ticker in enumerate(["KO", "XOM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    return str(csv_config(tmp_path, ["KO", "XOM"]))


def run(*args: str) -> object:
    return runner.invoke(app, ["run", *args])


@pytest.mark.slow
def test_every_run_writes_its_log_and_a_history_line(tmp_path: Path, csv_setup: str) -> None:
    result = run(csv_setup, "--quiet")
    assert result.exit_code == 0, result.output
    reports = tmp_path / "reports"
    run_dir = (reports / "latest").resolve()
    log = (run_dir / "run.log").read_text()
    assert "download: 2 tickers" in log and "INFO" in log
    (entry,) = read_history(reports)
    assert entry["run_id"] == run_dir.name
    assert entry["exit_code"] == 0
    assert entry["counts"] == {"ok": 2, "skipped": 0, "failed": 0}
    assert entry["as_of"] == "2016-12-31"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert entry["config_hash"] == manifest["config_hash"]


@pytest.mark.slow
def test_json_logs_are_one_object_a_line(tmp_path: Path, csv_setup: str) -> None:
    result = run(csv_setup, "--log-format", "json", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "r" / "run.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and {"time", "level", "logger", "message"} <= set(records[0])
    stderr_records = [json.loads(line) for line in result.stderr.splitlines() if line]
    assert any(r["logger"].startswith("pipeline") for r in stderr_records)


@pytest.mark.slow
def test_as_of_is_the_end_date_and_reruns_reproduce(tmp_path: Path, csv_setup: str) -> None:
    first = run(csv_setup, "--as-of", "2016-06-30", "--out", str(tmp_path / "a"), "--quiet")
    again = run(csv_setup, "--as-of", "2016-06-30", "--out", str(tmp_path / "b"), "--quiet")
    assert first.exit_code == again.exit_code == 0, first.output + again.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["config"]["data"]["end"] == "2016-06-30"
    assert manifest["cache"] == {"hits": 2, "fetched": 0, "refreshed": 0}
    daily = pd.read_parquet(tmp_path / "b" / "daily.parquet")
    assert daily["date"].max() <= pd.Timestamp("2016-06-30")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "summary.parquet"),
        pd.read_parquet(tmp_path / "b" / "summary.parquet"),
    )


def test_a_bad_as_of_is_a_config_error(csv_setup: str) -> None:
    result = run(csv_setup, "--as-of", "yesterday")
    assert result.exit_code == 2
    # the message names the option the user typed and the format it needs
    assert "--as-of 'yesterday'" in result.stderr
    assert "YYYY-MM-DD" in result.stderr


@pytest.mark.slow
def test_a_locked_cache_exits_4_fast_leaves_latest_and_no_run_dir(
    tmp_path: Path, csv_setup: str
) -> None:
    assert run(csv_setup, "--quiet").exit_code == 0
    reports = tmp_path / "reports"
    before = (reports / "latest").resolve()
    with PriceCache(tmp_path / "cache").lock():
        started = time.monotonic()
        result = run(csv_setup, "--quiet")
        elapsed = time.monotonic() - started
    assert result.exit_code == 4
    assert elapsed < 10
    assert "pid" in result.stderr and "started" in result.stderr
    assert (reports / "latest").resolve() == before
    run_dirs = [p for p in reports.iterdir() if p.is_dir() and p.name != "latest"]
    assert len(run_dirs) == 1, "the refused run left a directory behind"
    assert [entry["exit_code"] for entry in read_history(reports)] == [0, 4]


@pytest.mark.slow
def test_wait_takes_the_lock_once_the_holder_lets_go(tmp_path: Path, csv_setup: str) -> None:
    cache = PriceCache(tmp_path / "cache")
    held = threading.Event()

    def hold_briefly() -> None:
        with cache.lock():
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    held.wait(5)
    result = run(csv_setup, "--quiet", "--wait", "20", "--out", str(tmp_path / "r"))
    holder.join()
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_run_with_a_failed_ticker_is_recorded_with_exit_3(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    config = str(csv_config(tmp_path, ["KO", "GONE"]))
    result = run(config, "--quiet")
    assert result.exit_code == 3
    (entry,) = read_history(tmp_path / "reports")
    assert entry["exit_code"] == 3
    assert entry["counts"]["failed"] == 1

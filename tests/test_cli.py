"""The command line as users and schedulers see it: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.data.cache import PriceCache
from tests.conftest import REPO_ROOT

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def write_csv_prices(directory: Path, ticker: str, days: int = 320, seed: int = 0) -> None:
    rng = pd.Series(range(days), dtype=float)
    prices = 100 * (1.0 + 0.01 * ((rng * (7 + seed)) % 13 - 6) / 6).cumprod()
    frame = pd.DataFrame(
        {"timestamp": pd.bdate_range("2015-01-01", periods=days), "adjusted_close": prices}
    )
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{ticker}.csv", index=False)


def csv_config(tmp_path: Path, tickers: list[str]) -> Path:
    config = tmp_path / "csv.toml"
    config.write_text(
        f"""
[data]
source = "csv"
path = "{(tmp_path / "prices").as_posix()}"
tickers = {json.dumps(tickers)}
start = 2015-01-01
end = 2016-12-31
cache_dir = "{(tmp_path / "cache").as_posix()}"

[backtest]
mode = "in_sample"

[execution]
executor = "serial"

[report]
out_dir = "{(tmp_path / "reports").as_posix()}"
"""
    )
    return config


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "download", "validate", "report", "compare", "tune", "bench"):
        assert command in result.output


def test_validate_prints_the_resolved_config() -> None:
    result = runner.invoke(app, ["validate", "configs/demo.toml", "--set", "features.lags=4"])
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert resolved["features"]["lags"] == 4
    assert resolved["data"]["download"]["threads"] == 8
    assert "config ok: 20 tickers" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "data.colour=red"], "data.colour: unknown key"),
        (["--set", "features.lags=zero"], "features.lags: "),
        (["--set", "data.source=csv"], "data.path: source 'csv' needs"),
        (
            ["--set", "data.source=csv", "--set", "data.path=no/such/dir"],
            "data.path: 'no/such/dir' does not exist",
        ),
        (
            ["--set", "data.source=csv", "--set", "data.path=configs/demo.toml"],
            "data.path: 'configs/demo.toml' is not a directory",
        ),
        (["--set", 'data.tickers=["../../etc/passwd"]'], "'../../etc/passwd' is not a valid"),
        (["--set", "data.start=2030-01-01", "--set", "data.end=2020-01-01"], "data.start: "),
        (["--set", "nonsense"], "expected section.key=value"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "csv-no-path",
        "csv-path-missing",
        "csv-path-a-file",
        "traversal",
        "start-after-end",
        "bad-set",
    ],
)
@pytest.mark.parametrize("command", ["validate", "run", "download"])
def test_bad_config_exits_2_with_one_line(command: str, extra: list[str], message: str) -> None:
    result = runner.invoke(app, [command, "configs/demo.toml", *extra])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("source", ["synthetic", "csv", "yfinance"])
@pytest.mark.parametrize("listing", ["", "\n  \n", "# no symbols yet\n\n   # none\n"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_empty_tickers_file_exits_2_for_every_source(
    tmp_path: Path, command: str, source: str, listing: str
) -> None:
    tickers = tmp_path / "tickers.txt"
    tickers.write_text(listing)
    (tmp_path / "prices").mkdir()
    overrides = [
        f"data.source={source}",
        f"data.path={(tmp_path / 'prices').as_posix()}",
        f"data.tickers_file={tickers.as_posix()}",
        f"report.out_dir={(tmp_path / 'reports').as_posix()}",
        f"data.cache_dir={(tmp_path / 'cache').as_posix()}",
    ]
    result = runner.invoke(app, [command, "configs/demo.toml", *_sets(overrides)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lists no symbols" in lines[0], result.stderr
    assert "data.tickers_file" in lines[0]
    assert not (tmp_path / "reports").exists()


def _sets(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


def test_missing_config_file_exits_2() -> None:
    result = runner.invoke(app, ["validate", "configs/no-such.toml"])
    assert result.exit_code == 2
    assert "configs/no-such.toml' does not exist" in result.stderr


@pytest.mark.slow
def test_run_writes_a_run_directory_and_points_latest(small_run_overrides: list[str]) -> None:
    sets = [part for item in small_run_overrides for part in ("--set", item)]
    args = ["run", *sets, "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out_dir = Path(small_run_overrides[1].split("=", 1)[1].strip('"'))
    latest = out_dir / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert f"report: {out_dir / run_dir.name}" in result.stdout
    summary = pd.read_csv(run_dir / "summary.csv", keep_default_na=False)
    assert summary["ticker"].tolist() == ["SYN000", "SYN001", "SYN002"]
    assert set(summary["status"]) == {"ok"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"ok": 3, "skipped": 0, "failed": 0}
    assert manifest["cache"] == {"hits": 0, "fetched": 3, "refreshed": 0}
    assert run_dir.name.endswith(manifest["config_hash"][:8])


@pytest.mark.slow
def test_a_ticker_without_data_exits_3_and_is_named(tmp_path: Path) -> None:
    for seed, ticker in enumerate(["KO", "XOM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    out = tmp_path / "run"
    config = csv_config(tmp_path, ["KO", "MISSING", "XOM"])
    result = runner.invoke(app, ["run", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 3, result.output
    assert "failed tickers: MISSING" in result.stderr
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert summary["ticker"].tolist() == ["KO", "MISSING", "XOM"]
    assert summary["status"].tolist() == ["ok", "failed", "ok"]
    assert "no file MISSING.csv" in summary.loc[1, "reason"]
    assert not (tmp_path / "reports" / "latest").exists(), "--out runs leave latest alone"


def test_download_then_warm_download_reports_only_hits(tmp_path: Path) -> None:
    for seed, ticker in enumerate(["KO", "XOM", "IBM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    config = str(csv_config(tmp_path, ["KO", "XOM", "IBM"]))
    first = runner.invoke(app, ["download", config, "--quiet"])
    assert first.exit_code == 0, first.output
    assert "0 hits, 3 fetched, 0 refreshed, 0 skipped, 0 failed" in first.stdout
    second = runner.invoke(app, ["download", config, "--quiet"])
    assert second.exit_code == 0, second.output
    assert "3 hits, 0 fetched, 0 refreshed, 0 skipped, 0 failed" in second.stdout
    assert second.stdout.count(" hit ") == 3


def test_a_held_cache_lock_exits_4_naming_the_holder(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    config = str(csv_config(tmp_path, ["KO"]))
    with PriceCache(tmp_path / "cache").lock():
        result = runner.invoke(app, ["run", config, "--quiet", "--out", str(tmp_path / "r")])
    assert result.exit_code == 4
    assert "holds the lock on cache" in result.stderr
    assert "pid" in result.stderr


@pytest.mark.slow
def test_in_sample_runs_say_they_are_not_a_forecast(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    config = str(csv_config(tmp_path, ["KO"]))
    result = runner.invoke(app, ["run", config, "--quiet", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "in-sample: describes the past, not a forecast" in result.stdout


@pytest.mark.slow
def test_report_rebuilds_from_the_run_directory_alone(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    config = str(csv_config(tmp_path, ["KO"]))
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["run", config, "--quiet", "--out", str(run_dir)]).exit_code == 0
    html = (run_dir / "report.html").read_text()
    for name in ("report.html", "report.md"):
        (run_dir / name).unlink()
    for cached in (tmp_path / "cache").rglob("*.parquet"):
        cached.unlink()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert str(run_dir / "report.html") in result.stdout
    assert (run_dir / "report.html").read_text() == html
    assert (run_dir / "report.md").stat().st_size > 0


def test_report_of_a_directory_without_results_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "summary.parquet" in result.stderr


def test_compare_with_a_directory_without_results_exits_2_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "manifest.json" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_compare_names_what_changed(tmp_path: Path) -> None:
    for seed, ticker in enumerate(["KO", "XOM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    config = str(csv_config(tmp_path, ["KO"]))
    first, second = tmp_path / "a", tmp_path / "b"
    runner.invoke(app, ["run", config, "--quiet", "--out", str(first)])
    runner.invoke(
        app,
        ["run", config, "--quiet", "--out", str(second), "--set", 'data.tickers=["KO","XOM"]'],
    )
    result = runner.invoke(app, ["compare", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert "XOM" in result.stdout
    assert "data.tickers" in result.stdout


def two_ticker_pool_config(tmp_path: Path) -> str:
    for seed, ticker in enumerate(["KO", "XOM"]):
        write_csv_prices(tmp_path / "prices", ticker, seed=seed)
    config = csv_config(tmp_path, ["KO", "XOM"])
    config.write_text(config.read_text().replace('"serial"', '"pool"\nworkers = 2'))
    return str(config)


@pytest.mark.slow
def test_tune_prints_the_sweep_and_a_recommendation(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tune", two_ticker_pool_config(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "<- best" in result.stdout
    assert "auto chose chunksize" in result.stdout
    assert "recommended: --set execution.workers=" in result.stdout
    assert "2 tickers, in_sample" in result.stdout


@pytest.mark.slow
def test_bench_prints_every_variant_and_writes_json_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = runner.invoke(
        app, ["bench", two_ticker_pool_config(tmp_path), "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    for label in ("sequential", "Process per ticker", "Pool.map", "ProcessPoolExecutor"):
        assert sum(row.startswith(f"{label} ") for row in rows) == 2, label  # one row per fit
    assert "results identical across variants: yes" in result.stdout
    figures = json.loads((out / "bench.json").read_text())
    assert {row["fit"] for row in figures["rows"]} == {"plain", "fast"}
    assert (out / "bench.png").stat().st_size > 0


def test_bench_without_any_prices_exits_1_with_one_line(tmp_path: Path) -> None:
    config = csv_config(tmp_path, ["KO"])
    (tmp_path / "prices").mkdir()
    result = runner.invoke(app, ["bench", str(config), "--quiet", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "no ticker's prices could be loaded" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_an_unreachable_dask_scheduler_exits_1_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.execution import dask_executor
    from tests.execution.test_dask import free_port

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_SECONDS", 0.5)
    write_csv_prices(tmp_path / "prices", "KO")
    address = f"tcp://127.0.0.1:{free_port()}"
    sets = ["--set", "execution.executor=dask", "--set", f'execution.dask_address="{address}"']
    config = str(csv_config(tmp_path, ["KO"]))
    result = runner.invoke(app, ["run", config, "--quiet", "--out", str(tmp_path / "r"), *sets])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot reach the Dask scheduler at execution.dask_address='{address}'" in lines[0]
    history = (tmp_path / "reports" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["exit_code"] == 1

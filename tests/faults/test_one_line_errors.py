"""Faults a user or the machine causes are one line on stderr with the contract's exit code, never
a traceback: a read-only cache root, a full disk under the run directory, a read-only history,
deeply nested TOML, numbers that are not finite, days pandas cannot hold, CSV dates past 2262."""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel
from typer.testing import Result

import pipeline.data.cache as cache_module
import pipeline.jsonlines as jsonlines_module
import pipeline.safe_io as safe_io
from pipeline.config import Config, build_config
from pipeline.errors import ConfigError
from tests.faults.conftest import (
    BASE_CONFIG,
    base_settings,
    csv_settings,
    invoke,
    temp_files,
    write_prices,
)

TICKERS = ["SYN000", "SYN001"]
EXIT_USAGE, EXIT_FAILURE = 2, 1


def small(tmp_path: Path, **extra: object) -> dict[str, object]:
    settings = {
        "data.tickers": TICKERS,
        "data.synthetic.n_days": 300,
        "data.start": "2012-01-02",
        "data.end": "2013-12-31",
        "report.bootstrap_samples": 0,
        **extra,
    }
    return base_settings(tmp_path, settings)


def one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output[-2000:]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pipeline: ")
    return lines[0]


def history(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "reports" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def running_as_root(directory: Path) -> bool:
    """Whether chmod stops this user: root writes through a mode of 0555."""
    probe = directory / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return False
    probe.unlink()
    return True


# --- a read-only cache root -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "download"])
def test_a_read_only_cache_root_is_one_line(tmp_path: Path, command: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        if running_as_root(cache):
            pytest.skip("root writes through a mode of 0555; the injected errno test covers it")
        line = one_line(invoke(command, small(tmp_path), "--quiet"), EXIT_FAILURE)
    finally:
        cache.chmod(0o755)
    assert f"cannot lock the cache {cache}" in line and "data.cache_dir" in line


@pytest.mark.parametrize("command", ["run", "download"])
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC])
def test_a_refused_lock_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, command: str
) -> None:
    """The errno injected where the lock is opened, so that it is tested as root too."""
    real_open_file = cache_module.open_file

    def refusing(dir_fd: int, name: str, *args: Any, **kwargs: Any) -> int:
        if name == cache_module.LOCK_FILE:
            raise OSError(code, os.strerror(code), name)
        return real_open_file(dir_fd, name, *args, **kwargs)

    monkeypatch.setattr(cache_module, "open_file", refusing)
    line = one_line(invoke(command, small(tmp_path), "--quiet"), EXIT_FAILURE)
    assert os.strerror(code) in line and "data.cache_dir" in line
    if command == "run":
        assert history(tmp_path)[-1]["exit_code"] == EXIT_FAILURE


# --- a full disk under the run directory ----------------------------------------------------


@pytest.fixture
def full_disk_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of run-directory files whose atomic write fails with ENOSPC half-way through."""
    failing: list[str] = []
    real_atomic_write = safe_io.atomic_write

    def atomic_write(path: Path, write: Any, *, within: Path | None = None) -> Path:
        if Path(path).name not in failing:
            return real_atomic_write(path, write, within=within)

        def partial(handle: Any) -> None:
            handle.write(b"PAR1" + bytes(1024))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real_atomic_write(path, partial, within=within)

    monkeypatch.setattr(safe_io, "atomic_write", atomic_write)
    import pipeline.outputs as outputs

    monkeypatch.setattr(outputs, "atomic_write", atomic_write)
    yield failing


@pytest.mark.parametrize(
    "name",
    [
        "summary.csv",
        "summary.parquet",
        "daily.parquet",
        "manifest.json",
        pytest.param("report.html", marks=pytest.mark.slow),  # draws the charts first
    ],
)
def test_a_full_disk_for_the_run_directory_is_one_line(
    tmp_path: Path, full_disk_for: list[str], name: str
) -> None:
    full_disk_for.append(name)
    run_dir = tmp_path / "run"
    line = one_line(invoke("run", small(tmp_path), "--quiet", "--out", str(run_dir)), EXIT_FAILURE)
    assert "No space left on device (ENOSPC)" in line
    assert not (run_dir / name).exists(), "no half-written file in its place"
    assert temp_files(run_dir) == [], "no temporary file left behind"
    assert history(tmp_path)[-1]["exit_code"] == EXIT_FAILURE


def test_a_full_disk_in_the_table_writer_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC raised by pandas' Parquet writer itself, after part of the file is written."""
    real_to_parquet = pd.DataFrame.to_parquet

    def to_parquet(frame: pd.DataFrame, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        if hasattr(path, "write") and "status" in frame.columns:
            path.write(b"PAR1")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_to_parquet(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    run_dir = tmp_path / "run"
    line = one_line(invoke("run", small(tmp_path), "--quiet", "--out", str(run_dir)), EXIT_FAILURE)
    assert line == (
        f"pipeline: cannot write {run_dir / 'summary.parquet'}: No space left on device (ENOSPC)"
    )
    assert temp_files(run_dir) == []


# --- a read-only history --------------------------------------------------------------------


@pytest.mark.slow
def test_a_read_only_history_costs_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open_file = jsonlines_module.open_file

    def refusing(dir_fd: int, name: str, *args: Any, **kwargs: Any) -> int:
        if name == "history.jsonl":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return real_open_file(dir_fd, name, *args, **kwargs)

    monkeypatch.setattr(jsonlines_module, "open_file", refusing)
    # dates the synthetic tickers traded in: a run with a ticker ok, which moves latest
    dates = {"data.start": "2021-01-04", "data.end": "2021-12-31"}
    result = invoke("run", small(tmp_path, **dates), "--quiet")
    line = one_line(result, 0)
    assert line.startswith("pipeline: warning: this run is not in the history")
    assert "Permission denied" in line
    assert (tmp_path / "reports" / "latest" / "manifest.json").is_file(), "the run stands"


def test_a_read_only_history_file_costs_one_warning(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    history_file = reports / "history.jsonl"
    history_file.write_text("")
    history_file.chmod(0o444)
    if running_as_root(reports) and os.access(history_file, os.W_OK):
        pytest.skip("root writes a file of mode 0444; the injected errno test covers it")
    line = one_line(invoke("run", small(tmp_path), "--quiet"), 0)
    assert "not in the history" in line


# --- config values: nesting, finite numbers, days pandas holds ------------------------------


@pytest.mark.parametrize("depth", [600, 5_000, 100_000])
@pytest.mark.parametrize("shape", ["arrays", "tables"])
def test_deeply_nested_toml_is_one_line(tmp_path: Path, depth: int, shape: str) -> None:
    value = "[" * depth + "]" * depth if shape == "arrays" else "{a=" * depth + "1" + "}" * depth
    config = tmp_path / "deep.toml"
    config.write_text(f'[data]\nsource = "synthetic"\nstart = 2012-01-02\nx = {value}\n')
    line = one_line(invoke_validate(config), EXIT_USAGE)
    assert "nests" in line and "deep.toml" in line
    override = invoke_validate(BASE_CONFIG, "--set", f"model.params={{a={value}}}")
    assert "nests" in one_line(override, EXIT_USAGE)


def invoke_validate(config: Path, *extra: str) -> Result:
    from typer.testing import CliRunner

    from pipeline.cli import app

    return CliRunner().invoke(app, ["validate", str(config), *extra])


def float_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted config key that takes a float."""
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += float_keys(annotation, f"{prefix}{name}.")
        elif annotation is float or "float" in str(annotation):
            keys.append(f"{prefix}{name}")
    return keys


def test_the_float_keys_are_found() -> None:
    keys = float_keys()
    assert {"backtest.cost_bps", "data.download.timeout_seconds"} <= set(keys)
    assert "execution.task_timeout_seconds" in keys


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
@pytest.mark.parametrize("key", float_keys())
def test_every_float_key_must_be_finite(key: str, value: str) -> None:
    raw = {"data": {"source": "synthetic", "start": "2012-01-02"}}
    with pytest.raises(ConfigError) as caught:
        build_config(raw, [f"{key}={value}"])
    message = str(caught.value)
    assert message.startswith(f"{key}:"), message
    assert "\n" not in message


def test_cost_bps_inf_is_a_config_error_not_a_failed_run(tmp_path: Path) -> None:
    result = invoke("run", small(tmp_path, **{"backtest.cost_bps": math.inf}), "--quiet")
    line = one_line(result, EXIT_USAGE)
    assert "backtest.cost_bps" in line and "finite" in line
    assert not (tmp_path / "reports").exists(), "refused before any run directory is made"


@pytest.mark.parametrize(
    ("key", "day"),
    [
        ("data.start", "0001-01-01"),
        ("data.end", "9999-12-31"),
        ("data.start", "1677-09-21"),
        ("data.end", "2262-04-12"),
    ],
)
def test_days_outside_what_pandas_holds_name_the_key(key: str, day: str) -> None:
    raw = {"data": {"source": "synthetic", "start": "1980-01-02", "end": "2000-01-03"}}
    with pytest.raises(ConfigError) as caught:
        build_config(raw, [f"{key}={day}"])
    assert str(caught.value).startswith(f"{key}: {day} is outside")


def test_the_last_days_pandas_holds_are_accepted() -> None:
    raw = {"data": {"source": "synthetic", "start": "1677-09-22", "end": "2262-04-11"}}
    config = build_config(raw)
    assert pd.Timestamp(config.data.start) <= pd.Timestamp(config.data.end)


def test_as_of_past_2262_is_one_line(tmp_path: Path) -> None:
    line = one_line(invoke("run", small(tmp_path), "--quiet", "--as-of", "9999-12-31"), 2)
    assert "data.end: 9999-12-31" in line


@pytest.mark.slow  # a whole run and its report, over a second
def test_csv_dates_past_2262_fail_the_ticker_with_a_reason(tmp_path: Path) -> None:
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2019-01-02", periods=300)]
    write_prices(tmp_path / "prices", "KO")
    write_prices(tmp_path / "prices", "XOM", dates=[*days[:-1], "2300-01-05"])
    result = invoke("run", csv_settings(tmp_path, ["KO", "XOM"]), "--quiet")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    summary = pd.read_parquet(tmp_path / "reports" / "latest" / "summary.parquet")
    row = summary.set_index("ticker").loc["XOM"]
    assert row["status"] == "failed" and row["reason"], row
    assert summary.set_index("ticker").loc["KO", "status"] == "ok"

"""Messages that say what to do: each user mistake gets one line that names the fix."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import config_warnings, load_config, parse_override
from pipeline.data.sources.csv_source import CsvSource
from pipeline.errors import ConfigError, DataError
from tests.conftest import REPO_ROOT, synthetic_raw_config

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def one_error_line(args: list[str]) -> str:
    """Run the CLI, require exit 2 with exactly one line on stderr, return that line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("value", "listed"),
    [("KO", '["KO"]'), ("KO,XOM", '["KO","XOM"]'), ("KO XOM", '["KO","XOM"]')],
    ids=["one-word", "commas", "spaces"],
)
@pytest.mark.parametrize("command", ["validate", "run", "download"])
def test_a_bare_word_where_a_list_is_needed_shows_the_list(
    command: str, value: str, listed: str
) -> None:
    line = one_error_line([command, "configs/demo.toml", "--set", f"data.tickers={value}"])
    assert line == (
        f"pipeline: config error: data.tickers: needs a list, got {value!r}; "
        f"use a TOML list: --set 'data.tickers={listed}'"
    )


def test_a_bare_word_in_a_config_file_hints_the_toml_line(tmp_path: Path) -> None:
    raw = {"data": {"source": "yfinance", "tickers": "KO", "start": date(2020, 1, 1)}}
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert str(caught.value) == (
        "data.tickers: needs a list, got 'KO'; use a TOML list: tickers = [\"KO\"]"
    )


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            'data.tickers=["KO",]x',
            '--set data.tickers=["KO",]x: the value is not valid TOML at character 8 '
            "(Expected newline or end of document after a statement)",
        ),
        (
            "data.tickers=[KO,XOM]",
            "--set data.tickers=[KO,XOM]: the value is not valid TOML at character 2 "
            "(Invalid value); quote the strings and the whole assignment: "
            '--set \'data.tickers=["KO","XOM"]\'',
        ),
        (
            'data.path="unclosed',
            '--set data.path="unclosed: the value is not valid TOML at its end '
            "(Unterminated string)",
        ),
    ],
    ids=["trailing-garbage", "shell-ate-the-quotes", "unterminated-string"],
)
def test_broken_toml_in_set_is_a_parse_error_naming_the_position(
    assignment: str, message: str
) -> None:
    line = one_error_line(["validate", "configs/demo.toml", "--set", assignment])
    assert line == f"pipeline: config error: {message}"


@pytest.mark.slow
@given(st.sampled_from("[{\"'"), st.text(max_size=12))
def test_a_value_opening_toml_syntax_is_never_silently_a_string(opener: str, rest: str) -> None:
    """Class of fault: a broken list/table/string must not slip through as a bare word."""
    text = (opener + rest).strip()
    try:
        _, value = parse_override(f"data.tickers={text}")
    except ConfigError as exc:
        assert str(exc).startswith("--set data.tickers=")
        assert "not valid TOML" in str(exc) or "expected section.key=value" in str(exc)
    else:
        import tomllib

        assert value == tomllib.loads(f"value = {text}")["value"]


@pytest.mark.parametrize("day", ["yesterday", "2024-02-30", "28/03/2024"], ids=str)
def test_a_bad_as_of_names_as_of(day: str, tmp_path: Path) -> None:
    line = one_error_line(
        ["run", "configs/demo.toml", "--as-of", day, "--set", f'report.out_dir="{tmp_path}"']
    )
    assert line == (
        f"pipeline: --as-of {day!r}: expected a day as YYYY-MM-DD, e.g. --as-of 2024-03-28"
    )
    assert list(tmp_path.iterdir()) == [], "a refused run writes nothing"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "model.kindd=svc",
            "model.kindd: unknown key; did you mean 'kind'? (valid keys: kind, params, fast_path)",
        ),
        (
            "modle.kind=svc",
            "modle: unknown key; did you mean 'model'? "
            "(valid keys: data, features, model, backtest, execution, report)",
        ),
        (
            "data.synthetic.n_ticker=3",
            "data.synthetic.n_ticker: unknown key; did you mean 'n_tickers'? "
            "(valid keys: n_tickers, n_days, seed)",
        ),
        (
            "data.synthetic.colour=3",
            "data.synthetic.colour: unknown key (valid keys: n_tickers, n_days, seed)",
        ),
    ],
    ids=["misspelt-key", "misspelt-section", "nested", "nothing-close"],
)
def test_unknown_keys_suggest_the_closest_valid_one(assignment: str, message: str) -> None:
    line = one_error_line(["validate", "configs/demo.toml", "--set", assignment])
    assert line == f"pipeline: config error: {message}"


def test_a_missing_lowercase_symbol_points_at_the_uppercase_file(tmp_path: Path) -> None:
    (tmp_path / "KO.csv").write_text("date,adj_close\n2020-01-02,1.0\n")
    (tmp_path / "brk.b.parquet").write_bytes(b"")
    source = CsvSource(tmp_path)
    with pytest.raises(DataError) as caught:
        source.file_of("ko")
    assert str(caught.value) == (
        f"no file ko.csv or ko.parquet in {tmp_path.resolve()}; "
        "KO.csv is there: list the ticker as 'KO'"
    )
    with pytest.raises(DataError, match=r"brk\.b\.parquet is there: list the ticker as 'brk\.b'"):
        source.file_of("BRK.B")
    with pytest.raises(DataError) as missing:
        source.file_of("XOM")
    assert "is there" not in str(missing.value), "no hint when no other case exists"


def test_a_duplicate_in_a_tickers_file_names_the_file_and_lines(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\n# energy\nXOM\n\nIBM  # tech\nKO # again\n")
    line = one_error_line(
        ["validate", "configs/demo.toml", "--set", f'data.tickers_file="{listing}"']
    )
    assert line == (
        f"pipeline: config error: data.tickers_file: 'KO' is listed twice in {str(listing)!r}, "
        "on lines 1 and 6; keep one"
    )


def test_an_end_date_in_the_future_is_a_warning_not_an_error(tmp_path: Path) -> None:
    ahead = date.today() + timedelta(days=30)
    result = runner.invoke(app, ["validate", "configs/demo.toml", "--set", f"data.end={ahead}"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"pipeline: warning: data.end {ahead} is in the future (today is {date.today()}): "
        "prices end at the last session the source has"
    ]


def test_the_run_logs_the_future_end_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.data.cache import PriceCache
    from pipeline.runner import run_data_stage

    raw = synthetic_raw_config(tmp_path, n_tickers=1, n_days=60, end=date.today() + timedelta(1))
    config = load_config(raw)
    with caplog.at_level(logging.WARNING):
        run_data_stage(config, PriceCache(tmp_path / "cache"), show_progress=False)
    assert any("is in the future" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(("offset", "warned"), [(-1, False), (0, False), (1, True)])
def test_only_an_end_after_today_warns(offset: int, warned: bool, tmp_path: Path) -> None:
    today = date(2026, 6, 1)
    config = load_config(
        synthetic_raw_config(tmp_path, n_tickers=1, n_days=60, end=today + timedelta(offset))
    )
    assert bool(config_warnings(config, today=today)) is warned


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"pipeline {version('pipeline')}\n"


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("run", "pipeline run [OPTIONS] [CONFIG]"),
        ("download", "pipeline download [OPTIONS] CONFIG"),
        ("validate", "pipeline validate [OPTIONS] CONFIG"),
        ("report", "pipeline report [OPTIONS] RUN_DIR"),
        ("compare", "pipeline compare [OPTIONS] RUN_A RUN_B"),
        ("tune", "pipeline tune [OPTIONS] [CONFIG]"),
        ("bench", "pipeline bench [OPTIONS] [CONFIG]"),
    ],
)
def test_help_names_arguments_as_the_readme_does(command: str, usage: str) -> None:
    result = runner.invoke(app, [command, "--help"], prog_name="pipeline")
    assert result.exit_code == 0
    assert f"Usage: {usage}\n" in result.stdout
    assert "{" not in result.stdout.splitlines()[0]

"""Text from files reaches the terminal without the escape sequences and control characters it
may carry (a tampered run directory must not set the terminal's title), and a config error
quotes a huge value by its prefix."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.backtest.result import TickerResult
from pipeline.cli import app
from pipeline.display import error_line, printable, short_repr
from pipeline.logs import make_formatter
from pipeline.terminal import results_table
from tests.report.conftest import OK_ROWS, daily_frame, ok_result, write_run

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = {
    "osc-title-bel": "\x1b]0;pwned\x07",
    "osc-title-st": "\x1b]2;pwned\x1b\\",
    "osc-unterminated": "\x1b]0;pwned\n",
    "osc-8bit": "\x9d0;pwned\x9c",
    "hyperlink": "\x1b]8;;http://x.invalid\x1b\\link\x1b]8;;\x1b\\",
    "csi-colour": "\x1b[31;1m",
    "csi-clear": "\x1b[2J\x1b[H",
    "csi-8bit": "\x9b31m",
    "csi-private": "\x1b[?1049h",
    "dcs": "\x1bPq#0;2;0;0;0\x1b\\",
    "reset": "\x1bc",
    "charset": "\x1b(0",
    "bell": "\x07",
    "carriage-return": "\rOVERWRITTEN",
    "backspace": "\x08\x08\x08",
    "nul-del": "\x00\x7f",
    "c1": "\x85\x8d\x8e\x8f",
    "bidi-override": "\u202eevil\u202c",
    "bidi-isolate": "\u2067x\u2069",
    "line-separator": "\u2028\u2029",
    "lone-esc": "\x1b\n",
}


def assert_inert(text: str) -> None:
    """Nothing a terminal obeys: no control character but newline, no bidi control."""
    bad = [c for c in text if (unicodedata.category(c) == "Cc" and c != "\n") or c in BIDI]
    assert not bad, f"{bad!r} left in {text!r}"


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_printable_removes_every_kind_of_control(payload: str) -> None:
    shown = printable(f"KO{payload}XOM")
    assert_inert(shown)
    assert shown.startswith("KO") and shown.endswith("XOM")
    assert "pwned" not in shown, "a control string's payload goes with it"


@given(st.text())
def test_printable_output_is_always_inert_and_stable(text: str) -> None:
    shown = printable(text)
    assert_inert(shown)
    assert printable(shown) == shown
    assert "\n" not in printable(text, newlines=False)


@given(st.text(st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp", "Cs"))))
def test_printable_text_is_left_as_it_is(text: str) -> None:
    assert printable(text) == text


def test_markup_is_printed_literally(tmp_path: Path) -> None:
    assert printable("[red]x[/red] [bold]") == "[red]x[/red] [bold]"


def hostile_runs(root: Path) -> tuple[Path, Path]:
    """Run A, and run B with tickers, a reason, a warning and config values carrying escape
    sequences and rich markup (what a tampered run directory holds)."""
    evil = "\x1b]0;pwned\x07\x1b[2J\u202e"
    daily = daily_frame(0, [1, 1, 1], [0.01, 0.01, 0.01])
    run_a = write_run(
        root / "a",
        [ok_result("AAA", OK_ROWS["AAA"], daily), ok_result("BBB", OK_ROWS["BBB"], daily)],
    )
    run_b = write_run(
        root / "b",
        [
            ok_result("AAA", {**OK_ROWS["AAA"], "accuracy": 0.7}, daily),
            TickerResult("BBB", "failed", f"boom{evil}\rfake reason"),
            ok_result(f"[red]x{evil}", OK_ROWS["CCC"], daily),
        ],
        warnings={"AAA": [f"jump{evil}"]},
    )
    manifest_path = run_b / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["execution"]["dask_address"] = f"tcp://{evil}host:1"
    manifest["config"]["data"]["cache_dir"] = f"\x9b31m{evil}"
    manifest["fingerprints"] = {"AAA": {"sha256": evil, "rows": 3}}
    manifest_path.write_text(json.dumps(manifest))
    return run_a, run_b


def test_compare_of_a_tampered_run_prints_no_escape(tmp_path: Path) -> None:
    run_a, run_b = hostile_runs(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(run_a), str(run_b)])
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "\x1b" not in result.output and "\x9b" not in result.output
    assert "[red]x" in result.stdout, "markup is shown as the text it is"
    assert "fake reason" in result.stdout and "BBB" in result.stdout


@pytest.mark.slow  # a whole run and its report, over a second
def test_report_of_a_tampered_run_prints_no_escape(tmp_path: Path) -> None:
    _, run_b = hostile_runs(tmp_path)
    result = CliRunner().invoke(app, ["report", str(run_b)])
    assert result.exit_code == 0, result.output
    assert_inert(result.output)


def test_the_ticker_table_prints_no_escape() -> None:
    summary = pd.DataFrame(
        [{"ticker": "\x1b]0;t\x07KO", "status": "failed", "reason": "x\x1b[2J\ry\u202e"}]
    )
    table = results_table(summary, cost_bps=0.0)
    assert_inert(table)
    assert "KO" in table and "x" in table


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_carry_no_escape(log_format: str) -> None:
    record = logging.LogRecord(
        "pipeline", logging.WARNING, __file__, 1, "%s: %s", ("\x1b]0;t\x07KO", "a\rb\x9b2J"), None
    )
    assert_inert(make_formatter(log_format).format(record))  # type: ignore[arg-type]


HUGE = 10_000_000  # the size that was echoed in full
LARGE = 1_000_000  # as telling for each other key, and a tenth of the parse time


@pytest.mark.parametrize(
    "toml",
    [
        'source = "{huge}"\nstart = 2012-01-02',
        'source = "synthetic"\nstart = 2012-01-02\ntickers = ["{huge}"]',
        'source = "synthetic"\nstart = 2012-01-02\ntickers_file = "{huge}"',
        'source = "synthetic"\nstart = "{huge}"',
        'source = "synthetic"\nstart = 2012-01-02\n{huge} = 1',
        'source = "synthetic"\nstart = 2012-01-02\n[model]\nkind = "{huge}"',
        'source = "synthetic"\nstart = 2012-01-02\n[execution]\nworkers = "{huge}"',
        'source = "synthetic"\nstart = 2012-01-02\n[backtest]\ncost_bps = "{words}"',
    ],
    ids=["source", "ticker", "tickers-file", "start", "key", "model", "workers", "words"],
)
@pytest.mark.slow
def test_a_huge_value_gives_a_short_config_error(tmp_path: Path, toml: str) -> None:
    config = tmp_path / "huge.toml"
    size = HUGE if toml.startswith('source = "{huge}"') else LARGE
    text = "[data]\n" + toml.format(huge="A" * size, words="word " * (size // 5))
    config.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pipeline: config error:"), lines[0][:300]
    assert len(lines[0]) < 600, lines[0][:700]
    assert "AAAA" in lines[0] or "word" in lines[0], "the value is quoted by its prefix"


def test_an_override_with_a_huge_value_gives_a_short_line() -> None:
    result = CliRunner().invoke(
        app, ["validate", "configs/demo.toml", "--set", "backtest.mode=" + "x" * HUGE]
    )
    assert result.exit_code == 2
    assert len(result.stderr) < 600 and "backtest.mode" in result.stderr


def test_error_lines_are_short_and_inert() -> None:
    line = error_line("cannot read '" + "\x1b[31m" * 1000 + "A" * HUGE + "'\nsecond line")
    assert_inert(line)
    assert "\n" not in line and len(line) < 1100
    assert short_repr("B" * HUGE).startswith("'BBB") and len(short_repr("B" * HUGE)) < 100

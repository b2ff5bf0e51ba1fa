"""What `pipeline run` prints: net before gross, '-' for missing figures, reasons cut to the
width, and the headline as the last lines (all of it with --quiet but the table)."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.backtest.result import SUMMARY_COLUMNS
from pipeline.cli import app
from pipeline.terminal import MIN_REASON_WIDTH, cut, fmt, headline, results_table
from tests.conftest import REPO_ROOT
from tests.test_cli import csv_config, write_csv_prices

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def summary_of(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    frame["n_days"] = frame["n_days"].astype("Int64")
    return frame


OK_ROW = {
    "ticker": "KO",
    "status": "ok",
    "reason": "",
    "n_days": 800,
    "accuracy": 0.52,
    "cum_return": 1.9,
    "cum_return_net": 0.4,
    "buy_hold": 1.2,
    "sharpe": 0.5,
}
FAILED_ROW = {
    "ticker": "BAD",
    "status": "failed",
    "n_days": pd.NA,
    "accuracy": math.nan,
    "reason": "download: " + "a very long provider message with\nnewlines and detail " * 8,
}


def test_net_comes_before_gross_when_costs_were_charged() -> None:
    header = results_table(summary_of([OK_ROW]), cost_bps=5.0).splitlines()[0].split()
    assert header.index("net") < header.index("gross") < header.index("buy_hold")
    row = results_table(summary_of([OK_ROW]), cost_bps=5.0).splitlines()[1].split()
    assert row[header.index("net")] == "0.4000" and row[header.index("gross")] == "1.9000"
    plain = results_table(summary_of([OK_ROW]), cost_bps=0.0).splitlines()[0].split()
    assert "net" not in plain and "gross" not in plain and "cum_return" in plain


@pytest.mark.parametrize("width", [60, 100, 140])
def test_missing_figures_print_as_a_dash_and_reasons_fit_the_width(width: int) -> None:
    table = results_table(summary_of([OK_ROW, FAILED_ROW]), cost_bps=5.0, width=width)
    failed = table.splitlines()[2]
    for spelling in ("nan", "NaN", "<NA>", "None"):
        assert spelling not in table
    assert failed.split()[2:8] == ["-"] * 6
    assert failed.endswith("...") and "\n" not in failed.removesuffix("\n")
    fixed = len(table.splitlines()[1])  # the ok row: everything but a reason
    assert len(failed) <= max(width, fixed + 2 + MIN_REASON_WIDTH)


@pytest.mark.parametrize(
    "value",
    [None, math.nan, float("nan"), pd.NA, "", "  "],
    ids=["None", "nan", "float-nan", "NA", "empty", "blank"],
)
def test_every_missing_value_is_one_dash(value: object) -> None:
    assert fmt(value, "ratio") == "-"
    assert fmt(value, "int") == "-"


def test_cut_keeps_one_line_within_the_width() -> None:
    assert cut("a\nb\tc", 10) == "a b c"
    assert cut("x" * 100, 20) == "x" * 17 + "..."
    assert len(cut("word " * 50, 33)) <= 33


def test_a_run_with_nothing_ok_shows_dashes_not_neutral_figures() -> None:
    manifest = {
        "counts": {"ok": 0, "skipped": 0, "failed": 2},
        "config": {"backtest": {"mode": "walk_forward"}},
        "timings": {"download": 0.1},
        "aggregates": {
            "distributions": {"accuracy": {"median": None}},
            "portfolio_strategy": {"n_days": 0, "cum_return": 1.0, "max_drawdown": 0.0},
            "portfolio_strategy_net": {"n_days": 0, "cum_return": 1.0, "max_drawdown": 0.0},
            "portfolio_buy_hold": {"n_days": 0, "cum_return": 1.0, "max_drawdown": 0.0},
            "cost_bps": 5.0,
        },
    }
    lines = headline(summary_of([FAILED_ROW, {**FAILED_ROW, "ticker": "B2"}]), manifest, None)
    text = "\n".join(lines)
    assert "accuracy: - (no ticker ok)" in lines and "portfolio: - (no ticker ok)" in lines
    for neutral in ("1.000x", "0.0%", "0.00"):
        assert neutral not in text


def run_args(overrides: list[str], *extra: str) -> list[str]:
    sets = [part for item in overrides for part in ("--set", item)]
    return ["run", *sets, *extra]


@pytest.mark.slow
def test_the_last_lines_are_the_headline_in_order(small_run_overrides: list[str]) -> None:
    result = runner.invoke(app, run_args([*small_run_overrides, "backtest.cost_bps=5"]))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    run_dir = Path(lines[-1].removeprefix("report: ")).parent
    manifest = json.loads((run_dir / "manifest.json").read_text())
    aggregates = manifest["aggregates"]
    verdict = ((manifest.get("statistics") or {}).get("verdict") or {}).get("headline")
    if verdict:  # the statistics' verdict follows the portfolio line
        assert lines[lines.index(verdict) - 1].startswith("portfolio net of 5 bps:")
        lines.remove(verdict)
    net, gross = aggregates["portfolio_strategy_net"], aggregates["portfolio_strategy"]
    hold = aggregates["portfolio_buy_hold"]
    median = aggregates["distributions"]["accuracy"]["median"]
    assert lines[-6].startswith("3 ok, 0 skipped, 0 failed; mode walk_forward")
    assert lines[-5].startswith(f"accuracy: median {median:.3f} against a majority rate of ")
    assert lines[-4] == (
        f"portfolio net of 5 bps: {net['cum_return']:.3f}x (gross {gross['cum_return']:.3f}x) "
        f"vs buy-and-hold {hold['cum_return']:.3f}x; max drawdown {net['max_drawdown']:.1%} "
        f"(gross {gross['max_drawdown']:.1%})"
    )
    # 400 days less 150 that only train: under a year of evaluation days each, named.
    assert lines[-3] == (
        "3 ticker(s) with fewer than 252 evaluation days (noisy figures): SYN000, SYN001, SYN002"
    )
    assert lines[-2].startswith("next session (as of ")
    assert lines[-1] == f"report: {run_dir / 'report.html'}"
    assert "net" in lines[0].split() and "ticker" in lines[0].split()


@pytest.mark.slow
def test_quiet_prints_only_the_headline_and_problems(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    config = csv_config(tmp_path, ["KO", "GONE"])
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 3, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("failed (1): download: GONE")
    assert lines[1].startswith("1 ok, 0 skipped, 1 failed")
    assert lines[-1].startswith("report: ")
    assert len(lines) <= 7, lines
    assert not any(line.startswith("ticker ") for line in lines)
    problems = result.stderr.strip().splitlines()
    assert problems[-1] == "pipeline: failed tickers: GONE"
    assert len(problems) == 2 and "GONE: download failed" in problems[0]


class FakeTerminal:
    """A stderr that says it is a terminal."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def console_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_pipeline_console", False)]


def test_in_a_terminal_logging_goes_through_the_bars_console_at_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.logging import RichHandler

    from pipeline.logs import setup_console_logging
    from pipeline.progress import stderr_console

    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    try:
        setup_console_logging(quiet=False)
        (handler,) = console_handlers()
        assert isinstance(handler, RichHandler)
        assert handler.console is stderr_console()
        assert handler.level == logging.WARNING
    finally:
        for handler in console_handlers():
            logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(("quiet", "level"), [(False, logging.INFO), (True, logging.WARNING)])
def test_elsewhere_info_lines_go_to_whatever_stderr_is(
    quiet: bool, level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.logs import setup_console_logging

    try:
        setup_console_logging(quiet=quiet)
        (handler,) = console_handlers()
        assert handler.level == level
        later = FakeTerminal()
        monkeypatch.setattr(sys, "stderr", later)  # e.g. a live display redirecting stderr
        logging.getLogger("pipeline.test").warning("seen")
        assert any("seen" in text for text in later.written)
    finally:
        for handler in console_handlers():
            logging.getLogger().removeHandler(handler)


def _counts_manifest(**extra) -> dict:
    return {
        "counts": {"ok": 3, "skipped": 0, "failed": 0},
        "config": {"backtest": {"mode": "walk_forward"}},
        # The backtest starts while the download goes on: these overlap.
        "timings": {"download": 5.0, "backtest": 14.0, "report": 1.0},
        "aggregates": {},
        **extra,
    }


def test_the_counts_line_gives_the_run_s_wall_time_not_the_sum_of_overlapping_stages() -> None:
    summary = summary_of([])
    line = headline(summary, _counts_manifest(), None, seconds=15.64)[0]
    assert line.endswith("; 15.6 s") and "20.0 s" not in line
    spanned = _counts_manifest(
        started_at="2026-01-02T03:04:05+00:00", finished_at="2026-01-02T03:04:21+00:00"
    )
    assert headline(summary, spanned, None)[0].endswith("; 16.0 s")


@pytest.mark.parametrize(
    "times",
    [
        {},
        {"started_at": "yesterday", "finished_at": "today"},
        {"started_at": "2026-01-02T03:04:05", "finished_at": "2026-01-02T03:04:21+00:00"},
        {"started_at": "2026-01-02T03:04:21+00:00", "finished_at": "2026-01-02T03:04:05+00:00"},
    ],
)
def test_without_a_wall_time_the_counts_line_says_none_rather_than_a_wrong_one(times) -> None:
    line = headline(summary_of([]), _counts_manifest(**times), None)[0]
    assert line == "3 ok, 0 skipped, 0 failed; mode walk_forward"

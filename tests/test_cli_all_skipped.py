"""A run with no ticker ok: every ticker skipped exits 5, and `latest` stays where it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import EXIT_ALL_SKIPPED, EXIT_OK, EXIT_TICKER_FAILED, app, status_exit_code
from tests.conftest import REPO_ROOT
from tests.test_cli import csv_config, write_csv_prices

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def write_old_prices(directory: Path, ticker: str) -> None:
    """Prices that end before the config's start (2015-01-01): the ticker did not trade then."""
    days = pd.bdate_range("2010-01-01", periods=300)
    frame = pd.DataFrame({"timestamp": days, "adjusted_close": 50.0 + 0.1 * (days.day % 7)})
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{ticker}.csv", index=False)


def latest_of(tmp_path: Path) -> Path | None:
    link = tmp_path / "reports" / "latest"
    return link.resolve() if link.is_symlink() else None


def test_status_exit_codes() -> None:
    assert status_exit_code(ok=3, skipped=1, failed=0) == EXIT_OK
    assert status_exit_code(ok=0, skipped=2, failed=0) == EXIT_ALL_SKIPPED == 5
    assert status_exit_code(ok=0, skipped=2, failed=1) == EXIT_TICKER_FAILED
    assert status_exit_code(ok=1, skipped=0, failed=1) == EXIT_TICKER_FAILED


def test_every_ticker_skipped_exits_5_and_leaves_latest(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    write_old_prices(tmp_path / "prices", "OLD1")
    write_old_prices(tmp_path / "prices", "OLD2")
    good = runner.invoke(app, ["run", str(csv_config(tmp_path, ["KO"])), "--quiet"])
    assert good.exit_code == EXIT_OK, good.output
    before = latest_of(tmp_path)
    assert before is not None

    result = runner.invoke(app, ["run", str(csv_config(tmp_path, ["OLD1", "OLD2"])), "--quiet"])

    assert result.exit_code == EXIT_ALL_SKIPPED, result.output
    assert latest_of(tmp_path) == before, "a run with no ticker ok never moves latest"
    assert "latest not moved" in result.stderr
    run_dirs = sorted(p for p in (tmp_path / "reports").iterdir() if p.is_dir() and p != before)
    (skipped_run,) = [p for p in run_dirs if not p.is_symlink()]
    summary = pd.read_csv(skipped_run / "summary.csv")
    assert summary["status"].tolist() == ["skipped", "skipped"]
    assert not list(skipped_run.glob("*.png")), "no empty charts"
    page = (skipped_run / "report.html").read_text()
    assert "1.000x" not in page and "nothing to draw" in page


def test_every_ticker_failed_exits_3_and_leaves_latest(tmp_path: Path) -> None:
    write_csv_prices(tmp_path / "prices", "KO")
    assert runner.invoke(app, ["run", str(csv_config(tmp_path, ["KO"])), "--quiet"]).exit_code == 0
    before = latest_of(tmp_path)

    result = runner.invoke(app, ["run", str(csv_config(tmp_path, ["NOFILE"])), "--quiet"])

    assert result.exit_code == EXIT_TICKER_FAILED, result.output
    assert latest_of(tmp_path) == before


def test_help_names_exit_code_5() -> None:
    result = runner.invoke(app, ["run", "--help"])
    assert "5 when every ticker was skipped" in " ".join(result.output.split())


def test_a_sweep_with_every_ticker_skipped_exits_5() -> None:
    from pipeline.cli import _sweep_exit_code

    skipped = pd.DataFrame({"ok": [0, 0], "skipped": [2, 2], "failed": [0, 0]})
    mixed = pd.DataFrame({"ok": [0, 1], "skipped": [2, 1], "failed": [0, 0]})
    assert _sweep_exit_code(skipped, 0) == EXIT_ALL_SKIPPED
    assert _sweep_exit_code(mixed, 0) == EXIT_OK
    assert _sweep_exit_code(skipped, EXIT_TICKER_FAILED) == EXIT_TICKER_FAILED

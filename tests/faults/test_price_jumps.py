"""A one-day jump that reverts the next day (a provider's adjusted price doubling for a day) is
flagged in the run's data-quality section, in the manifest, report.md and report.html, on every
run that uses it; an exact doubling that stays, or lasts two days, is a split error instead."""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.faults.conftest import (
    DAYS,
    csv_settings,
    invoke,
    manifest_of,
    random_walk,
    write_prices,
)

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each

JUMP_ROW = 100
JUMP_DAY = DAYS[JUMP_ROW].date().isoformat()


def with_factor(walk: np.ndarray, rows: slice, factor: float) -> np.ndarray:
    changed = walk.copy()
    changed[rows] *= factor
    return changed


WALK = random_walk(11)
WALK[JUMP_ROW - 1 : JUMP_ROW + 2] = WALK[JUMP_ROW - 1]  # flat around it: the jump's size exactly
FLAGGED = {
    "DOUBLED": (with_factor(WALK, slice(JUMP_ROW, JUMP_ROW + 1), 2.0), "+100% then -50%"),
    "HALVED": (with_factor(WALK, slice(JUMP_ROW, JUMP_ROW + 1), 0.5), "-50% then +100%"),
}
UNFLAGGED = {"CLEAN": WALK}
# An exact doubling on a quiet day that stays is a split left unadjusted; two days off by 2 and
# back, a split adjusted on the wrong day: both split errors, not one-day jumps.
SPLITS = {
    "STAYS": with_factor(WALK, slice(JUMP_ROW, None), 2.0),
    "TWODAYS": with_factor(WALK, slice(JUMP_ROW, JUMP_ROW + 2), 2.0),
}


@pytest.fixture(scope="module")
def jump_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A cold run, then a warm one on the same cache: (first run dir, second run dir)."""
    tmp_path = tmp_path_factory.mktemp("jumps")
    for ticker, (prices, _) in FLAGGED.items():
        write_prices(tmp_path / "prices", ticker, prices)
    for ticker, prices in {**UNFLAGGED, **SPLITS}.items():
        write_prices(tmp_path / "prices", ticker, prices)
    settings = csv_settings(tmp_path, [*FLAGGED, *UNFLAGGED, *SPLITS])
    run_dirs = (tmp_path / "cold", tmp_path / "warm")
    for run_dir in run_dirs:
        result = invoke("run", settings, "--quiet", "--out", str(run_dir))
        assert result.exit_code == 0, result.output
    yield run_dirs


def expected_warning(ticker: str) -> str:
    moves = FLAGGED[ticker][1]
    return (
        f"suspicious one-day jump on {JUMP_DAY}: {moves} the next day (a provider error?); "
        "prices kept as given"
    )


@pytest.mark.parametrize("run", [0, 1], ids=["cold", "warm"])
def test_exactly_the_reverting_jumps_are_in_the_manifest(
    jump_runs: tuple[Path, Path], run: int
) -> None:
    warnings = manifest_of(jump_runs[run])["data_warnings"]
    jumps = {t: [n for n in notes if "one-day jump" in n] for t, notes in warnings.items()}
    assert {t: notes for t, notes in jumps.items() if notes} == {
        ticker: [expected_warning(ticker)] for ticker in FLAGGED
    }
    assert set(warnings) == {*FLAGGED, *SPLITS}
    for ticker in SPLITS:
        (note,) = warnings[ticker]
        assert note.startswith("split error: ") and JUMP_DAY in note, note


@pytest.mark.parametrize("report", ["report.html", "report.md"])
@pytest.mark.parametrize("ticker", list(FLAGGED))
def test_the_jump_is_in_the_data_quality_section(
    jump_runs: tuple[Path, Path], ticker: str, report: str
) -> None:
    text = (jump_runs[1] / report).read_text()
    section = text[text.index("Data-quality warnings") :]
    shown = html.escape(expected_warning(ticker)) if report.endswith(".html") else ticker
    assert shown in section
    assert ticker in section


def test_a_jump_in_real_prices_is_flagged_and_the_real_prices_are_not(
    sp500_sample: Path, tmp_path: Path
) -> None:
    prices = tmp_path / "prices"
    prices.mkdir()
    shutil.copy(sp500_sample / "KO.csv", prices / "KO.csv")
    real = pd.read_csv(sp500_sample / "KO.csv")
    day = real.index[real["timestamp"] == "2017-06-15"][0]
    real.loc[day, "adjusted_close"] *= 2.0
    real.to_csv(prices / "KOX.csv", index=False)
    settings = csv_settings(tmp_path, ["KO", "KOX"])
    settings.update({"data.start": "2015-01-02", "data.end": "2019-12-31"})
    result = invoke("run", settings, "--quiet", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    warnings = manifest_of(tmp_path / "run")["data_warnings"]
    assert list(warnings) == ["KOX"]
    (note,) = warnings["KOX"]
    assert note.startswith("suspicious one-day jump on 2017-06-15: +100% then -50%")

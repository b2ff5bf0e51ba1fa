"""Charts render to PNG from plain frames, including the degenerate ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.report.aggregates import compute_aggregates
from pipeline.report.charts import DPI, FIGURE_SIZE_INCHES, render_charts, thin
from tests.report.conftest import (
    OK_ROWS,
    combined_daily,
    sample_results,
    sample_tables,
    summary_frame,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.mark.slow
@pytest.mark.parametrize(
    "results",
    [
        pytest.param(sample_results(), id="sample"),
        pytest.param(sample_results({"AAA": OK_ROWS["AAA"]}, failed={"X": "boom"}), id="one-ok"),
    ],
)
def test_every_chart_is_a_png_of_the_house_size(results):
    summary, daily = summary_frame(results), combined_daily(results)
    charts = render_charts(summary, daily, compute_aggregates(summary, daily, cost_bps=5.0))
    assert len({chart.file_name for chart in charts}) == len(charts) == 5
    for chart in charts:
        assert chart.file_name.endswith(".png") and chart.title
        assert chart.png[:8] == PNG_MAGIC
        width, height = FIGURE_SIZE_INCHES
        assert _png_size(chart.png) == (round(width * DPI), round(height * DPI))


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(sample_results({}, failed={"X": "boom"}), id="all-failed"),
        pytest.param(sample_results({}, failed={}, skipped={"Y": "no prices"}), id="all-skipped"),
    ],
)
def test_no_ok_ticker_draws_no_chart(results):
    """An empty chart says nothing: the report says in words that there is nothing to draw."""
    summary, daily = summary_frame(results), combined_daily(results)
    assert render_charts(summary, daily, compute_aggregates(summary, daily, cost_bps=5.0)) == []


def test_charts_do_not_change_their_inputs():
    summary, daily = sample_tables()
    before = (summary.copy(), daily.copy())
    render_charts(summary, daily, compute_aggregates(summary, daily))
    pd.testing.assert_frame_equal(summary, before[0])
    pd.testing.assert_frame_equal(daily, before[1])


@pytest.mark.parametrize(
    ("length", "max_points"),
    [(10, 100), (1000, 100), (1001, 100), (5000, 2500), (2, 1)],
    ids=["short", "exact-multiple", "one-over", "twenty-years", "tiny"],
)
def test_thin_keeps_the_ends_and_the_bound(length, max_points):
    series = pd.Series(range(length), dtype="float64")
    thinned = thin(series, max_points)
    assert thinned.iloc[0] == 0 and thinned.iloc[-1] == length - 1
    assert len(thinned) <= max_points + 1
    assert thinned.index.is_monotonic_increasing



def long_daily(seed: int, n_days: int = 300) -> pd.DataFrame:
    """A ticker's daily rows over more than a year, so that every chart draws its name."""
    from tests.report.conftest import DAILY_COLUMNS

    rng = np.random.default_rng(seed)
    position = rng.choice(np.array([-1, 1], dtype=np.int8), n_days)
    asset = rng.normal(0.0005, 0.01, n_days)
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2019-01-01", periods=n_days),
            "position": position,
            "asset_log_return": asset,
            "strategy_log_return": position * asset,
        }
    )[list(DAILY_COLUMNS)]


@pytest.mark.slow  # a whole report per case, over a second each
@pytest.mark.parametrize(
    "name",
    ["$\\frac{", "A$^{$B", "$x$", "KO\x1b[31m\x07", "\u202eLTR", "tab\there"],
    ids=["unbalanced-mathtext", "mathtext-pair", "balanced-math", "escape", "bidi", "tab"],
)
def test_a_tampered_ticker_name_is_drawn_as_plain_text(tmp_path, name: str) -> None:
    """A run directory's ticker names are outside text: they never reach mathtext, and no
    control character reaches a glyph lookup (matplotlib would warn "Glyph missing")."""
    import warnings

    from pipeline.report.build import build_report
    from tests.report.conftest import OK_ROWS, ok_result, write_run

    intervals = {"sharpe_lo": -0.5, "sharpe_hi": 1.5, "accuracy_lo": 0.45, "accuracy_hi": 0.6}
    results = [
        ok_result(ticker, {**OK_ROWS[row], **intervals, "n_days": 300}, long_daily(seed))
        for seed, (ticker, row) in enumerate([(name, "AAA"), ("BBB", "BBB"), ("CCC", "CCC")])
    ]
    run = write_run(tmp_path / "run", results)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = build_report(run)
    assert sum(path.suffix == ".png" for path in written) >= 5

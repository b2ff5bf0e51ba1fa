"""Headlines that do not mislead: a run with no ticker ok shows no figure and no chart, tickers
with less than a year are named and kept out of the extremes, holdout shows each split."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from pipeline.report.aggregates import SHORT_HISTORY_DAYS, compute_aggregates, manifest_aggregates
from pipeline.report.build import REPORT_HTML, REPORT_MD, draw_report
from pipeline.report.charts import extreme_tickers
from pipeline.report.formatting import MISSING
from pipeline.report.html_page import render_html
from pipeline.report.markdown_page import render_markdown
from pipeline.report.run_files import RunFiles, read_run
from pipeline.report.tables import distribution_table
from tests.report.conftest import (
    OK_ROWS,
    combined_daily,
    sample_results,
    summary_frame,
    write_run,
)

NO_OK = {
    "all-failed": dict(ok_rows={}, failed={"X": "download: HTTP 404", "Y": "download: timeout"}),
    "all-skipped": dict(ok_rows={}, failed={}, skipped={"X": "no prices in range", "Y": "dead"}),
}


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


@pytest.mark.parametrize("case", list(NO_OK))
@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_no_ok_ticker_shows_no_figure_and_no_chart(tmp_path: Path, case: str, cost_bps: float):
    run = read_run(write_run(tmp_path / "run", sample_results(**NO_OK[case]), cost_bps=cost_bps))
    files = draw_report(run.summary, run.daily, run.manifest, run_name="run")
    assert not [name for name in files if name.endswith(".png")], "no empty chart"
    page = files[REPORT_HTML].decode()
    headline = text_of(section(page, "headline"))
    for misleading in ("1.000x", "0.00", "0.0%"):
        assert misleading not in headline, misleading
    values = re.findall(r'<div class="value">(.*?)</div>', section(page, "headline"))
    assert values[0] == "0 of 2"
    assert all(value == MISSING for value in values[1:]), values
    assert "<img" not in page and "nothing to draw" in section(page, "charts")
    markdown = files[REPORT_MD].decode()
    head = markdown[markdown.index("## Headline figures") : markdown.index("## Per ticker")]
    for misleading in ("1.000x", "0.00", "0.0%", "!["):
        assert misleading not in head, misleading
    assert f"| Portfolio cum return | {MISSING} |" in head, "no before/after pair of nothing"


def _mixed_history():
    """AAA and BBB with more than a year; CCC, the best on every figure, with two months."""
    rows = {
        "AAA": {**OK_ROWS["AAA"], "n_days": SHORT_HISTORY_DAYS + 48},
        "BBB": {**OK_ROWS["BBB"], "n_days": SHORT_HISTORY_DAYS},
        "CCC": {**OK_ROWS["CCC"], "n_days": 40, "accuracy": 0.70, "cum_return": 3.0},
    }
    return sample_results(rows, failed={})


def test_short_histories_are_named_and_kept_out_of_the_extremes(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "run", _mixed_history()))
    agg = manifest_aggregates(run.manifest, run.daily)
    assert agg.short_history_tickers == ("CCC",)
    table = distribution_table(agg)
    assert table.header[-2:] == (
        f"min (\u2265 {SHORT_HISTORY_DAYS} days)",
        f"max (\u2265 {SHORT_HISTORY_DAYS} days)",
    )
    rows = {row[0]: row for row in table.rows}
    assert rows["accuracy"][-1] == "60.00%" and rows["accuracy"][-2] == "50.00%"
    assert rows["before costs (x)"][-1] == "1.200"
    page = text_of(render_html(run, agg, []))
    assert "1 ok ticker(s) have fewer than 252 evaluation days (a year of sessions): CCC" in page
    assert "70.00%" not in text_of(section(render_html(run, agg, []), "headline"))
    assert "CCC" in render_markdown(run, agg, []).split("## Charts")[0]


def test_without_short_histories_the_extremes_are_plain(tmp_path: Path) -> None:
    rows = {t: {**m, "n_days": 400} for t, m in OK_ROWS.items()}
    run = read_run(write_run(tmp_path / "run", sample_results(rows, failed={})))
    agg = manifest_aggregates(run.manifest, run.daily)
    assert agg.short_history_tickers == ()
    assert distribution_table(agg).header[-2:] == ("min", "max")
    assert "fewer than 252" not in render_html(run, agg, [])


def test_the_best_tickers_chart_leaves_out_short_histories() -> None:
    results = _mixed_history()
    summary, daily = summary_frame(results), combined_daily(results)
    ok = summary[summary["status"] == "ok"]
    labels = [line.get_label() for line in extreme_tickers(ok, daily).axes[0].get_lines()]
    drawn = {label.split(":")[0] for label in labels if not label.startswith("_")}
    assert drawn == {"AAA", "BBB"}


def test_an_older_manifest_without_the_names_still_draws(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "run", _mixed_history()))
    for key in ("short_history_tickers", "full_history_distributions"):
        del run.manifest["aggregates"][key]
    agg = manifest_aggregates(run.manifest, run.daily)
    assert distribution_table(agg).header[-1] == "max"
    assert "fewer than 252" in render_html(run, agg, [])


def test_holdout_tickers_table_shows_each_split(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "run", sample_results(), mode="holdout"))
    signals = pd.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "train_rows": [700, 650, 480],
                            "position": [1, 0, -1], "as_of": ["2021-03-03"] * 3})  # fmt: skip
    run = RunFiles(run.run_dir, run.summary, run.daily, run.manifest, signals)
    agg = manifest_aggregates(run.manifest, run.daily)
    tickers = section(render_html(run, agg, []), "tickers")
    header = re.findall(r"<th[^>]*>(.*?)</th>", tickers)
    assert header[2:5] == ["test from", "train rows", "test days"]
    rows = {
        cells[0]: cells
        for cells in (
            [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr class=\"\w+\">(.*?)</tr>", tickers, re.S)
        )
    }
    assert rows["AAA"][2:5] == ["2021-03-01", "700", "3"]
    assert rows["CCC"][2:5] == ["2021-03-02", "480", "2"]
    assert rows["DDD"][2:4] == [MISSING, MISSING]
    markdown = render_markdown(run, agg, [])
    assert "| AAA | ok | 2021-03-01 | 700 | 3 |" in markdown


def test_other_modes_have_no_split_columns(tmp_path: Path) -> None:
    run = read_run(write_run(tmp_path / "run", sample_results()))
    agg = manifest_aggregates(run.manifest, run.daily)
    assert "train rows" not in render_html(run, agg, [])


def test_short_history_names_are_in_the_aggregates() -> None:
    results = _mixed_history()
    summary, daily = summary_frame(results), combined_daily(results)
    agg = compute_aggregates(summary, daily)
    assert agg.full_history_distributions["cum_return"].max == pytest.approx(1.20)
    assert agg.distributions["cum_return"].max == pytest.approx(3.0)  # the record keeps all

"""The report's statistics tables and charts, from a manifest's statistics block."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.report.formatting import MISSING
from pipeline.report.statistics_section import (
    baseline_table,
    glossary_table,
    statistics_charts,
    statistics_table,
    ticker_edge_table,
    verdict_of,
)

STATS = {
    "portfolio_sharpe": 1.25, "portfolio_sharpe_lo": 0.5, "portfolio_sharpe_hi": 2.0,
    "psr": 0.99, "dsr": 0.9, "n_trials": 3, "best_baseline": "long", "best_baseline_sharpe": 0.75,
    "edge_sharpe": 0.5, "baseline_sharpes": {"long": 0.75, "majority": 0.5, "momentum": -0.25,
                                             "reversal": 0.25},
    "verdict": {"evidence": False, "headline": "No evidence of skill", "details": "figures"},
}  # fmt: skip


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "ticker": ["A", "B", "C"], "status": ["ok", "ok", "failed"],
        "sharpe": [1.0, -0.5, None], "sharpe_lo": [0.2, -1.2, None], "sharpe_hi": [1.8, 0.3, None],
        "best_baseline": ["long", "momentum", None], "edge_sharpe": [0.4, -0.2, None],
        "edge_accuracy": [0.01, -0.03, None], "long_sharpe": [0.6, 0.1, None],
        "majority_sharpe": [0.1, 0.0, None], "momentum_sharpe": [0.2, -0.3, None],
        "reversal_sharpe": [-0.2, 0.3, None],
    })  # fmt: skip


def test_statistics_table_shows_the_interval_and_trials():
    table = statistics_table({"statistics": STATS})
    cells = dict((row[0], row[1]) for row in table.rows)
    assert cells["portfolio Sharpe"] == "1.25"
    assert cells["interval"] == "0.50 to 2.00"
    assert cells["trials (same universe and dates)"] == "3"
    assert cells["best baseline"] == "long"
    assert table.header == ("equal-weight portfolio", "value")  # no costs: not a word of them
    net = statistics_table({"statistics": {**STATS, "dsr_net": 0.1, "portfolio_sharpe_net": 0.2}})
    assert net.header == ("equal-weight portfolio", "after costs", "before costs")
    assert dict((row[0], row[1:]) for row in net.rows)["portfolio Sharpe"] == ("0.20", "1.25")


def test_baseline_and_edge_tables():
    rows = baseline_table({"statistics": STATS}).rows
    assert [row[0] for row in rows] == ["model", "long", "majority", "momentum", "reversal"]
    edges = {row[0]: row for row in ticker_edge_table(_summary()).rows}
    assert edges["all ok tickers"][1] == "2"
    assert edges["long"][1] == "1" and edges["momentum"][1] == "1"
    assert "majority" not in edges  # no ticker has it as its best baseline


def test_old_runs_without_statistics_still_render():
    assert verdict_of({}) is None
    assert statistics_table({}).rows[0][1] == MISSING
    charts = statistics_charts(pd.DataFrame({"ticker": ["A"], "status": ["ok"]}), {})
    assert [c.png[:8] for c in charts] == [b"\x89PNG\r\n\x1a\n"] * 2
    assert statistics_charts(pd.DataFrame({"ticker": ["B"], "status": ["failed"]}), {}) == []


def test_glossary_names_the_return_conventions():
    figures = [row[0] for row in glossary_table().rows]
    assert "Sharpe ratio" in figures and "portfolio" in figures
    assert verdict_of({"statistics": STATS})["headline"] == "No evidence of skill"


def test_charts_render_with_intervals():
    charts = statistics_charts(_summary(), {"statistics": STATS})
    assert {c.file_name for c in charts} == {"chart_sharpe_intervals.png",
                                             "chart_portfolio_baselines.png"}  # fmt: skip
    assert all(len(c.png) > 1000 for c in charts)


@pytest.mark.slow
def test_the_report_opens_with_the_verdict_escaped(make_run):
    import json

    from pipeline.report.build import REPORT_HTML, REPORT_MD, build_report

    run_dir = make_run()
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    hostile = {**STATS, "verdict": {**STATS["verdict"], "headline": "<script>x</script> skill"}}
    path.write_text(json.dumps({**manifest, "statistics": hostile}))
    build_report(run_dir)
    page = (run_dir / REPORT_HTML).read_text()
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt; skill" in page
    assert page.index('id="skill"') < page.index('id="headline"')
    assert "Glossary: return conventions" in page and "1.25" in page
    markdown = (run_dir / REPORT_MD).read_text()
    assert markdown.index("## Evidence of skill") < markdown.index("## Headline figures")


@pytest.mark.slow
def test_a_manifest_without_statistics_says_so(make_run):
    from pipeline.report.build import REPORT_HTML, build_report

    run_dir = make_run()
    build_report(run_dir)
    page = (run_dir / REPORT_HTML).read_text()
    assert 'id="skill"' in page

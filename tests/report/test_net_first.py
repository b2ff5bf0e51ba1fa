"""With costs the report leads with the figures after costs, those before costs beside them and
labelled; without costs it says nothing about costs."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.report.aggregates import drawdown_curve, manifest_aggregates
from pipeline.report.charts import portfolio_drawdown, portfolio_equity
from pipeline.report.html_page import render_html
from pipeline.report.markdown_page import render_markdown
from pipeline.report.run_files import read_run
from pipeline.report.tables import headline_items, portfolio_table
from tests.report.conftest import sample_results, write_run


def drawn(tmp_path: Path, cost_bps: float):
    run = read_run(write_run(tmp_path / f"run{cost_bps:g}", sample_results(), cost_bps=cost_bps))
    agg = manifest_aggregates(run.manifest, run.daily)
    return run, agg, render_html(run, agg, []), render_markdown(run, agg, [])


def cards(page: str) -> dict[str, tuple[str, str]]:
    """Label -> (the value's text, with what stands beside it; the detail line)."""
    found = re.findall(
        r'<div class="label">(.*?)</div><div class="value">(.*?)</div>'
        r'<div class="detail">(.*?)</div>',
        page,
    )
    plain = lambda html: " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())  # noqa: E731
    return {plain(label): (plain(value), plain(detail)) for label, value, detail in found}


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def test_cards_lead_with_the_figures_after_costs(tmp_path: Path) -> None:
    _, agg, page, _ = drawn(tmp_path, 10.0)
    net, gross = agg.portfolio_strategy_net, agg.portfolio_strategy
    assert net.cum_return != pytest.approx(gross.cum_return), "the sample must tell them apart"
    shown = cards(page)
    value, detail = shown["Portfolio cum return after costs"]
    assert value == f"{net.cum_return:.3f}x {gross.cum_return:.3f}x before costs"
    assert "10 bps" in detail
    value, _ = shown["Portfolio max drawdown after costs"]
    assert value == f"{net.max_drawdown:.1%} {gross.max_drawdown:.1%} before costs"
    value, _ = shown["Portfolio Sharpe after costs"]
    assert value.startswith(f"{net.sharpe:.2f} ") and value.endswith(" before costs")
    value, _ = shown["Beat buy & hold after costs"]
    assert value == (
        f"{agg.share_beat_buy_hold_net:.1%} {agg.share_beat_buy_hold:.1%} before costs"
    )
    assert "Portfolio cum return" not in shown, "no card leads with the gross figure"


def test_without_costs_nothing_is_said_about_costs(tmp_path: Path) -> None:
    _, agg, page, markdown = drawn(tmp_path, 0.0)
    shown = cards(page)
    value, _ = shown["Portfolio cum return"]
    assert value == f"{agg.portfolio_strategy.cum_return:.3f}x"
    for anchor in ("headline", "tickers"):
        assert "cost" not in unescape(section(page, anchor)).lower(), anchor
    headline = markdown[markdown.index("## Headline figures") : markdown.index("## Charts")]
    per_ticker = markdown[markdown.index("## Per ticker") : markdown.index("## Failed")]
    assert "cost" not in (headline + per_ticker).lower()
    assert "after costs (x)" not in page and "net of costs" not in page.lower()


def test_portfolio_and_ticker_tables_put_after_costs_first(tmp_path: Path) -> None:
    _, agg, page, markdown = drawn(tmp_path, 10.0)
    names = [row[0] for row in portfolio_table(agg).rows]
    assert names == ["strategy after costs (10 bps)", "strategy before costs", "buy & hold"]
    tickers = unescape(section(page, "tickers"))
    assert tickers.index("after costs (x)") < tickers.index("before costs (x)")
    header = next(line for line in markdown.splitlines() if line.startswith("| ticker | status"))
    assert header.index("after costs (x)") < header.index("before costs (x)")
    headline = markdown[markdown.index("## Headline figures") :]
    assert headline.index("| Portfolio cum return after costs |") < headline.index(
        "### Equal-weight portfolio"
    )
    net_row = headline.index("| strategy after costs (10 bps) |")
    assert net_row < headline.index("| strategy before costs |")


def test_markdown_cards_put_the_figure_before_costs_beside(tmp_path: Path) -> None:
    _, agg, _, markdown = drawn(tmp_path, 10.0)
    net, gross = agg.portfolio_strategy_net, agg.portfolio_strategy
    assert (
        f"| Portfolio cum return after costs | {net.cum_return:.3f}x | "
        f"{gross.cum_return:.3f}x before costs; " in markdown
    )


def test_headline_items_without_net_figures_fall_back_to_gross(tmp_path: Path) -> None:
    _, agg, _, _ = drawn(tmp_path, 0.0)
    assert all(not item.beside for item in headline_items(agg))


def _curves(net_loss: float) -> pd.DataFrame:
    days = pd.bdate_range("2020-01-01", periods=200)
    gross = np.full(len(days), 0.001)
    gross[50:60] = -0.02  # a 20% fall before costs
    return pd.DataFrame(
        {
            "strategy": gross,
            "strategy_net": gross - net_loss,
            "buy_hold": np.full(len(days), 0.0005),
            "n_tickers": 3,
        },
        index=days,
    )


def test_the_drawdown_chart_fills_the_drawdown_after_costs() -> None:
    curves = _curves(net_loss=0.005)
    axes = portfolio_drawdown(curves).axes[0]
    filled = axes.collections[0]
    net_max = float(drawdown_curve(curves["strategy_net"]).max())
    gross_max = float(drawdown_curve(curves["strategy"]).max())
    assert net_max > gross_max + 0.3
    assert filled.get_label() == f"strategy after costs (max {net_max:.0%})"
    lowest = min(path.vertices[:, 1].min() for path in filled.get_paths())
    assert lowest == pytest.approx(-net_max, abs=1e-9)
    labels = [line.get_label() for line in axes.get_lines()]
    assert labels[0] == f"strategy before costs (max {gross_max:.0%})"
    assert "after costs" in axes.get_title()


def test_the_drawdown_chart_without_costs_names_no_costs() -> None:
    curves = _curves(0.0).drop(columns="strategy_net")
    axes = portfolio_drawdown(curves).axes[0]
    assert axes.collections[0].get_label() == "strategy"
    texts = [axes.get_title(), *(line.get_label() for line in axes.get_lines())]
    assert not any("cost" in text for text in texts)


def test_the_equity_chart_draws_after_costs_first() -> None:
    axes = portfolio_equity(_curves(0.001)).axes[0]
    labels = [line.get_label() for line in axes.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["strategy after costs", "strategy before costs", "buy & hold"]

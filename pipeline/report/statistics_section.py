"""The report's statistics: the verdict, the portfolio's interval, PSR and DSR, the model
against the best baseline (per ticker and in aggregate), the Sharpe ratios' intervals as error
bars, and which return convention each figure uses. Pure functions of the summary and the
manifest's `statistics` block (computed once, by the run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import RETURN_CONVENTIONS, ok_rows
from pipeline.report.charts import (
    BUY_HOLD_COLOUR,
    STRATEGY_COLOUR,
    Chart,
    _figure,
    _note_no_data,
    chart_text,
    figure_png,
)
from pipeline.report.tables import Table

BASELINE_NAMES = ("long", "majority", "momentum", "reversal")
# Above this many tickers the error-bar chart shows every k-th ticker of the sorted list.
MAX_TICKERS_DRAWN = 120


def statistics_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's statistics block; {} for a run written before it existed."""
    return dict(manifest.get("statistics") or {})


def verdict_of(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    verdict = statistics_of(manifest).get("verdict")
    return verdict if isinstance(verdict, Mapping) else None


def _interval(stats: Mapping[str, Any], suffix: str) -> str:
    low, high = stats.get(f"portfolio_sharpe_lo{suffix}"), stats.get(f"portfolio_sharpe_hi{suffix}")
    if low is None or high is None:
        return fmt.MISSING
    return f"{fmt.ratio(low)} to {fmt.ratio(high)}"


def _value(stats: Mapping[str, Any], key: str, format_value: Any = fmt.ratio) -> str:
    value = stats.get(key)
    return fmt.MISSING if value is None else format_value(value)


def statistics_table(manifest: Mapping[str, Any]) -> Table:
    """The portfolio's Sharpe with its interval, PSR, DSR and trials: with costs, the column
    after costs first and the one before costs beside it; without, one column."""
    stats = statistics_of(manifest)
    suffixes = (
        [("after costs", "_net"), ("before costs", "")] if "dsr_net" in stats else [("value", "")]
    )
    lines = [
        ("portfolio Sharpe", "portfolio_sharpe", fmt.ratio),
        ("PSR (P[true Sharpe > 0])", "psr", fmt.percent),
        ("DSR (after the trials)", "dsr", fmt.percent),
        ("trials (same universe and dates)", "n_trials", str),
        ("best baseline", "best_baseline", str),
        ("its Sharpe", "best_baseline_sharpe", fmt.ratio),
        ("model less best baseline", "edge_sharpe", fmt.signed_ratio),
    ]
    rows = [
        (label, *(_value(stats, key + s, show) for _, s in suffixes)) for label, key, show in lines
    ]
    rows.insert(1, ("interval", *(_interval(stats, s) for _, s in suffixes)))
    return Table(("equal-weight portfolio", *(name for name, _ in suffixes)), tuple(rows))


def baseline_table(manifest: Mapping[str, Any]) -> Table:
    """The model's portfolio against each baseline's portfolio, by Sharpe ratio."""
    stats = statistics_of(manifest)
    net = "baseline_sharpes_net" in stats
    gross, costs = stats.get("baseline_sharpes") or {}, stats.get("baseline_sharpes_net") or {}
    rows = [("model", *([_value(stats, "portfolio_sharpe_net")] if net else []),
             _value(stats, "portfolio_sharpe"))]  # fmt: skip
    for name in BASELINE_NAMES:
        if name in gross:
            cells = ([_value(costs, name)] if net else []) + [fmt.ratio(gross[name])]
            rows.append((name, *cells))
    header = (
        ("portfolio of", "Sharpe after costs", "Sharpe before costs")
        if net
        else ("portfolio of", "Sharpe")
    )
    return Table(header, tuple(rows))


def ticker_edge_table(summary: pd.DataFrame) -> Table:
    """Per best baseline: how many tickers it is the best rule for, and the model's edge there."""
    ok = ok_rows(summary)
    if "best_baseline" not in ok.columns or ok.empty:
        return Table(("best baseline", "tickers", "median edge in Sharpe", "model ahead",
                      "median edge in accuracy"), ())  # fmt: skip
    rows = []
    groups = [("all ok tickers", ok)] + [
        (name, ok[ok["best_baseline"] == name]) for name in BASELINE_NAMES
    ]
    for name, rows_of in groups:
        if rows_of.empty:
            continue
        edge = rows_of["edge_sharpe"].astype("float64")
        rows.append((
            name,
            str(len(rows_of)),
            fmt.signed_ratio(float(edge.median())),
            fmt.percent(float((edge > 0).mean())),
            fmt.signed_points(float(rows_of["edge_accuracy"].astype("float64").median())),
        ))  # fmt: skip
    header = ("best baseline", "tickers", "median edge in Sharpe", "model ahead",
              "median edge in accuracy")  # fmt: skip
    return Table(header, tuple(rows))


def glossary_table() -> Table:
    """Which return convention each figure uses."""
    return Table(("figure", "convention"), RETURN_CONVENTIONS)


def sharpe_intervals(ok: pd.DataFrame) -> Figure:
    """Each ok ticker's Sharpe ratio with its bootstrap interval, sorted, and its best baseline."""
    with _figure() as (figure, axes):
        axes.set_title("Sharpe ratio per ticker with its bootstrap interval")
        needed = {"sharpe", "sharpe_lo", "sharpe_hi"}
        frame = (
            ok.dropna(subset=[c for c in needed if c in ok.columns])
            if needed <= set(ok.columns)
            else ok.iloc[0:0]
        )
        if frame.empty:
            _note_no_data(axes, "no intervals (bootstrap off, or no ok ticker)")
            return figure
        frame = frame.sort_values("sharpe", kind="stable")
        step = max(1, int(np.ceil(len(frame) / MAX_TICKERS_DRAWN)))
        frame = frame.iloc[::step]
        x = np.arange(len(frame))
        sharpe = frame["sharpe"].astype("float64").to_numpy()
        below = sharpe - frame["sharpe_lo"].astype("float64").to_numpy()
        above = frame["sharpe_hi"].astype("float64").to_numpy() - sharpe
        axes.errorbar(x, sharpe, yerr=[np.maximum(below, 0), np.maximum(above, 0)], fmt="o",
                      markersize=3, color=STRATEGY_COLOUR, ecolor=STRATEGY_COLOUR, elinewidth=0.8,
                      alpha=0.8, label="model, with its interval")  # fmt: skip
        best = frame[[f"{n}_sharpe" for n in BASELINE_NAMES if f"{n}_sharpe" in frame]].max(axis=1)
        axes.scatter(x, best, marker="_", s=40, color=BUY_HOLD_COLOUR, label="best baseline")
        axes.axhline(0.0, color="black", linewidth=0.8)
        axes.set_xlabel("tickers, by Sharpe ratio" + (f" (every {step}th)" if step > 1 else ""))
        axes.set_ylabel("Sharpe ratio (annualised)")
        if len(frame) <= 40:
            axes.set_xticks(x, frame["ticker"].map(chart_text), rotation=90, fontsize=7)
        else:
            axes.set_xticks([])
        axes.legend(loc="upper left")
    return figure


def portfolio_against_baselines(manifest: Mapping[str, Any]) -> Figure:
    """The portfolio's Sharpe ratio with its interval beside each baseline's portfolio."""
    stats = statistics_of(manifest)
    baselines = stats.get("baseline_sharpes") or {}
    with _figure() as (figure, axes):
        axes.set_title("Equal-weight portfolio: model against the baselines (Sharpe, gross)")
        if stats.get("portfolio_sharpe") is None:
            _note_no_data(axes, "no statistics in this run's manifest")
            return figure
        names = ["model", *(n for n in BASELINE_NAMES if n in baselines)]
        values = [stats["portfolio_sharpe"], *(baselines[n] for n in names[1:])]
        colours = [STRATEGY_COLOUR] + [BUY_HOLD_COLOUR] * (len(names) - 1)
        axes.bar(names, [v if v is not None else np.nan for v in values], color=colours)
        low, high = stats.get("portfolio_sharpe_lo"), stats.get("portfolio_sharpe_hi")
        if low is not None and high is not None:
            value = stats["portfolio_sharpe"]
            axes.errorbar([0], [value], yerr=[[max(value - low, 0)], [max(high - value, 0)]],
                          fmt="none", ecolor="black", capsize=6, label="interval")  # fmt: skip
            axes.legend(loc="upper right")
        axes.axhline(0.0, color="black", linewidth=0.8)
        axes.set_ylabel("Sharpe ratio (annualised)")
    return figure


def statistics_charts(summary: pd.DataFrame, manifest: Mapping[str, Any]) -> list[Chart]:
    """The statistics' charts; none when no ticker is ok."""
    ok = ok_rows(summary)
    if ok.empty:
        return []
    return [
        Chart("chart_sharpe_intervals.png", "Sharpe ratio per ticker with its interval",
              figure_png(sharpe_intervals(ok))),
        Chart("chart_portfolio_baselines.png", "Portfolio: model against the baselines",
              figure_png(portfolio_against_baselines(manifest))),
    ]  # fmt: skip


def _confidence(manifest: Mapping[str, Any]) -> str:
    report = (manifest.get("config") or {}).get("report") or {}
    value = report.get("confidence")
    return f"{value:.0%}" if isinstance(value, int | float) else "95%"


def statistics_context(summary: pd.DataFrame, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What templates/html/skill.html.j2 reads: the verdict and the tables behind it."""
    return {
        "verdict": verdict_of(manifest),
        "statistics": statistics_table(manifest),
        "baselines": baseline_table(manifest),
        "edges": ticker_edge_table(summary),
        "glossary": glossary_table(),
        "confidence": _confidence(manifest),
    }


def statistics_markdown_parts(
    summary: pd.DataFrame, manifest: Mapping[str, Any], render_table: Any
) -> list[str]:
    """The statistics section of report.md, tables drawn by the page's `render_table`."""
    verdict = verdict_of(manifest)
    return [
        f"**{verdict['headline']}** {verdict['details']}" if verdict else "",
        "### Equal-weight portfolio: interval, PSR, DSR",
        render_table(statistics_table(manifest), text_columns=(0,)),
        "### Model against the baselines: portfolio",
        render_table(baseline_table(manifest), text_columns=(0,)),
        "### Model against its best baseline: per ticker",
        render_table(ticker_edge_table(summary), text_columns=(0,)),
        "### Glossary: return conventions",
        render_table(glossary_table(), text_columns=(0, 1)),
    ]

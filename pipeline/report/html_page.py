"""report.html: one self-contained page (inline CSS and JS, charts as data URIs, no outside URL).

The markup is in templates/report.html.j2 and its sections in templates/html/; Jinja2's
autoescaping escapes every value from outside (tickers, reasons, warnings, config values), so
escaping is structural. This module only gathers each section's context. The per-ticker table
sorts on a header click with a few lines of inline script; without script it is a plain table
in the summary's order.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import Aggregates
from pipeline.report.charts import Chart
from pipeline.report.next_session import next_session
from pipeline.report.quality_section import quality_summary
from pipeline.report.run_files import RunFiles
from pipeline.report.statistics_section import statistics_context
from pipeline.report.tables import (
    IN_SAMPLE_WARNING,
    config_table,
    distribution_table,
    headline_items,
    headline_notes,
    is_in_sample,
    portfolio_table,
    problem_table,
    reason_table,
    run_facts,
    ticker_columns,
    ticker_frame,
    ticker_table,
    versions_table,
    warning_table,
)

PAGE_TEMPLATE = "report.html.j2"


@cache
def template_environment() -> jinja2.Environment:
    """Templates of the package, HTML ones autoescaped; a missing context key is an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _asset(name: str) -> Markup:
    """The package's own CSS or script, inserted as written: trusted, never user data."""
    return Markup((resources.files("pipeline.report") / "templates" / name).read_text("utf-8"))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def headline_context(agg: Aggregates) -> dict[str, Any]:
    return {
        "cards": headline_items(agg),
        "portfolio": portfolio_table(agg),
        "distribution": distribution_table(agg),
        "notes": headline_notes(agg),
    }


def chart_context(charts: Sequence[Chart]) -> list[dict[str, str]]:
    return [
        {"uri": png_data_uri(c.png), "title": c.title, "file_name": c.file_name} for c in charts
    ]


def _sort_value(value: Any) -> str | None:
    """The raw number behind a cell for the sort script; empty for a missing value; None for
    a day (ISO text sorts as it reads)."""
    if fmt.is_missing(value):
        return ""
    return None if isinstance(value, str) else repr(float(value))


def _number_cell(column: str, raw: pd.Series, text: str) -> dict[str, Any]:
    css = ""
    if column in ("cum_return", "cum_return_net") and not fmt.is_missing(raw[column]):
        css = "win" if raw[column] > raw["buy_hold"] else "loss"
    return {"sort_value": _sort_value(raw[column]), "css": css, "text": text}


def ticker_context(
    summary: pd.DataFrame,
    cost_bps: float = 0.0,
    mode: str = "",
    signals: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Every requested ticker with its figures; each number carries its raw value to sort by."""
    frame = ticker_frame(summary, signals)
    table = ticker_table(summary, cost_bps, mode, signals)
    rows = [
        {
            "status": str(raw["status"]),
            "ticker": cells[0],
            "status_text": cells[1],
            "numbers": [
                _number_cell(column, raw, text)
                for column, text in zip(ticker_columns(cost_bps, mode), cells[2:], strict=True)
            ],
        }
        for (_, raw), cells in zip(frame.iterrows(), table.rows, strict=True)
    ]
    # A non-breaking hyphen keeps "p-value" on one line when a heading wraps.
    header = [title.replace("-", "\u2011") for title in table.header]
    return {"header": header, "rows": rows}


def page_context(run: RunFiles, agg: Aggregates, charts: Sequence[Chart]) -> dict[str, Any]:
    """What report.html.j2 and its sections read: one key per section."""
    return {
        "name": run.run_dir.name,
        "subtitle": _subtitle(run, agg),
        "in_sample_warning": IN_SAMPLE_WARNING if is_in_sample(run.manifest) else "",
        "css": _asset("report.css"),
        "script": _asset("sort.js"),
        "next_session": next_session(run.signals),
        "skill": statistics_context(run.summary, run.manifest),
        "headline": headline_context(agg),
        "charts": chart_context(charts),
        "tickers": ticker_context(run.summary, agg.cost_bps, run.mode, run.signals),
        "problems": {
            "by_reason": reason_table(agg),
            "each_ticker": problem_table(run.summary),
        },
        "warnings": warning_table(run.manifest),
        "quality": quality_summary(run.manifest),
        "run": {
            "facts": run_facts(run.manifest),
            "config": config_table(run.manifest),
            "versions": versions_table(run.manifest),
        },
    }


def render_html(run: RunFiles, agg: Aggregates, charts: Sequence[Chart]) -> str:
    """The whole page as one string."""
    template = template_environment().get_template(PAGE_TEMPLATE)
    return template.render(page_context(run, agg, charts))


def _subtitle(run: RunFiles, agg: Aggregates) -> str:
    span = agg.portfolio_strategy
    dates = f"{span.first_date} to {span.last_date}" if span.first_date else "no evaluation days"
    return (
        f"{run.run_dir.name} · mode {run.mode} · {agg.n_tickers} tickers · {dates} · "
        f"config {run.manifest.get('config_hash', fmt.MISSING)} · "
        f"finished {run.manifest.get('finished_at', fmt.MISSING)}"
    )

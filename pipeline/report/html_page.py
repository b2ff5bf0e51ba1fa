"""report.html: one self-contained page (inline CSS and JS, charts as data URIs, no outside URL).

Every string from outside (tickers, reasons, warnings, config values) goes through `escape`.
The per-ticker table sorts on a header click with a few lines of inline script; without
script it is a plain table in the summary's order.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import Aggregates
from pipeline.report.charts import Chart
from pipeline.report.run_files import RunFiles
from pipeline.report.tables import (
    IN_SAMPLE_WARNING,
    TICKER_COLUMNS,
    Table,
    config_table,
    distribution_table,
    headline_items,
    headline_notes,
    is_in_sample,
    portfolio_table,
    problem_table,
    reason_table,
    run_facts,
    ticker_frame,
    ticker_table,
    versions_table,
    warning_table,
)

_CSS = """
:root { --ink: #1d2329; --muted: #5b6670; --line: #d8dee4; --band: #f4f6f8;
        --good: #1a7f37; --bad: #b3261e; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 {
  font-size: 19px;
  margin: 36px 0 10px;
  padding-bottom: 4px;
  border-bottom: 1px solid var(--line);
}
h3 { font-size: 15px; margin: 20px 0 8px; }
.meta { color: var(--muted); margin: 0 0 14px; }
nav { font-size: 13px; margin-bottom: 8px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
.banner { border: 2px solid #c77700; background: #fff4e0; padding: 12px 16px; margin: 16px 0;
          border-radius: 6px; font-size: 15px; }
.banner strong { color: #8a4b00; }
.cards {
  display: grid;
  grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 10px;
}
.card {
  border: 1px solid var(--line);
  border-radius: 6px;
  padding: 10px 14px;
  background: var(--band);
}
.card .label {
  color: var(--muted);
  font-size: 12px;
  text-transform: uppercase;
  letter-spacing: .03em;
}
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 12.5px; }
.notes { color: var(--muted); font-size: 13px; padding-left: 18px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td {
  padding: 4px 8px;
  border-bottom: 1px solid var(--line);
  text-align: right;
  white-space: nowrap;
}
th { background: var(--band); font-weight: 600; vertical-align: bottom; white-space: normal; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; white-space: normal; }
tr.failed td { background: #fdecea; }
tr.skipped td { color: var(--muted); }
td.win { color: var(--good); }
td.loss { color: var(--bad); }
.scroll { overflow: auto; max-height: 75vh; border: 1px solid var(--line); border-radius: 6px; }
.scroll table { width: 100%; }
.scroll thead th { position: sticky; top: 0; z-index: 1; }
th button { font: inherit; font-weight: 600; color: inherit; background: none; border: 0;
            padding: 0; cursor: pointer; text-align: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: 10px; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; }
.hint { color: var(--muted); font-size: 12.5px; margin: 4px 0 8px; }
.empty { color: var(--muted); font-style: italic; }
"""

# Sorts tables of class "sortable" on a header click; blank cells stay last either way.
_SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-value");
    if (raw === null) { return cell.textContent.trim().toLowerCase(); }
    return raw === "" ? null : parseFloat(raw);
  }
  function compare(a, b, descending) {
    if (a === b) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    var order = a < b ? -1 : 1;
    return descending ? -order : order;
  }
  function sortBy(table, header, column) {
    var descending = header.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, key: key(row.cells[column]), index: index };
    });
    rows.sort(function (a, b) {
      return compare(a.key, b.key, descending) || a.index - b.index;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = header.textContent;
      button.title = "Sort by " + header.textContent;
      header.textContent = "";
      header.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, header, column); });
    });
    var hint = document.getElementById("sort-hint");
    if (hint) { hint.textContent = "Click a column heading to sort; click again to reverse."; }
  });
})();
"""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _tag(name: str, content: str, **attributes: str) -> str:
    attrs = "".join(f' {key.rstrip("_")}="{escape(value)}"' for key, value in attributes.items())
    return f"<{name}{attrs}>{content}</{name}>"


def render_table(table: Table, text_columns: Iterable[int] = (), css_class: str = "") -> str:
    """A plain table; cells in `text_columns` are left-aligned and may wrap."""
    if not table.rows:
        return '<p class="empty">None.</p>'
    text = set(text_columns)

    def cell(tag: str, index: int, value: str) -> str:
        attributes = {"class_": "text"} if index in text else {}
        return _tag(tag, escape(value), **attributes)

    head = "".join(cell("th", i, value) for i, value in enumerate(table.header))
    thead = f"<thead><tr>{head}</tr></thead>" if any(table.header) else ""
    body = "".join(
        "<tr>" + "".join(cell("td", i, value) for i, value in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    class_attr = f' class="{escape(css_class)}"' if css_class else ""
    return f"<table{class_attr}>{thead}<tbody>{body}</tbody></table>"


def _sort_value(value: Any) -> str:
    """The raw number behind a cell for the sort script; empty for a missing value."""
    return "" if fmt.is_missing(value) else repr(float(value))


def render_ticker_table(summary: pd.DataFrame) -> str:
    """Every requested ticker with its figures, sortable; each cell carries its raw value."""
    if summary.empty:
        return '<p class="empty">No tickers.</p>'
    frame, table = ticker_frame(summary), ticker_table(summary)
    # A non-breaking hyphen keeps "p-value" on one line when a heading wraps.
    titles = [escape(title).replace("-", "\u2011") for title in table.header]
    head = "".join(
        _tag("th", title, class_="text") if i < 2 else _tag("th", title)
        for i, title in enumerate(titles)
    )
    rows = []
    for (_, raw), cells in zip(frame.iterrows(), table.rows, strict=True):
        numbers = "".join(
            _number_cell(column, raw, text)
            for column, text in zip(TICKER_COLUMNS, cells[2:], strict=True)
        )
        rows.append(
            f'<tr class="{escape(raw["status"])}">'
            f'<td class="text">{escape(cells[0])}</td><td class="text">{escape(cells[1])}</td>'
            f"{numbers}</tr>"
        )
    return (
        '<p class="hint"><span id="sort-hint">In the order the tickers were requested.</span> '
        "Cumulative returns in green beat buy &amp; hold, in red they did not.</p>"
        '<div class="scroll"><table class="sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _number_cell(column: str, raw: pd.Series, text: str) -> str:
    css = ""
    if column in ("cum_return", "cum_return_net") and not fmt.is_missing(raw[column]):
        css = ' class="win"' if raw[column] > raw["buy_hold"] else ' class="loss"'
    return f'<td data-value="{escape(_sort_value(raw[column]))}"{css}>{escape(text)}</td>'


def render_headline(agg: Aggregates) -> str:
    cards = "".join(
        '<div class="card">'
        f'<div class="label">{escape(item.label)}</div>'
        f'<div class="value">{escape(item.value)}</div>'
        f'<div class="detail">{escape(item.detail)}</div></div>'
        for item in headline_items(agg)
    )
    notes = "".join(f"<li>{escape(note)}</li>" for note in headline_notes(agg))
    return (
        f'<div class="cards">{cards}</div>'
        f"<h3>Equal-weight portfolio</h3>{render_table(portfolio_table(agg), (0, 6))}"
        f"<h3>Across tickers</h3>{render_table(distribution_table(agg))}"
        f'<ul class="notes">{notes}</ul>'
    )


def render_charts(charts: Sequence[Chart]) -> str:
    return "".join(
        f'<figure><img src="{png_data_uri(chart.png)}" alt="{escape(chart.title)}" '
        f'width="990" height="495"><figcaption>{escape(chart.title)} '
        f"({escape(chart.file_name)})</figcaption></figure>"
        for chart in charts
    )


def render_problems(run: RunFiles, agg: Aggregates) -> str:
    if not agg.reasons:
        return '<p class="empty">Every ticker finished ok.</p>'
    return (
        f"<h3>By reason</h3>{render_table(reason_table(agg), text_columns=(1, 3))}"
        f"<h3>Each ticker</h3>{render_table(problem_table(run.summary), text_columns=(0, 1, 2))}"
    )


def render_run(run: RunFiles) -> str:
    return (
        f"{render_table(run_facts(run.manifest), text_columns=(1,))}"
        f"<h3>Config</h3>{render_table(config_table(run.manifest), text_columns=(1,))}"
        f"<h3>Package versions</h3>{render_table(versions_table(run.manifest), (0, 1))}"
    )


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{content}</section>'


_SECTIONS = (
    ("headline", "Headline figures"),
    ("charts", "Charts"),
    ("tickers", "Per ticker"),
    ("problems", "Failed and skipped tickers"),
    ("warnings", "Data-quality warnings"),
    ("run", "Run and config"),
)


def render_html(run: RunFiles, agg: Aggregates, charts: Sequence[Chart]) -> str:
    """The whole page as one string."""
    contents = {
        "headline": render_headline(agg),
        "charts": render_charts(charts),
        "tickers": render_ticker_table(run.summary),
        "problems": render_problems(run, agg),
        "warnings": render_table(warning_table(run.manifest), text_columns=(1,)),
        "run": render_run(run),
    }
    nav = "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in _SECTIONS)
    body = "".join(_section(a, title, contents[a]) for a, title in _SECTIONS)
    banner = (
        f'<div class="banner" role="alert"><strong>{escape(IN_SAMPLE_WARNING)}</strong></div>'
        if is_in_sample(run.manifest)
        else ""
    )
    name = escape(run.run_dir.name)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Backtest report {name}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>Backtest report</h1><p class="meta">{escape(_subtitle(run, agg))}</p>'
        f"{banner}<nav>{nav}</nav>{body}</main><script>{_SORT_SCRIPT}</script></body></html>\n"
    )


def _subtitle(run: RunFiles, agg: Aggregates) -> str:
    span = agg.portfolio_strategy
    dates = f"{span.first_date} to {span.last_date}" if span.first_date else "no evaluation days"
    return (
        f"{run.run_dir.name} · mode {run.mode} · {agg.n_tickers} tickers · {dates} · "
        f"config {run.manifest.get('config_hash', fmt.MISSING)} · "
        f"finished {run.manifest.get('finished_at', fmt.MISSING)}"
    )

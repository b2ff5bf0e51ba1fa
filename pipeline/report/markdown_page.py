"""report.md: the headline figures and tables as GitHub-flavoured Markdown, for pull requests
and chat. The numbers are the same formatted strings as report.html's (pipeline.report.tables).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pipeline.report.aggregates import Aggregates
from pipeline.report.charts import Chart
from pipeline.report.next_session import next_session
from pipeline.report.quality_section import quality_summary
from pipeline.report.run_files import RunFiles
from pipeline.report.statistics_section import statistics_markdown_parts
from pipeline.report.tables import (
    IN_SAMPLE_WARNING,
    Table,
    distribution_table,
    headline_items,
    headline_notes,
    is_in_sample,
    portfolio_table,
    problem_table,
    reason_table,
    ticker_table,
    versions_table,
    warning_table,
)

# Longer per-ticker tables are folded away (GitHub renders <details>; plain viewers show all).
FOLD_TICKERS_ABOVE = 20


def escape_cell(value: str) -> str:
    """A string made safe for one table cell: no HTML tag, no cell break, no line break.

    Only < and > become entities: GitHub shows them as typed, and "&" stays readable in chat.
    """
    text = " ".join(str(value).split()).replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "\\`")


def render_table(table: Table, text_columns: Collection[int] = (0,)) -> str:
    """A GFM table; `text_columns` are left-aligned, the others (numbers) right-aligned."""
    if not table.rows:
        return "None."
    align = ["---" if i in text_columns else "---:" for i in range(len(table.header))]
    lines = [
        "| " + " | ".join(escape_cell(cell) for cell in table.header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(escape_cell(cell) for cell in row) + " |" for row in table.rows),
    ]
    return "\n".join(lines)


def render_headline(agg: Aggregates) -> str:
    rows = tuple(
        (item.label, item.value, "; ".join(filter(None, (item.beside, item.detail))))
        for item in headline_items(agg)
    )
    table = render_table(Table(("figure", "value", "context"), rows), text_columns=(0, 2))
    notes = "\n".join(f"- {escape_cell(note)}" for note in headline_notes(agg))
    return f"{table}\n\n{notes}"


def render_ticker_table(run: RunFiles, cost_bps: float = 0.0) -> str:
    table = render_table(
        ticker_table(run.summary, cost_bps, run.mode, run.signals), text_columns=(0, 1)
    )
    if len(run.summary) <= FOLD_TICKERS_ABOVE:
        return table
    summary_line = f"All {len(run.summary)} tickers"
    return f"<details><summary>{summary_line}</summary>\n\n{table}\n\n</details>"


def render_charts(charts: Sequence[Chart]) -> str:
    if not charts:
        return "No ticker finished ok: there is nothing to draw."
    return "\n\n".join(f"![{escape_cell(c.title)}]({c.file_name})" for c in charts)


def next_session_parts(run: RunFiles) -> list[str]:
    """The "Next session" section: counts, stale tickers, one row per ok ticker."""
    section = next_session(run.signals)
    if section is None:
        return []
    counts = (
        f"For the session after {escape_cell(section.as_of)}: **{section.long} long, "
        f"{section.flat} flat, {section.short} short** of {section.total} tickers."
    )
    parts = ["## Next session", counts]
    if section.in_sample:
        parts.append("> In-sample models: these describe the past, not a forecast.")
    if section.stale:
        parts.append(
            f"Stale (last price older than the universe's latest day): "
            f"{escape_cell(', '.join(section.stale))}."
        )
    header = tuple(section.rows[0])
    rows = tuple(tuple(str(row[column]) for column in header) for row in section.rows)
    parts.append(render_table(Table(header, rows), text_columns=(0, 1)))
    return parts


def quality_parts(manifest: dict) -> list[str]:
    """The data-quality policy that ran and what it did, before the warnings themselves."""
    quality = quality_summary(manifest)
    if quality is None:
        return []
    parts = [escape_cell(quality.line)]
    if quality.repairs.rows:
        parts.append(render_table(quality.repairs, text_columns=(0, 1, 2)))
    return parts


def render_markdown(run: RunFiles, agg: Aggregates, charts: Sequence[Chart]) -> str:
    """The whole report.md as one string."""
    manifest = run.manifest
    parts = [
        f"# Backtest report {escape_cell(run.run_dir.name)}",
        f"Mode **{escape_cell(run.mode)}**, {agg.n_tickers} tickers, config "
        f"`{escape_cell(manifest.get('config_hash', '?'))}`, finished "
        f"{escape_cell(manifest.get('finished_at', '?'))}.",
    ]
    if is_in_sample(manifest):
        parts.append(f"> **Warning:** {escape_cell(IN_SAMPLE_WARNING)}")
    parts += next_session_parts(run)
    parts += [
        "## Evidence of skill",
        *statistics_markdown_parts(run.summary, manifest, render_table),
        "## Headline figures",
        render_headline(agg),
        "### Equal-weight portfolio",
        render_table(portfolio_table(agg), text_columns=(0, 6)),
        "### Across tickers",
        render_table(distribution_table(agg)),
        "## Charts",
        render_charts(charts),
        "## Per ticker",
        render_ticker_table(run, agg.cost_bps),
        "## Failed and skipped tickers",
        render_table(reason_table(agg), text_columns=(0, 1, 3)),
        render_table(problem_table(run.summary), text_columns=(0, 1, 2)) if agg.reasons else "",
        "## Data-quality warnings",
        *quality_parts(manifest),
        render_table(warning_table(manifest), text_columns=(0, 1)),
        "## Package versions",
        ", ".join(f"{escape_cell(p)} {escape_cell(v)}" for p, v in versions_table(manifest).rows),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"

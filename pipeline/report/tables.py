"""What the reports say, as rows of formatted strings: report.html and report.md lay out the same
rows, so their figures always agree. Pure functions of the summary, manifest and aggregates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import (
    DISTRIBUTION_COLUMNS,
    PORTFOLIO_DEFINITION,
    SHORT_HISTORY_DAYS,
    Aggregates,
    PortfolioStats,
    bh_q_values,
)
from pipeline.report.run_files import config_value, flatten

IN_SAMPLE_WARNING = (
    "In-sample run: the model is scored on the same rows it was trained on. These figures "
    "describe how well it fits the past; they are not a forecast and say nothing about how it "
    "would have done on days it had not seen."
)
TICKER_COLUMNS: tuple[str, ...] = (
    "n_days",
    "accuracy",
    "majority_rate",
    "p_value",
    "q_value",
    "cum_return",
    "cum_return_net",
    "buy_hold",
    "sharpe",
    "max_drawdown",
    "turnover",
)
DISTRIBUTION_STATS: tuple[str, ...] = ("mean", "median", "q1", "q3", "min", "max")


@dataclass(frozen=True)
class HeadlineItem:
    label: str
    value: str
    detail: str


@dataclass(frozen=True)
class Table:
    """A header and rows of cells, all strings already formatted."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def is_in_sample(manifest: dict[str, Any]) -> bool:
    """The config's backtest.mode is in_sample: the report must say it is not a forecast."""
    return config_value(manifest, "backtest", "mode") == "in_sample"


def headline_items(agg: Aggregates) -> list[HeadlineItem]:
    """The figures a reader wants first, each with one line of context."""
    counts, accuracy = agg.counts, agg.distributions["accuracy"]
    strategy, holding = agg.portfolio_strategy, agg.portfolio_buy_hold
    net = agg.portfolio_strategy_net
    return [
        HeadlineItem(
            "Tickers ok",
            f"{counts['ok']} of {agg.n_tickers}",
            f"{counts['skipped']} skipped, {counts['failed']} failed",
        ),
        HeadlineItem(
            "Median accuracy",
            fmt.percent_fine(accuracy.median),
            f"quartiles {fmt.percent_fine(accuracy.q1)} to {fmt.percent_fine(accuracy.q3)}; "
            f"mean majority-class rate {fmt.percent_fine(agg.mean_majority_rate)}",
        ),
        HeadlineItem(
            "Beat buy & hold",
            fmt.percent(agg.share_beat_buy_hold),
            f"{fmt.percent(agg.share_beat_buy_hold_net)} net of {agg.cost_bps:g} bps costs",
        ),
        HeadlineItem(
            "Significantly above majority class",
            fmt.percent(agg.share_significant),
            f"{agg.n_significant} of {agg.n_tested} tickers, Benjamini-Hochberg at a "
            f"{agg.significance_level:.0%} false discovery rate",
        ),
        HeadlineItem(
            "Portfolio cum return",
            f"{fmt.multiple(strategy.cum_return)}x",
            f"buy & hold {fmt.multiple(holding.cum_return)}x"
            + (f"; net of costs {fmt.multiple(net.cum_return)}x" if net else ""),
        ),
        HeadlineItem(
            "Portfolio Sharpe",
            fmt.ratio(strategy.sharpe),
            f"buy & hold {fmt.ratio(holding.sharpe)}"
            + (f"; net of costs {fmt.ratio(net.sharpe)}" if net else ""),
        ),
        HeadlineItem(
            "Portfolio max drawdown",
            fmt.percent(strategy.max_drawdown),
            f"buy & hold {fmt.percent(holding.max_drawdown)}"
            + (f"; net of costs {fmt.percent(net.max_drawdown)}" if net else ""),
        ),
    ]


def headline_notes(agg: Aggregates) -> list[str]:
    """Caveats that change how the headline figures should be read."""
    notes = [f"Portfolio: {PORTFOLIO_DEFINITION}"]
    if agg.n_short_history:
        notes.append(
            f"{agg.n_short_history} ok ticker(s) have fewer than {SHORT_HISTORY_DAYS} evaluation "
            "days; their accuracy, Sharpe ratio and drawdown rest on little data."
        )
    if agg.counts["ok"] == 0:
        notes.append("No ticker finished ok: there are no figures to aggregate.")
    return notes


def _portfolio_cells(stats: PortfolioStats) -> tuple[str, ...]:
    return (
        f"{fmt.multiple(stats.cum_return)}x",
        fmt.percent(stats.annual_return),
        fmt.ratio(stats.sharpe),
        fmt.percent(stats.max_drawdown),
        str(stats.n_days),
        f"{stats.first_date or fmt.MISSING} to {stats.last_date or fmt.MISSING}",
    )


def portfolio_table(agg: Aggregates) -> Table:
    """One row per series (strategy, net of costs when known, buy & hold)."""
    series = [("strategy", agg.portfolio_strategy)]
    if agg.portfolio_strategy_net is not None:
        series.append((f"strategy net of {agg.cost_bps:g} bps", agg.portfolio_strategy_net))
    series.append(("buy & hold", agg.portfolio_buy_hold))
    header = (
        "equal-weight portfolio",
        "cum return",
        "annual return",
        "Sharpe",
        "max drawdown",
        "days",
        "dates",
    )
    return Table(header, tuple((name, *_portfolio_cells(stats)) for name, stats in series))


def distribution_table(agg: Aggregates) -> Table:
    """Mean, median, quartiles and extremes of each figure over the ok tickers."""
    rows = []
    for column in DISTRIBUTION_COLUMNS:
        stats = agg.distributions[column]
        cells = (fmt.format_column(column, getattr(stats, stat)) for stat in DISTRIBUTION_STATS)
        rows.append((fmt.column_heading(column), *cells))
    header = ("over ok tickers", "mean", "median", "lower quartile", "upper quartile", "min", "max")
    return Table(header, tuple(rows))


def ticker_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with each ok ticker's Benjamini-Hochberg q-value added."""
    return summary.assign(q_value=bh_q_values(summary))


def ticker_table(summary: pd.DataFrame) -> Table:
    frame = ticker_frame(summary)
    header = ("ticker", "status", *(fmt.column_heading(c) for c in TICKER_COLUMNS))
    rows = tuple(
        (
            str(row["ticker"]),
            str(row["status"]),
            *(fmt.format_column(c, row[c]) for c in TICKER_COLUMNS),
        )
        for _, row in frame.iterrows()
    )
    return Table(header, rows)


def problem_table(summary: pd.DataFrame) -> Table:
    """Failed tickers first, then skipped ones, each with its full reason."""
    problems = summary[summary["status"] != "ok"]
    problems = problems.sort_values(
        "status", key=lambda s: s.map({"failed": 0, "skipped": 1}), kind="stable"
    )
    rows = tuple(
        (str(row.ticker), str(row.status), str(row.reason)) for row in problems.itertuples()
    )
    return Table(("ticker", "status", "reason"), rows)


def reason_table(agg: Aggregates) -> Table:
    """Skip and failure reasons grouped by kind, with how many tickers and which."""
    rows = tuple(
        (group.status, group.kind, str(len(group.tickers)), ", ".join(group.tickers))
        for group in agg.reasons
    )
    return Table(("status", "reason", "tickers", "which"), rows)


def warning_table(manifest: dict[str, Any]) -> Table:
    """One row per data-quality warning (manifest["data_warnings"]: ticker -> list of notes)."""
    warnings = manifest.get("data_warnings") or {}
    rows = tuple(
        (str(ticker), str(note))
        for ticker, notes in warnings.items()
        for note in ([notes] if isinstance(notes, str) else notes)
    )
    return Table(("ticker", "warning"), rows)


def config_table(manifest: dict[str, Any]) -> Table:
    """The resolved config as dotted keys and values; lists written comma-separated."""
    rows = tuple(
        (key, _config_text(value)) for key, value in flatten(manifest.get("config") or {}).items()
    )
    return Table(("key", "value"), rows)


def _config_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return json.dumps(value)


def versions_table(manifest: dict[str, Any]) -> Table:
    versions = manifest.get("versions") or {}
    return Table(("package", "version"), tuple((str(k), str(v)) for k, v in versions.items()))


def run_facts(manifest: dict[str, Any]) -> Table:
    """When and how the run was made: times, stage timings, executor, cache counts."""
    timings = manifest.get("timings") or {}
    execution = manifest.get("execution") or {}
    cache = manifest.get("cache") or {}
    rows = [
        ("mode", str(config_value(manifest, "backtest", "mode", default=fmt.MISSING))),
        ("config hash", str(manifest.get("config_hash", fmt.MISSING))),
        ("started", str(manifest.get("started_at", fmt.MISSING))),
        ("finished", str(manifest.get("finished_at", fmt.MISSING))),
        ("seconds per stage", _pairs(timings)),
        ("execution", _pairs(execution)),
        ("cache", _pairs(cache)),
    ]
    return Table(("", ""), tuple(rows))


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in mapping.items()) or fmt.MISSING

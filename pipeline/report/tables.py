"""What the reports say, as rows of formatted strings: report.html and report.md lay out the same
rows, so their figures always agree. Pure functions of the summary, manifest and aggregates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import (
    DISTRIBUTION_COLUMNS,
    PORTFOLIO_COST_SENTENCE,
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
# Headings of the cumulative returns when costs were charged: after costs, then before.
COST_HEADINGS: dict[str, str] = {
    "cum_return_net": "after costs (x)",
    "cum_return": "before costs (x)",
}


@dataclass(frozen=True)
class HeadlineItem:
    """One headline card: `beside` is a second figure shown small next to the value (the one
    before costs beside the one after costs)."""

    label: str
    value: str
    detail: str
    beside: str = ""


@dataclass(frozen=True)
class Table:
    """A header and rows of cells, all strings already formatted."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def is_in_sample(manifest: dict[str, Any]) -> bool:
    """The config's backtest.mode is in_sample: the report must say it is not a forecast."""
    return config_value(manifest, "backtest", "mode") == "in_sample"


def charges_costs(agg: Aggregates) -> bool:
    """Costs were charged (cost_bps > 0) and the net figures exist: they lead the report."""
    return agg.cost_bps > 0 and agg.portfolio_strategy_net is not None


def cost_words(agg: Aggregates) -> str:
    return f"{agg.cost_bps:g} bps per unit of position change"


def headline_items(agg: Aggregates) -> list[HeadlineItem]:
    """The figures a reader wants first, each with one line of context.

    With costs the portfolio's figures after costs are the values, and the figures before
    costs stand beside them; without costs nothing is said about costs."""
    counts, accuracy = agg.counts, agg.distributions["accuracy"]
    holding = agg.portfolio_buy_hold
    return [
        HeadlineItem(
            "Tickers ok",
            f"{counts['ok']} of {agg.n_tickers}",
            f"{counts['skipped']} skipped, {counts['failed']} failed"
            + (
                f"; {agg.n_short_history} with less than a year of evaluation days"
                if agg.n_short_history
                else ""
            ),
        ),
        HeadlineItem(
            "Median accuracy",
            fmt.percent_fine(accuracy.median),
            f"quartiles {fmt.percent_fine(accuracy.q1)} to {fmt.percent_fine(accuracy.q3)}; "
            f"mean majority-class rate {fmt.percent_fine(agg.mean_majority_rate)}",
        ),
        _net_first(
            agg,
            "Beat buy & hold",
            fmt.percent(agg.share_beat_buy_hold_net),
            fmt.percent(agg.share_beat_buy_hold),
            "share of ok tickers whose strategy ended above buy & hold",
        ),
        HeadlineItem(
            "Significantly above majority class",
            fmt.percent(agg.share_significant),
            f"{agg.n_significant} of {agg.n_tested} tickers, Benjamini-Hochberg at a "
            f"{agg.significance_level:.0%} false discovery rate",
        ),
        *_portfolio_items(agg, holding),
    ]


def _portfolio_items(agg: Aggregates, holding: PortfolioStats) -> list[HeadlineItem]:
    gross = agg.portfolio_strategy
    net = agg.portfolio_strategy_net or gross
    return [
        _net_first(
            agg,
            "Portfolio cum return",
            _times(net.cum_return),
            _times(gross.cum_return),
            f"buy & hold {_times(holding.cum_return)}",
        ),
        _net_first(
            agg,
            "Portfolio Sharpe",
            fmt.ratio(net.sharpe),
            fmt.ratio(gross.sharpe),
            f"buy & hold {fmt.ratio(holding.sharpe)}",
        ),
        _net_first(
            agg,
            "Portfolio max drawdown",
            fmt.percent(net.max_drawdown),
            fmt.percent(gross.max_drawdown),
            f"buy & hold {fmt.percent(holding.max_drawdown)}",
        ),
    ]


def _times(value: float) -> str:
    """A value of 1 invested with its "x"; the missing mark alone when there is none."""
    text = fmt.multiple(value)
    return text if text == fmt.MISSING else f"{text}x"


def _net_first(agg: Aggregates, label: str, net: str, gross: str, context: str) -> HeadlineItem:
    """A card led by the figure after costs, the one before costs beside it; without costs
    the one figure and no word about costs."""
    if not charges_costs(agg) or net == gross == fmt.MISSING:
        return HeadlineItem(label, gross, context)
    return HeadlineItem(
        f"{label} after costs",
        net,
        f"{context}; costs {cost_words(agg)}",
        beside=f"{gross} before costs",
    )


def headline_notes(agg: Aggregates) -> list[str]:
    """Caveats that change how the headline figures should be read."""
    definition = PORTFOLIO_DEFINITION
    if not charges_costs(agg):
        definition = definition.replace(PORTFOLIO_COST_SENTENCE, "")
    notes = [f"Portfolio: {definition}"]
    if agg.n_short_history:
        named = short_history_names(agg)
        notes.append(
            f"{agg.n_short_history} ok ticker(s) have fewer than {SHORT_HISTORY_DAYS} evaluation "
            f"days (a year of sessions){': ' + named if named else ''}. Their accuracy, Sharpe "
            "ratio and drawdown rest on little data: they count in the means, medians and "
            "quartiles, but not in the min and max across tickers nor in the best and worst "
            "tickers' chart."
        )
    if agg.counts["ok"] == 0:
        notes.append(
            "No ticker finished ok: there are no figures to aggregate and no charts to draw."
        )
    return notes


NAMES_SHOWN = 30  # tickers named in a note; the rest are counted


def short_history_names(agg: Aggregates, shown: int = NAMES_SHOWN) -> str:
    """The short-history tickers by name (the first `shown`, then how many more)."""
    tickers = list(agg.short_history_tickers)
    more = len(tickers) - shown
    return ", ".join(tickers[:shown]) + (f" and {more} more" if more > 0 else "")


def has_short_history(agg: Aggregates) -> bool:
    """Some ok tickers have less than a year, and the run recorded which (newer manifests)."""
    return bool(agg.n_short_history and agg.full_history_distributions)


def _portfolio_cells(stats: PortfolioStats) -> tuple[str, ...]:
    return (
        _times(stats.cum_return),
        fmt.percent(stats.annual_return),
        fmt.ratio(stats.sharpe),
        fmt.percent(stats.max_drawdown),
        str(stats.n_days),
        f"{stats.first_date or fmt.MISSING} to {stats.last_date or fmt.MISSING}",
    )


def portfolio_table(agg: Aggregates) -> Table:
    """One row per series: after costs first when costs were charged, then before costs, then
    buy & hold."""
    if charges_costs(agg):
        series = [
            (f"strategy after costs ({agg.cost_bps:g} bps)", agg.portfolio_strategy_net),
            ("strategy before costs", agg.portfolio_strategy),
        ]
    else:
        series = [("strategy", agg.portfolio_strategy)]
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
    """Mean, median, quartiles and extremes of each figure over the ok tickers; with costs the
    cumulative return after costs comes before the one before costs, without them it is left
    out (it is the same figure)."""
    rows = []
    short = has_short_history(agg)
    for column in return_columns(agg.cost_bps, DISTRIBUTION_COLUMNS):
        stats = agg.distributions[column]
        extremes = agg.full_history_distributions[column] if short else stats
        values = [getattr(stats, stat) for stat in DISTRIBUTION_STATS[:-2]]
        values += [extremes.min, extremes.max]
        cells = (fmt.format_column(column, value) for value in values)
        rows.append((cost_heading(column, agg.cost_bps), *cells))
    extreme_heads = (
        (f"min (\u2265 {SHORT_HISTORY_DAYS} days)", f"max (\u2265 {SHORT_HISTORY_DAYS} days)")
        if short
        else ("min", "max")
    )
    header = ("over ok tickers", "mean", "median", "lower quartile", "upper quartile")
    return Table((*header, *extreme_heads), tuple(rows))


def return_columns(cost_bps: float, columns: Sequence[str]) -> tuple[str, ...]:
    """`columns` with cum_return_net moved before cum_return when costs were charged, and
    dropped when they were not."""
    if cost_bps <= 0:
        return tuple(c for c in columns if c != "cum_return_net")
    ordered = [c for c in columns if c != "cum_return_net"]
    if "cum_return_net" in columns and "cum_return" in ordered:
        ordered.insert(ordered.index("cum_return"), "cum_return_net")
    return tuple(ordered)


def cost_heading(column: str, cost_bps: float) -> str:
    """A column's heading, saying before or after costs when costs were charged."""
    if cost_bps > 0 and column in COST_HEADINGS:
        return COST_HEADINGS[column]
    return fmt.column_heading(column)


# In holdout mode, where each ticker's split falls: the first day of the test rows (the day the
# first out-of-sample position is held) and how many rows the model was fit on.
HOLDOUT_COLUMNS: tuple[str, ...] = ("test_from", "train_rows")
HOLDOUT_HEADINGS: dict[str, str] = {
    "test_from": "test from",
    "train_rows": "train rows",
    "n_days": "test days",
}


def ticker_columns(cost_bps: float, mode: str = "") -> tuple[str, ...]:
    """The per-ticker table's columns after ticker and status, in order."""
    columns = return_columns(cost_bps, TICKER_COLUMNS)
    return (*HOLDOUT_COLUMNS, *columns) if mode == "holdout" else columns


def ticker_heading(column: str, cost_bps: float, mode: str = "") -> str:
    if mode == "holdout" and column in HOLDOUT_HEADINGS:
        return HOLDOUT_HEADINGS[column]
    return cost_heading(column, cost_bps)


def ticker_frame(summary: pd.DataFrame, signals: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary with each ok ticker's Benjamini-Hochberg q-value added, its first test day
    (test_from) and the rows its last model was fit on (train_rows, from the next-session
    signals; missing without them)."""
    frame = summary.assign(q_value=bh_q_values(summary))
    train_rows = pd.Series(dtype="float64")
    if signals is not None and {"ticker", "train_rows"} <= set(signals.columns):
        train_rows = signals.drop_duplicates("ticker").set_index("ticker")["train_rows"]
    ok = frame["status"] == "ok"
    frame["train_rows"] = frame["ticker"].map(train_rows).where(ok).astype("float64")
    frame["test_from"] = frame["first_day"].where(ok)
    return frame


def ticker_table(
    summary: pd.DataFrame,
    cost_bps: float = 0.0,
    mode: str = "",
    signals: pd.DataFrame | None = None,
) -> Table:
    frame, columns = ticker_frame(summary, signals), ticker_columns(cost_bps, mode)
    header = ("ticker", "status", *(ticker_heading(c, cost_bps, mode) for c in columns))
    rows = tuple(
        (
            str(row["ticker"]),
            str(row["status"]),
            *(fmt.format_column(c, row[c]) for c in columns),
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

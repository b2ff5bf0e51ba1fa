"""What `pipeline run` prints: the per-ticker table, then the headline an analyst reads first.

Pure functions of the summary frame and the manifest, returning text; the CLI prints it. Net
figures come before gross ones whenever the run charged costs; a missing figure prints as "-";
reasons are cut to a readable width (the full text is in summary.csv and the report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.display import printable
from pipeline.report.aggregates import SHORT_HISTORY_DAYS

MISSING = "-"
TABLE_ROWS = 30
REASON_WIDTH = 56
MIN_REASON_WIDTH = 24
# Tickers named in one headline line before "and N more".
NAMES_SHOWN = 8
# Reason groups listed by --quiet, the largest first.
GROUPS_SHOWN = 5


def cut(text: str, width: int = REASON_WIDTH) -> str:
    """`text` on one line, at most `width` characters, '...' marking a cut."""
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= width else flat[: max(width - 3, 0)].rstrip() + "..."


def results_table(
    summary: pd.DataFrame, cost_bps: float, width: int = 120, max_rows: int = TABLE_ROWS
) -> str:
    """The first `max_rows` tickers, one line each; net before gross when costs were charged.
    Reasons are cut so that a line fits `width` characters (never below MIN_REASON_WIDTH)."""
    if summary.empty:
        return "(no tickers)"
    columns = _table_columns(cost_bps)
    shown = summary.head(max_rows)
    cells = [
        [fmt(row.get(source), kind) for _, source, kind in columns] for _, row in shown.iterrows()
    ]
    fixed = sum(
        max([len(header), *(len(row[i]) for row in cells)]) + 2
        for i, (header, _, _) in enumerate(columns[:-1])
    )
    room = max(width - fixed - 1, MIN_REASON_WIDTH)
    for row in cells:
        row[-1] = cut(row[-1], room)
    headers = [header for header, _, _ in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    left = [kind in ("text", "reason") for _, _, kind in columns]
    lines = [_align(headers, widths, left)] + [_align(row, widths, left) for row in cells]
    if len(summary) > len(shown):
        lines.append(f"... {len(summary) - len(shown)} more tickers in summary.csv")
    return "\n".join(line.rstrip() for line in lines)


def _table_columns(cost_bps: float) -> list[tuple[str, str, str]]:
    """(header, summary column, kind) in display order."""
    returns = (
        [("net", "cum_return_net", "x"), ("gross", "cum_return", "x")]
        if cost_bps > 0
        else [("cum_return", "cum_return", "x")]
    )
    return [
        ("ticker", "ticker", "text"),
        ("status", "status", "text"),
        ("n_days", "n_days", "int"),
        ("accuracy", "accuracy", "share"),
        *returns,
        ("buy_hold", "buy_hold", "x"),
        ("sharpe" if cost_bps <= 0 else "sharpe_gross", "sharpe", "ratio"),
        ("reason", "reason", "reason"),
    ]


def _align(cells: Sequence[str], widths: Sequence[int], left: Sequence[bool]) -> str:
    return "  ".join(
        cell.ljust(width) if is_left else cell.rjust(width)
        for cell, width, is_left in zip(cells, widths, left, strict=True)
    )


def fmt(value: Any, kind: str = "ratio") -> str:
    """One cell: numbers to fixed digits, anything missing (None, NaN, NA, '') as '-'."""
    if kind == "reason":
        return cut(value) if _present(value) else ""
    if not _present(value):
        return MISSING
    if kind == "text":
        return printable(value, newlines=False)
    if kind == "int":
        return str(int(value))
    return f"{float(value):.4f}"


def _present(value: Any) -> bool:
    if value is None or value is pd.NA or (isinstance(value, str) and not value.strip()):
        return False
    try:
        return not (isinstance(value, float | int) and math.isnan(value))
    except TypeError:
        return True


def headline(
    summary: pd.DataFrame,
    manifest: Mapping[str, Any],
    report: Path | None,
    seconds: float | None = None,
) -> list[str]:
    """The lines an analyst reads first, in this order: counts (with the run's wall `seconds`,
    else the manifest's start-to-finish span), accuracy, the portfolio after costs against
    buy-and-hold, short histories, the next session, where the report is."""
    aggregates = manifest.get("aggregates") or {}
    counts = manifest["counts"]
    lines = [_counts_line(counts, manifest, seconds), _accuracy_line(aggregates, counts)]
    lines.append(_portfolio_line(aggregates, counts))
    verdict = (manifest.get("statistics") or {}).get("verdict")
    if verdict and verdict.get("headline"):
        lines.append(verdict["headline"])
    short = short_history_tickers(summary)
    if short:
        lines.append(
            f"{len(short)} ticker(s) with fewer than {SHORT_HISTORY_DAYS} evaluation days "
            f"(noisy figures): {names(short)}"
        )
    # The next session's positions (written by the signals stage) come right before the report.
    signals = manifest.get("signals") or {}
    if signals.get("as_of"):
        from pipeline.signals import format_signal_counts

        lines.append(format_signal_counts(signals))
    lines.append(f"report: {report}" if report is not None else "report: none written")
    return lines


def _counts_line(
    counts: Mapping[str, int], manifest: Mapping[str, Any], seconds: float | None
) -> str:
    mode = manifest["config"]["backtest"]["mode"]
    note = " (in-sample: describes the past, not a forecast)" if mode == "in_sample" else ""
    if seconds is None:
        seconds = _manifest_span(manifest)
    took = f"; {seconds:.1f} s" if seconds is not None else ""
    return (
        f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed; "
        f"mode {mode}{note}{took}"
    )


def _manifest_span(manifest: Mapping[str, Any]) -> float | None:
    """Seconds from the manifest's started_at to its finished_at (whole seconds), or None.

    Not the sum of its stage timings: the download and the backtest overlap."""
    try:
        started = datetime.fromisoformat(str(manifest["started_at"]))
        finished = datetime.fromisoformat(str(manifest["finished_at"]))
        span = (finished - started).total_seconds()
    except (KeyError, TypeError, ValueError):  # absent, unparsable, or naive against aware
        return None
    return span if span >= 0 else None


def _accuracy_line(aggregates: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    accuracy = ((aggregates.get("distributions") or {}).get("accuracy") or {}).get("median")
    if not counts["ok"] or accuracy is None:
        return f"accuracy: {MISSING} (no ticker ok)"
    majority = _num(aggregates.get("mean_majority_rate"), ".3f")
    line = f"accuracy: median {accuracy:.3f} against a majority rate of {majority}"
    tested = aggregates.get("n_tested")
    if tested:
        level = aggregates.get("significance_level") or 0.05
        line += f"; {aggregates.get('n_significant', 0)} of {tested} above it (BH {level:.0%})"
    return line


def _portfolio_line(aggregates: Mapping[str, Any], counts: Mapping[str, int]) -> str:
    gross = aggregates.get("portfolio_strategy") or {}
    hold = _num((aggregates.get("portfolio_buy_hold") or {}).get("cum_return"), ".3f")
    if not counts["ok"] or not gross.get("n_days"):
        return f"portfolio: {MISSING} (no ticker ok)"
    net = aggregates.get("portfolio_strategy_net")
    cost = aggregates.get("cost_bps") or 0.0
    gross_return = _num(gross.get("cum_return"), ".3f")
    gross_drawdown = _num(gross.get("max_drawdown"), ".1%")
    if net and cost > 0:
        return (
            f"portfolio net of {cost:g} bps: {_num(net.get('cum_return'), '.3f')}x "
            f"(gross {gross_return}x) vs buy-and-hold {hold}x; max drawdown "
            f"{_num(net.get('max_drawdown'), '.1%')} (gross {gross_drawdown})"
        )
    return (
        f"portfolio (no costs): {gross_return}x vs buy-and-hold {hold}x; "
        f"max drawdown {gross_drawdown}"
    )


def _num(value: Any, spec: str) -> str:
    return format(float(value), spec) if _present(value) else MISSING


def short_history_tickers(summary: pd.DataFrame) -> list[str]:
    """Ok tickers with fewer evaluation days than a year, in the summary's order."""
    ok = summary[summary["status"] == "ok"]
    days = pd.to_numeric(ok["n_days"], errors="coerce")
    return ok.loc[days < SHORT_HISTORY_DAYS, "ticker"].astype(str).tolist()


def names(tickers: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    head = ", ".join(tickers[:shown])
    return head + (f" and {len(tickers) - shown} more" if len(tickers) > shown else "")


def problem_lines(manifest: Mapping[str, Any]) -> list[str]:
    """Skipped and failed tickers grouped by the kind of reason: what --quiet shows of them."""
    groups = (manifest.get("aggregates") or {}).get("reasons") or []
    lines = [
        f"{group['status']} ({len(group['tickers'])}): {cut(group['kind'], 40)}: "
        f"{names(group['tickers'])}"
        for group in groups[:GROUPS_SHOWN]
    ]
    if len(groups) > GROUPS_SHOWN:
        lines.append(f"... {len(groups) - GROUPS_SHOWN} more kinds of reason in the report")
    return lines

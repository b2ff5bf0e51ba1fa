"""A Comparison of two runs as plain text, for a terminal or a cron mail: a verdict line first
(what changed, most consequential first), then config, data, tickers, run figures, per ticker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.report import formatting as fmt
from pipeline.report.compare import Comparison, ConfigChange, DataChange, same_value

MAX_LISTED = 12

HEADLINE_FORMATS: dict[str, tuple[Callable[[Any], str], Callable[[float, float], str]]] = {
    "count": (fmt.integer, lambda a, b: f"{b - a:+.0f}"),
    "share": (fmt.percent, lambda a, b: fmt.signed_points(b - a)),
    "share_fine": (fmt.percent_fine, lambda a, b: fmt.signed_points(b - a)),
    "multiple": (lambda v: f"{fmt.multiple(v)}x", lambda a, b: fmt.signed_percent(b / a - 1)),
    "ratio": (fmt.ratio, lambda a, b: fmt.signed_ratio(b - a)),
}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _listed(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def verdict(c: Comparison) -> str:
    """One line: what changed, most consequential first."""
    if c.nothing_changed:
        return "Nothing changed: same config, same data, same results for every ticker."
    parts = []
    if c.newly_failing:
        parts.append(f"{_plural(len(c.newly_failing), 'ticker')} newly failing")
    if c.changed_tickers:
        parts.append(f"results changed for {_plural(len(c.changed_tickers), 'ticker')}")
    if c.config_changed:
        relevant = sum(change.affects_results for change in c.config_changes)
        keys = _plural(len(c.config_changes), "key")
        parts.append(f"config changed ({keys}, {relevant} affecting results)")
    for label, changes in _data_kinds(c):
        if changes:
            parts.append(f"{label} changed for {_plural(len(_tickers(changes)), 'ticker')}")
    if c.tickers_added or c.tickers_dropped:
        parts.append(f"{len(c.tickers_added)} added, {len(c.tickers_dropped)} dropped tickers")
    if c.newly_ok:
        parts.append(f"{_plural(len(c.newly_ok), 'ticker')} newly ok")
    if c.other_status_changes:
        parts.append(f"{len(c.other_status_changes)} other status changes")
    if not c.changed_tickers and not c.status_changed:
        parts.append("results unchanged")
    return "Changed: " + "; ".join(parts) + "."


def _config_lines(c: Comparison) -> list[str]:
    if not c.config_changed:
        return [f"Config: unchanged ({c.config_hash_a})"]
    lines = [f"Config: changed ({c.config_hash_a} -> {c.config_hash_b})"]
    width = max((len(change.key) for change in c.config_changes), default=0)
    for change in c.config_changes:
        note = "" if change.affects_results else "   (does not affect results)"
        lines.append(f"  {change.key:<{width}}  {_change_text(change)}{note}")
    return lines


def _change_text(change: ConfigChange) -> str:
    before, after = change.before, change.after
    if isinstance(before, list) and isinstance(after, list):
        added = [item for item in after if item not in before]
        removed = [item for item in before if item not in after]
        reordered = "" if added or removed else ", reordered"
        counts = f"+{len(added)} -{len(removed)}{reordered}"
        return f"{_plural(len(before), 'item')} -> {len(after)} ({counts})"
    return f"{_value_text(before)} -> {_value_text(after)}"


def _value_text(value: Any, limit: int = 60) -> str:
    if value is None:
        text = "(absent)"
    elif isinstance(value, list):
        text = "[" + ", ".join(map(str, value)) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tickers(changes: Iterable[DataChange]) -> set[str]:
    return {change.ticker for change in changes}


def _data_kinds(c: Comparison) -> list[tuple[str, list[DataChange]]]:
    """Evaluation days (from the summaries) and prices (from fingerprints), apart: a config
    change moves the first, only new or revised prices move the second."""
    prices = [d for d in c.data_changes if d.field.startswith("fingerprint.")]
    days = [d for d in c.data_changes if not d.field.startswith("fingerprint.")]
    return [("evaluation days", days), ("prices", prices)]


def _change_groups(changes: list[DataChange], limit: int = 8) -> list[str]:
    """One line per (field, before, after), largest group first: a daily run's appended day
    reads as one line for all tickers."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for change in changes:
        key = (change.field, _value_text(change.before, 20), _value_text(change.after, 20))
        groups.setdefault(key, []).append(change.ticker)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    lines = [f"  {name}: {a} -> {b}  ({_listed(group, 6)})" for (name, a, b), group in ranked]
    if len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more"]
    return lines


def _data_lines(c: Comparison) -> list[str]:
    days, prices = (changes for _, changes in _data_kinds(c))
    lines = [
        f"Evaluation days: changed for {_plural(len(_tickers(days)), 'ticker')} ok in both runs"
        if days
        else "Evaluation days: unchanged (first day, last day and days of every common ticker)",
        *_change_groups(days),
    ]
    if not c.fingerprints_compared:
        lines.append("Prices: not compared (the manifests hold no fingerprints)")
    elif prices:
        lines.append(f"Prices: changed for {_plural(len(_tickers(prices)), 'ticker')}")
        lines += _change_groups(prices)
    else:
        lines.append("Prices: unchanged (fingerprints of every common ticker agree)")
    return lines


def _ticker_lines(c: Comparison) -> list[str]:
    lines = [
        f"Tickers: {len(c.tickers_added)} added"
        + (f" ({_listed(c.tickers_added)})" if c.tickers_added else "")
        + f", {len(c.tickers_dropped)} dropped"
        + (f" ({_listed(c.tickers_dropped)})" if c.tickers_dropped else "")
    ]
    for title, changes in (
        ("newly failing", c.newly_failing),
        ("newly ok", c.newly_ok),
        ("other status changes", c.other_status_changes),
    ):
        if changes:
            lines.append(f"  {title}:")
            lines += [
                f"    {s.ticker}: {s.before} -> {s.after}"
                + (f"  ({_value_text(s.reason, 70)})" if s.after != "ok" else "")
                for s in changes[:MAX_LISTED]
            ]
            if len(changes) > MAX_LISTED:
                lines.append(f"    ... and {len(changes) - MAX_LISTED} more")
    return lines


def _headline_lines(c: Comparison) -> list[str]:
    lines = [f"{'Run figures':<26}{'A':>12}{'B':>12}{'change':>14}"]
    for item in c.headline:
        show, delta = HEADLINE_FORMATS[item.kind]
        missing = fmt.is_missing(item.before) or fmt.is_missing(item.after)
        change = (
            fmt.MISSING
            if missing or same_value(item.before, item.after)
            else _delta(delta, item.before, item.after)
        )
        lines.append(f"  {item.label:<24}{show(item.before):>12}{show(item.after):>12}{change:>14}")
    return lines


def _delta(delta: Callable[[float, float], str], before: float, after: float) -> str:
    try:
        return delta(before, after)
    except ZeroDivisionError:
        return fmt.MISSING


def _metric_cell(row: Any, metric: str) -> str:
    before, after = getattr(row, f"{metric}_a"), getattr(row, f"{metric}_b")
    if metric == "accuracy":
        return (
            f"{fmt.percent_fine(before)} -> {fmt.percent_fine(after)} "
            f"({fmt.signed_points(after - before)})"
        )
    if metric == "cum_return":
        relative = after / before - 1 if before else math.nan
        return f"{fmt.multiple(before)} -> {fmt.multiple(after)} ({fmt.signed_percent(relative)})"
    return f"{fmt.ratio(before)} -> {fmt.ratio(after)} ({fmt.signed_ratio(after - before)})"


def _metric_lines(c: Comparison) -> list[str]:
    frame = c.metric_changes
    n_common = len(frame)
    changed = frame[frame["changed"]] if n_common else frame
    if changed.empty:
        return [
            f"Per ticker: no change in accuracy, cum return or Sharpe ({n_common} tickers ok "
            "in both runs)"
        ]
    lines = [
        f"Per ticker: {len(changed)} of {n_common} tickers ok in both runs changed; "
        "largest accuracy change first",
        f"  {'ticker':<8}  {'accuracy A -> B':<30}  {'cum return A -> B':<30}  Sharpe A -> B",
    ]
    for row in changed.head(MAX_LISTED).itertuples():
        lines.append(
            f"  {row.ticker:<8}  {_metric_cell(row, 'accuracy'):<30}  "
            f"{_metric_cell(row, 'cum_return'):<30}  {_metric_cell(row, 'sharpe')}"
        )
    if len(changed) > MAX_LISTED:
        lines.append(f"  ... and {len(changed) - MAX_LISTED} more")
    return lines


def format_comparison(c: Comparison) -> str:
    """The comparison as plain text: a verdict line first, then the details."""
    header = [
        "Comparing runs",
        f"  A  {c.run_a}  ({c.mode_a}, finished {c.finished_a or '?'}, config {c.config_hash_a})",
        f"  B  {c.run_b}  ({c.mode_b}, finished {c.finished_b or '?'}, config {c.config_hash_b})",
        "",
        verdict(c),
    ]
    sections = [
        _config_lines(c),
        _data_lines(c),
        _ticker_lines(c),
        _headline_lines(c),
        _metric_lines(c),
    ]
    body = ["\n".join(section) for section in sections]
    return "\n".join(header) + "\n\n" + "\n\n".join(body) + "\n"

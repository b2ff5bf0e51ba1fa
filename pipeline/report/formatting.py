"""How every report writes a number, so report.html, report.md and `compare` agree.

One formatter per kind of figure: shares as percentages, cumulative returns as the value of 1
invested (the summary's own unit: 1.25 means +25%), Sharpe ratios to two decimals. A missing
value (None or NaN) is written as MISSING.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

MISSING = "\u2013"  # an en dash


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and pd.NA are missing; anything else (a string too) is not."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _guarded(format_value: Callable[[float], str]) -> Callable[[Any], str]:
    def format_or_missing(value: Any) -> str:
        try:
            return MISSING if is_missing(value) else format_value(float(value))
        except (TypeError, ValueError):
            return MISSING

    format_or_missing.__name__ = format_value.__name__
    format_or_missing.__doc__ = format_value.__doc__
    return format_or_missing


@_guarded
def percent(value: float) -> str:
    """A share in [0, 1] as a percentage with one decimal: 0.5123 -> '51.2%'."""
    return f"{value * 100:.1f}%"


@_guarded
def percent_fine(value: float) -> str:
    """A share near 50% (accuracy, majority rate) with two decimals: 0.51234 -> '51.23%'."""
    return f"{value * 100:.2f}%"


@_guarded
def multiple(value: float) -> str:
    """The value of 1 invested, to about four significant digits but at least three decimals
    below 10: 0.025, 1.234, 92.67, 222.1, 3,547,515."""
    size = abs(value)
    decimals = 3 if size < 10 else 2 if size < 100 else 1 if size < 1000 else 0
    return f"{value:,.{decimals}f}"


@_guarded
def ratio(value: float) -> str:
    """A Sharpe ratio or another unitless ratio: two decimals."""
    return f"{value:.2f}"


@_guarded
def p_value(value: float) -> str:
    """Three decimals; scientific notation below 0.001 (and 0 as '0')."""
    if value == 0:
        return "0"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


@_guarded
def integer(value: float) -> str:
    return f"{value:.0f}"


@_guarded
def signed_points(value: float) -> str:
    """A change of a share in percentage points: 0.0123 -> '+1.23 pp'."""
    return f"{value * 100:+.2f} pp"


@_guarded
def signed_ratio(value: float) -> str:
    return f"{value:+.2f}"


@_guarded
def signed_percent(value: float) -> str:
    """A relative change: 0.05 -> '+5.0%'."""
    return f"{value * 100:+.1f}%"


def day(value: Any) -> str:
    """An ISO day as it is; MISSING for none or an empty string."""
    return MISSING if is_missing(value) or not str(value).strip() else str(value)


# The per-ticker columns the reports show, with their headings and formats.
COLUMN_FORMATS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "n_days": ("days", integer),
    "accuracy": ("accuracy", percent_fine),
    "majority_rate": ("majority class", percent_fine),
    "p_value": ("p-value", p_value),
    "q_value": ("BH q-value", p_value),
    "cum_return": ("cum return (x)", multiple),
    "cum_return_net": ("net of costs (x)", multiple),
    "buy_hold": ("buy & hold (x)", multiple),
    "sharpe": ("Sharpe", ratio),
    "max_drawdown": ("max drawdown", percent),
    "exposure": ("exposure", percent),
    "turnover": ("turnover / day", ratio),
    "train_rows": ("train rows", integer),
    "test_from": ("test from", day),
}


def format_column(column: str, value: Any) -> str:
    """`value` of summary column `column`, formatted as every report shows it."""
    if column not in COLUMN_FORMATS:
        return MISSING if is_missing(value) else str(value)
    return COLUMN_FORMATS[column][1](value)


def column_heading(column: str) -> str:
    return COLUMN_FORMATS[column][0] if column in COLUMN_FORMATS else column.replace("_", " ")

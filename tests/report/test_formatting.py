"""One format per kind of figure, shared by report.html, report.md and compare."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.report import formatting as fmt


@pytest.mark.parametrize(
    ("formatter", "value", "text"),
    [
        (fmt.percent, 0.5123, "51.2%"),
        (fmt.percent_fine, 0.51234, "51.23%"),
        (fmt.multiple, 0.025058, "0.025"),
        (fmt.multiple, 1.2345, "1.234"),
        (fmt.multiple, 92.671, "92.67"),
        (fmt.multiple, 222.084, "222.1"),
        (fmt.multiple, 3547515.37, "3,547,515"),
        (fmt.ratio, -0.154, "-0.15"),
        (fmt.p_value, 1.0, "1.000"),
        (fmt.p_value, 0.0123, "0.012"),
        (fmt.p_value, 0.000012, "1.2e-05"),
        (fmt.p_value, 0.0, "0"),
        (fmt.integer, 4849, "4849"),
        (fmt.signed_points, 0.0123, "+1.23 pp"),
        (fmt.signed_percent, -0.702, "-70.2%"),
    ],
    ids=lambda value: str(value) if not callable(value) else value.__name__,
)
def test_formats(formatter, value, text):
    assert formatter(value) == text


@pytest.mark.parametrize("missing", [None, math.nan, pd.NA, pd.NaT], ids=repr)
@pytest.mark.parametrize("formatter", [fmt.percent, fmt.multiple, fmt.ratio, fmt.p_value])
def test_missing_values(formatter, missing):
    assert formatter(missing) == fmt.MISSING


def test_format_column_uses_the_column_format():
    assert fmt.format_column("accuracy", 0.5) == "50.00%"
    assert fmt.format_column("cum_return", 1.5) == "1.500"
    assert fmt.format_column("status", "ok") == "ok"
    assert fmt.column_heading("max_drawdown") == "max drawdown"

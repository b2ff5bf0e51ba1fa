"""Dates of price rows: the one definition of "the rows from start to end"."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

import pandas as pd

Dated = TypeVar("Dated", pd.DataFrame, pd.Series)


def between(rows: Dated, start: date, end: date) -> Dated:
    """The rows of a frame or series on a sorted DatetimeIndex of midnights dated from `start`
    to `end`, both inclusive."""
    return rows.loc[pd.Timestamp(start) : pd.Timestamp(end)]

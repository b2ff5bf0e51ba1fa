"""Provider errors injected into a clean price frame, one kind at a time, as providers make them.

Each injector takes a frame of the `sources.base` shape (open, high, low, close, adj_close,
volume, dividend, split where present), a random generator and returns (the damaged frame, the
first and last dates the error touches). Used by the data-quality tests and by
`benchmarks/bench_quality.py`, which measures detection on the real-price sample.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

PRICES = ("open", "high", "low", "close", "adj_close")
# Keep injections away from the edges: detectors compare a session with the ones around it.
MARGIN = 80

Injected = tuple[pd.DataFrame, date, date]
Injector = Callable[[pd.DataFrame, np.random.Generator], Injected]


def _row(frame: pd.DataFrame, rng: np.random.Generator, room: int = 0) -> int:
    return int(rng.integers(MARGIN, len(frame) - MARGIN - room))


def _scale(frame: pd.DataFrame, rows: slice, factor: float, columns=PRICES) -> None:
    present = [c for c in columns if c in frame.columns]
    frame.iloc[rows, [frame.columns.get_loc(c) for c in present]] *= factor


def unit_error(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """A block of 1-40 sessions quoted in the wrong unit: 100x (pence), 1/100x, 10x or 1000x."""
    damaged = frame.copy()
    length = int(rng.integers(1, 41))
    row = _row(frame, rng, length)
    factor = float(rng.choice([100.0, 0.01, 100.0, 0.01, 10.0, 0.1, 1000.0]))
    _scale(damaged, slice(row, row + length), factor)
    return damaged, frame.index[row].date(), frame.index[row + length - 1].date()


def unadjusted_split(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """A real split (2:1, 3:1, 3:2, 4:1, 5:1, 10:1 or a reverse one) the adjusted close ignores:
    every price before it on the old scale, the share volume too; the split column records it
    half of the time (Yahoo often knows the split it did not apply)."""
    damaged = frame.copy()
    row = _row(frame, rng)
    ratio = float(rng.choice([2.0, 3.0, 1.5, 4.0, 5.0, 10.0, 0.5, 1 / 3]))
    _scale(damaged, slice(0, row), ratio)
    if "volume" in damaged.columns:
        damaged.iloc[:row, damaged.columns.get_loc("volume")] /= ratio
    if "split" in damaged.columns and rng.random() < 0.5:
        damaged.iloc[row, damaged.columns.get_loc("split")] = ratio
    return damaged, frame.index[row - 1].date(), frame.index[row].date()


def misplaced_split(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """A split adjusted on the wrong day: the adjusted close alone is off by the ratio for the
    2-30 sessions between the wrong day and the right one."""
    damaged = frame.copy()
    length = int(rng.integers(2, 31))
    row = _row(frame, rng, length)
    ratio = float(rng.choice([2.0, 3.0, 1.5, 0.5, 4.0]))
    _scale(damaged, slice(row, row + length), ratio, columns=("adj_close",))
    return damaged, frame.index[row].date(), frame.index[row + length - 1].date()


def bad_dividend_adjustment(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """The history before an ex-date scaled by a factor far from 1 - dividend / price: 5-25%
    off, either way, in the adjusted close alone."""
    damaged = frame.copy()
    row = _row(frame, rng)
    if "dividend" in frame.columns:
        ex_dates = np.flatnonzero(frame["dividend"].to_numpy() > 0)
        ex_dates = ex_dates[(ex_dates > MARGIN) & (ex_dates < len(frame) - MARGIN)]
        if len(ex_dates):
            row = int(rng.choice(ex_dates))
    error = float(rng.uniform(0.05, 0.25)) * (1 if rng.random() < 0.5 else -1)
    _scale(damaged, slice(0, row), 1.0 + error, columns=("adj_close",))
    return damaged, frame.index[row - 1].date(), frame.index[row].date()


def stale_prices(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """A feed that stopped for 5-20 sessions: the last bar's close repeated, flat, no volume."""
    damaged = frame.copy()
    length = int(rng.integers(5, 21))
    row = _row(frame, rng, length)
    rows = slice(row, row + length)
    for column in PRICES:
        if column in damaged.columns:
            source = "adj_close" if column == "adj_close" else "close"
            damaged.iloc[rows, damaged.columns.get_loc(column)] = frame[source].iloc[row - 1]
    if "volume" in damaged.columns:
        damaged.iloc[rows, damaged.columns.get_loc("volume")] = 0.0
    return damaged, frame.index[row].date(), frame.index[row + length - 1].date()


def gap(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """8-30 sessions missing."""
    length = int(rng.integers(8, 31))
    row = _row(frame, rng, length)
    damaged = frame.drop(frame.index[row : row + length])
    return damaged, frame.index[row - 1].date(), frame.index[row + length].date()


def one_day_jump(frame: pd.DataFrame, rng: np.random.Generator) -> Injected:
    """One session's prices doubled or halved, the next back to normal."""
    damaged = frame.copy()
    row = _row(frame, rng)
    _scale(damaged, slice(row, row + 1), float(rng.choice([2.0, 0.5])))
    return damaged, frame.index[row].date(), frame.index[row].date()


# kind -> (the detector kind expected, injector)
INJECTORS: dict[str, tuple[str, Injector]] = {
    "unit": ("unit", unit_error),
    "unadjusted_split": ("split", unadjusted_split),
    "misplaced_split": ("split", misplaced_split),
    "dividend": ("dividend", bad_dividend_adjustment),
    "stale": ("stale", stale_prices),
    "gap": ("gap", gap),
    "jump": ("jump", one_day_jump),
}


def found(findings, kind: str, first: date, last: date, slack_days: int = 5) -> bool:
    """A finding of `kind` overlaps [first, last], give or take `slack_days` calendar days."""
    slack = pd.Timedelta(days=slack_days)
    low, high = pd.Timestamp(first) - slack, pd.Timestamp(last) + slack
    return any(
        f.kind == kind and pd.Timestamp(f.first) <= high and pd.Timestamp(f.last) >= low
        for f in findings
    )

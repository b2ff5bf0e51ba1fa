"""Whether two runs of the backtest stage produced the same results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.backtest.result import TickerResult


def results_identical(expected: Sequence[TickerResult], actual: Sequence[TickerResult]) -> bool:
    """Same tickers, statuses, summary values (NaN equal to NaN) and daily frames, bit for bit."""
    if len(expected) != len(actual):
        return False
    summaries = [pd.DataFrame([r.summary_row() for r in side]) for side in (expected, actual)]
    if not summaries[0].equals(summaries[1]):
        return False
    return all(_same_daily(a.daily, b.daily) for a, b in zip(expected, actual, strict=True))


def _same_daily(left: pd.DataFrame | None, right: pd.DataFrame | None) -> bool:
    if left is None or right is None:
        return left is right
    return left.equals(right)


def position_agreement(plain: Sequence[TickerResult], fast: Sequence[TickerResult]) -> float:
    """Share of evaluation days on which the fast path holds the plain fit's position."""
    same = total = 0
    for a, b in zip(plain, fast, strict=True):
        if a.daily is None or b.daily is None or len(a.daily) != len(b.daily):
            continue
        same += int(np.sum(a.daily["position"].to_numpy() == b.daily["position"].to_numpy()))
        total += len(a.daily)
    return same / total if total else float("nan")

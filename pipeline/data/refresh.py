"""When to trust the price cache: the refresh policy, as pure functions.

`plan_fetch` decides between a hit, an incremental refresh and a full fetch from a cached
file's metadata; `overlap_matches` detects restated adjusted history (a dividend or a split
re-adjusts every earlier close); `merge_refresh` appends refreshed rows to the cached ones.
Storage (reading and writing the files) lives in `pipeline.data.cache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.data.cache import CacheMeta, normalize_price_frame
from pipeline.data.sources.base import ADJ_CLOSE

# Relative tolerance when comparing re-fetched adjusted closes with cached ones: far above float
# noise from a provider's own rounding, far below any dividend adjustment (>= 1e-4 in practice).
OVERLAP_RTOL = 1e-6

Action = Literal["hit", "refresh", "full"]


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What to ask the source for: nothing (hit), a recent window (refresh) or a whole range."""

    action: Action
    fetch_start: date | None = None
    fetch_end: date | None = None
    reason: str = ""


def plan_fetch(
    meta: CacheMeta | None,
    source_identity: str,
    start: date,
    end: date,
    *,
    today: date,
    overlap_days: int,
) -> FetchPlan:
    """Decide how to serve the request [start, end] given the cached file's metadata.

    `today` is the UTC day of the fetch: an end date after it is served by data through today.
    A refresh re-fetches `overlap_days` calendar days before the cached last row so that
    `overlap_matches` can detect restated history.
    """
    if meta is None:
        return FetchPlan("full", start, end, "not cached")
    if meta.source_identity != source_identity:
        return FetchPlan("full", start, end, f"cached from {meta.source_identity!r}")
    if start < meta.covered_start:
        # Fetch through the old coverage as well, so a narrower request does not shrink the file.
        reason = f"start {start} is before the cached range ({meta.covered_start})"
        return FetchPlan("full", start, max(end, meta.covered_through), reason)
    if min(end, today) <= meta.covered_through:
        return FetchPlan("hit")
    refresh_start = meta.last_date - timedelta(days=overlap_days)
    return FetchPlan("refresh", refresh_start, end, f"cache covers through {meta.covered_through}")


def plan_full_refetch(meta: CacheMeta, refresh: FetchPlan) -> FetchPlan:
    """The whole covered history again, after `overlap_matches` found it restated."""
    reason = "adjusted history restated (dividend or split); whole history fetched again"
    return FetchPlan("full", meta.covered_start, refresh.fetch_end, reason)


def covered_range(plan: FetchPlan, meta: CacheMeta | None, today: date) -> tuple[date, date]:
    """The requested range a file covers after executing `plan` (a refresh or a full fetch)."""
    assert plan.fetch_start is not None and plan.fetch_end is not None, plan
    through = min(plan.fetch_end, today)
    if plan.action == "refresh" and meta is not None:
        return meta.covered_start, max(meta.covered_through, through)
    return plan.fetch_start, through


def overlap_matches(cached: pd.DataFrame, fresh: pd.DataFrame, provisional_from: date) -> bool:
    """True when the adjusted closes both frames have for the same days agree.

    Days from `provisional_from` on (the cached file's fetch day) are not compared: their bars may
    have been taken before the close. No comparable day at all is not evidence of agreement.
    """
    common = cached.index.intersection(fresh.index)
    common = common[common < pd.Timestamp(provisional_from)]
    if common.empty:
        return False
    return bool(
        np.allclose(
            fresh.loc[common, ADJ_CLOSE].to_numpy(),
            cached.loc[common, ADJ_CLOSE].to_numpy(),
            rtol=OVERLAP_RTOL,
            atol=0.0,
            equal_nan=True,
        )
    )


def merge_refresh(cached: pd.DataFrame, fresh: pd.DataFrame, fetch_start: date) -> pd.DataFrame:
    """Cached rows before the refreshed window, then every refreshed row.

    The source's answer for [fetch_start, ...] replaces what the cache held for those days (a
    provisional bar of the last fetch day is corrected this way).
    """
    if fresh.empty:
        return cached
    cut = min(pd.Timestamp(fetch_start), fresh.index[0])
    return normalize_price_frame(pd.concat([cached.loc[cached.index < cut], fresh]))

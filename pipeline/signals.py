"""Next-session positions (METHOD.md, "Next-session positions") and what the run reused.

`signals.csv` / `signals.parquet` in a run directory: one row per ok ticker, in the requested
order, with the position to hold over the next session and what an analyst needs beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.backtest.result import TickerResult
from pipeline.outputs import atomic_write

SIGNALS_CSV = "signals.csv"
SIGNALS_PARQUET = "signals.parquet"

SIGNAL_COLUMNS: tuple[str, ...] = (
    "ticker",
    "as_of",
    "position",
    "side",
    "mode",
    "refit_date",
    "train_rows",
    "in_sample",
    "stale",
    "last_close",
)
SIDES = {1: "long", 0: "flat", -1: "short"}


def assemble_signals(universe: Sequence[str], results: Sequence[TickerResult]) -> pd.DataFrame:
    """One row per ok ticker with a signal, in the requested order.

    `stale` marks a ticker whose last price is older than the universe's latest one: its
    position was decided on an earlier close than the others' (a halt, a delisting, a feed gap).
    """
    by_ticker = {r.ticker: r.signal for r in results if r.status == "ok" and r.signal}
    rows = [{"ticker": t, **by_ticker[t]} for t in universe if t in by_ticker]
    frame = pd.DataFrame(rows, columns=[c for c in SIGNAL_COLUMNS if c not in ("side", "stale")])
    frame["position"] = frame["position"].astype("int8")
    frame["train_rows"] = frame["train_rows"].astype("int64")
    frame["in_sample"] = frame["in_sample"].astype(bool)
    frame["last_close"] = frame["last_close"].astype("float64")
    frame["side"] = frame["position"].map(SIDES)
    for column in ("ticker", "as_of", "side", "mode", "refit_date"):
        frame[column] = frame[column].astype(str)  # as Parquet reads them back
    latest = frame["as_of"].max() if len(frame) else None
    frame["stale"] = (frame["as_of"] < latest) if latest is not None else pd.Series(dtype=bool)
    frame["stale"] = frame["stale"].astype(bool)
    return frame[list(SIGNAL_COLUMNS)]


def signal_counts(signals: pd.DataFrame) -> dict[str, Any]:
    """How many tickers are long, flat and short for the next session; the stale ones named."""
    sides = Counter(signals["side"])
    stale = signals.loc[signals["stale"], "ticker"].tolist()
    latest = signals["as_of"].max() if len(signals) else None
    return {
        "long": sides["long"],
        "flat": sides["flat"],
        "short": sides["short"],
        "as_of": latest,
        "stale": stale,
    }


def format_signal_counts(counts: dict[str, Any]) -> str:
    """'next session (as of 2024-03-28): 12 long, 3 flat, 5 short; stale: X, Y'."""
    line = (
        f"next session (as of {counts['as_of']}): {counts['long']} long, "
        f"{counts['flat']} flat, {counts['short']} short"
    )
    stale = counts["stale"]
    if stale:
        shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
        line += f"; {len(stale)} stale (last price before {counts['as_of']}): {shown}"
    return line


def reuse_counts(results: Sequence[TickerResult], full: bool) -> dict[str, Any]:
    """The manifest's `reuse` block: what came from the results store, what was computed."""
    notes = [r.reuse for r in results if r.status == "ok" and r.reuse is not None]
    reasons = Counter(note["reason"] for note in notes if note["reason"])
    return {
        "tickers_reused": sum(1 for note in notes if not note["reason"]),
        "rows_reused": sum(note["rows_reused"] for note in notes),
        "rows_computed": sum(note["rows_computed"] for note in notes),
        "tickers_computed": sum(1 for note in notes if note["reason"]),
        "refits_computed": sum(note["refits_computed"] for note in notes),
        "reasons": dict(sorted(reasons.items())),
        "full": full,
    }


def write_signals(run_dir: Path, signals: pd.DataFrame) -> None:
    atomic_write(run_dir / SIGNALS_CSV, lambda tmp: signals.to_csv(tmp, index=False))
    atomic_write(run_dir / SIGNALS_PARQUET, lambda tmp: signals.to_parquet(tmp, index=False))

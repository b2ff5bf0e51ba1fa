"""The report's "Next session" section, as data: what to hold over the next session, drawn from
signals.parquet alone (a run directory written before signals existed has no such section)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SIGNALS_PARQUET = "signals.parquet"
TABLE_COLUMNS = ("ticker", "side", "as_of", "refit_date", "train_rows", "last_close", "stale")


@dataclass(frozen=True, slots=True)
class NextSession:
    """Counts long / flat / short, the table (one row per ok ticker, in the requested order),
    the stale tickers (last price older than the universe's latest day) and whether the
    positions come from in-sample models."""

    as_of: str
    long: int
    flat: int
    short: int
    stale: tuple[str, ...]
    in_sample: bool
    rows: tuple[dict[str, object], ...]

    @property
    def total(self) -> int:
        return self.long + self.flat + self.short


def read_signals(run_dir: Path) -> pd.DataFrame | None:
    path = Path(run_dir) / SIGNALS_PARQUET
    return pd.read_parquet(path) if path.is_file() else None


def next_session(signals: pd.DataFrame | None) -> NextSession | None:
    """The section's content, or None without signals."""
    if signals is None or signals.empty:
        return None
    sides = signals["position"].map({1: "long", 0: "flat", -1: "short"})
    table = signals.assign(side=sides)
    columns = [column for column in TABLE_COLUMNS if column in table.columns]
    rows = tuple(table[columns].to_dict("records"))
    stale = signals.loc[signals["stale"].astype(bool), "ticker"] if "stale" in signals else []
    return NextSession(
        as_of=str(signals["as_of"].max()),
        long=int((sides == "long").sum()),
        flat=int((sides == "flat").sum()),
        short=int((sides == "short").sum()),
        stale=tuple(str(t) for t in stale),
        in_sample=bool(signals.get("in_sample", pd.Series([False])).any()),
        rows=rows,
    )

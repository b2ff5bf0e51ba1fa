"""The interface every price source implements.

A source turns (ticker, start, end) into a daily price frame of one shape, whatever the provider:

- index: `DatetimeIndex` named "date", tz-naive, at midnight, strictly increasing, no duplicates;
  each row is one trading day inside [start, end], both inclusive;
- column `adj_close` (float64, dividend- and split-adjusted close): always present;
- columns `open`, `high`, `low`, `close`, `volume`, `dividend`, `split` (float64) where the
  source has them.

`fetch` raises `TransientSourceError` (or `RateLimitedError`) for what is worth retrying and
`DataError` for what is not (unknown symbol, no rows in the range, a file that is not a price
table). Sources never retry, sleep or cache: the download stage does that, the same way for all.

What a source repaired to reach this shape (rows without a finite price dropped, shuffled dates
sorted) it says in `frame.attrs[DATA_NOTES]`, a tuple of notes; the run reports them, so a repair
is never silent.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd

ADJ_CLOSE = "adj_close"
# `dividend`: the cash dividend going ex that day (0 on other days); `split`: the split
# coefficient, new shares per old that day (1 on other days). Both only where a source has them;
# the data-quality checks use them to tell a provider's error from a real corporate action.
OPTIONAL_COLUMNS = ("open", "high", "low", "close", "volume", "dividend", "split")
PRICE_COLUMNS = (*OPTIONAL_COLUMNS[:4], ADJ_CLOSE, *OPTIONAL_COLUMNS[4:])
INDEX_NAME = "date"
DATA_NOTES = "data_notes"


class PriceSource(Protocol):
    name: str
    # True for a provider over the network: its requests are paced by the download stage's
    # rate cap. Local files and generated prices are not.
    remote: bool

    def identity(self) -> str:
        """What makes two fetches comparable, e.g. 'csv:/abs/dir'; stored in cache metadata."""
        ...

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Daily prices of `ticker` from `start` to `end` inclusive, shaped as described above."""
        ...


def empty_price_frame() -> pd.DataFrame:
    """A frame with the standard shape and no rows."""
    index = pd.DatetimeIndex([], name=INDEX_NAME, dtype="datetime64[ns]")
    return pd.DataFrame({ADJ_CLOSE: pd.Series([], dtype="float64", index=index)})

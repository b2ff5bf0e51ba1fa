"""When an earlier run's predictions for a ticker may stand (METHOD.md, "Incremental runs").

Pure functions, no I/O: the results store (`pipeline.data.results_store`) reads and writes what
is decided here. An earlier run's rows are reused only where the result is provably the same as
a full computation:
- the same settings that change numbers (features, model, backtest, data.start, and the versions
  of the code that computes them): `settings_key`, which names the store entry;
- the same prices, bit for bit, on every day the earlier run used: its fingerprint (a sha256 over
  the dates and the cleaned prices) equals that of the new prices' first days.
New days at the end then only add rows. In walk_forward a row's prediction depends only on the
rows before its refit, so the stored predictions stand and only the refits that a new row opens
are fit: new rows inside the last stored refit's block are predicted by that refit's stored
pattern table (its model's prediction of every sign pattern), the same model. in_sample and
holdout fit on every row, so there only an unchanged history is reused. Anything else is a full
computation, with the reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from pipeline.backtest.evaluation import Resume, walk_forward_refits
from pipeline.backtest.models import estimator_params
from pipeline.config import BacktestSettings
from pipeline.statistics.bootstrap import TickerIntervals

# Bumped whenever what is stored, or how a stored row is computed, changes.
# 2: the bootstrap draws its blocks otherwise (other intervals); 3: the last refit's pattern
# table.
STORE_FORMAT = 3
# The code that computes the numbers: another version may compute other numbers.
_NUMERIC_PACKAGES = ("pipeline", "scikit-learn", "numpy")

REASON_FULL = "--full: the store is ignored"
REASON_MISSING = "no stored result for these settings"
REASON_SHORTER = "the prices end before the stored result's"
REASON_RESTATED = "restated history: a price the stored result used has changed"
REASON_NOT_WALK_FORWARD = "{mode} fits on every row: new prices change every prediction"
REASON_MISMATCH = "the stored rows do not fit these prices"


@dataclass(frozen=True, slots=True)
class PricesUsed:
    """What identifies the prices a result was computed from: N rows, first and last day,
    sha256 over the dates (int64 ns) then the prices (float64), both in day order."""

    rows: int
    first_date: date
    last_date: date
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PricesUsed:
        return cls(
            rows=int(raw["rows"]),
            first_date=date.fromisoformat(raw["first_date"]),
            last_date=date.fromisoformat(raw["last_date"]),
            sha256=str(raw["sha256"]),
        )


@dataclass(frozen=True, slots=True)
class StoredRows:
    """One ticker's stored result: predictions of rows first_row..n (the signal row last), the
    decision day of each, the one-class refits' indices, the prices used and the settings key;
    and the bootstrap intervals drawn from them, which stand while the prices do not change;
    in walk_forward, the last refit's prediction of every sign pattern and that refit's index
    (`Evaluation.table`), None when there is none."""

    ticker: str
    settings_key: str
    prices: PricesUsed
    first_row: int
    predictions: np.ndarray
    row_dates: np.ndarray
    one_class: tuple[int, ...] = ()
    intervals: TickerIntervals | None = None
    table: np.ndarray | None = None
    table_refit: int | None = None

    def resume(self) -> Resume:
        return Resume(
            self.first_row, self.predictions, self.one_class, self.table, self.table_refit
        )

    def intervals_for(self, prices: pd.Series) -> TickerIntervals | None:
        """The stored intervals when `prices` are the very prices they were drawn from (which
        `plan_resume` checked up to the stored length): none when days were added."""
        return self.intervals if len(prices) == self.prices.rows else None


def settings_key(settings: BacktestSettings, start: date) -> str:
    """The hash of everything that changes a ticker's numbers, but not its last day."""
    fields = {
        "format": STORE_FORMAT,
        "settings": settings.model_dump(mode="json"),
        # The defaults a config leaves to the registry change numbers as much as given ones.
        "estimator": estimator_params(settings.model.kind, settings.model.params),
        "start": start.isoformat(),
        "versions": {name: _version(name) for name in _NUMERIC_PACKAGES},
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def prices_used(prices: pd.Series, rows: int | None = None) -> PricesUsed:
    """The fingerprint of the first `rows` prices (all by default)."""
    count = len(prices) if rows is None else rows
    head = prices.iloc[:count]
    digest = hashlib.sha256()
    digest.update(pd.DatetimeIndex(head.index).as_unit("ns").asi8.tobytes())
    digest.update(head.to_numpy(dtype=np.float64).tobytes())
    return PricesUsed(
        rows=count,
        first_date=head.index[0].date(),
        last_date=head.index[-1].date(),
        sha256=digest.hexdigest(),
    )


def plan_resume(
    stored: StoredRows, prices: pd.Series, settings: BacktestSettings
) -> tuple[Resume | None, str]:
    """The stored rows that stand for `prices` (cleaned, as the backtest uses them), or None
    and why a full computation is needed."""
    old = stored.prices
    if len(prices) < old.rows:
        return None, REASON_SHORTER
    if len(prices) == 0 or prices_used(prices, old.rows) != old:
        return None, REASON_RESTATED
    if not _rows_fit(stored, prices, settings.features.lags):
        return None, REASON_MISMATCH
    if not _table_fits(stored, settings):
        return None, REASON_MISMATCH
    mode = settings.backtest.mode
    if mode != "walk_forward" and len(prices) != old.rows:
        return None, REASON_NOT_WALK_FORWARD.format(mode=mode)
    return stored.resume(), ""


def _rows_fit(stored: StoredRows, prices: pd.Series, lags: int) -> bool:
    """The stored rows are the decision days first_row..n of the prices they were made from."""
    n_rows = stored.prices.rows - lags - 1
    expected = pd.DatetimeIndex(prices.index[lags + stored.first_row : lags + n_rows + 1])
    dates = np.asarray(stored.row_dates, dtype="datetime64[ns]")
    return (
        stored.first_row >= 0
        and len(stored.predictions) == n_rows + 1 - stored.first_row
        and len(dates) == len(expected)
        and bool(np.array_equal(dates, expected.as_unit("ns").to_numpy()))
        and bool(np.isin(stored.predictions, (-1, 0, 1)).all())
        and all(0 <= index < len(stored.predictions) for index in stored.one_class)
    )


def _table_fits(stored: StoredRows, settings: BacktestSettings) -> bool:
    """No table, or one prediction in {-1, 0, 1} per sign pattern of the last stored refit."""
    if stored.table is None:
        return stored.table_refit is None
    backtest = settings.backtest
    if backtest.mode != "walk_forward" or stored.table_refit is None:
        return False
    n_rows = stored.prices.rows - settings.features.lags - 1
    refits = walk_forward_refits(
        n_rows + 1, backtest.train_days, backtest.retrain_every, backtest.window
    )
    return (
        len(stored.table) == 3**settings.features.lags
        and stored.table_refit == len(refits) - 1
        and bool(np.isin(stored.table, (-1, 0, 1)).all())
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

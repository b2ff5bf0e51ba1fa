"""The results store: what each ticker's backtest computed, kept beside the price cache so that a
later run of the same settings pays only for the new days (METHOD.md, "Incremental runs").

One Parquet file per ticker and settings key, `<cache_dir>/results/<source>/<settings
key[:16]>/<TICKER>.parquet`: the predictions of the evaluation rows and the signal row (int8)
with each row's decision day, and as JSON under the schema metadata key `ENTRY_KEY` the ticker,
the full settings key, the fingerprint of the prices used, the first row, the one-class refits,
the bootstrap intervals drawn from those rows (which stand for a re-run on unchanged prices)
and, in walk_forward, the last refit's pattern table (one of `-`, `0`, `+` per sign pattern)
with that refit's index. Written atomically (a reader sees the old entry or the new one). An
entry that cannot be read, or that describes another ticker, other settings or another format,
is moved to `quarantine/` beside it and never trusted: that ticker is computed in full. The
store is read and written by the per-ticker task, wherever it runs (the cache path travels in
the job), so reuse is the same under every executor.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.backtest.incremental import (
    REASON_FULL,
    REASON_MISSING,
    STORE_FORMAT,
    PricesUsed,
    StoredRows,
)
from pipeline.backtest.models import defer_if_not_imported
from pipeline.backtest.result import TickerResult
from pipeline.backtest.shared import SharedPrices
from pipeline.backtest.task import backtest_resuming
from pipeline.config import BacktestSettings
from pipeline.data.tables import read_parquet
from pipeline.outputs import atomic_write
from pipeline.statistics.bootstrap import Interval, TickerIntervals

logger = logging.getLogger(__name__)

RESULTS_DIR = "results"
QUARANTINE_DIR = "quarantine"
ENTRY_KEY = b"pipeline.results"
KEY_DIGITS = 16
REASON_UNREADABLE = "the stored result could not be read (moved aside)"
REASON_FOREIGN = "the stored result belongs to {what} (moved aside)"


@dataclass(frozen=True, slots=True)
class ResultsSlot:
    """Where one ticker's stored result lives, the settings key it must carry, and whether
    to read it (`pipeline run --full` writes the store without reading it)."""

    path: Path
    key: str
    read: bool = True


def results_slot(price_path: Path, key: str, read: bool = True) -> ResultsSlot:
    """The slot beside the cache file `<cache_dir>/<source>/<TICKER>.parquet`."""
    source_dir = price_path.parent
    directory = source_dir.parent / RESULTS_DIR / source_dir.name / key[:KEY_DIGITS]
    return ResultsSlot(directory / price_path.name, key, read)


def store_size_bytes(cache_dir: Path) -> int:
    """Bytes on disk of every stored result under `cache_dir` (quarantined ones included)."""
    root = Path(cache_dir) / RESULTS_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def remove_leftovers(cache_dir: Path) -> int:
    """Remove the temporary files of store writes that never finished (a killed run's).

    Call it holding the cache lock, before any task runs: no write of the store is under way
    then, so every temporary file in it is a leftover.
    """
    root = Path(cache_dir) / RESULTS_DIR
    removed = 0
    for leftover in root.rglob(".*.tmp") if root.is_dir() else ():
        with suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
            logger.info("removed %s, left by an interrupted write of the results store", leftover)
    return removed


def backtest_with_store(
    ticker: str,
    prices: pd.Series,
    settings: BacktestSettings,
    slot: ResultsSlot,
    shared: SharedPrices | None = None,
) -> TickerResult:
    """Backtest one ticker reusing its stored result where allowed, then store the new one
    (`shared`: the prices' cleaning and design matrices, shared with other settings).

    A store that cannot be written costs the next run its reuse, never this run its result.
    """
    stored, why = (
        read_entry(slot, ticker, settings.model.kind) if slot.read else (None, REASON_FULL)
    )
    result, fresh = backtest_resuming(ticker, prices, settings, stored, why, shared)
    if fresh is not None and _changed(stored, fresh, result):
        try:
            write_entry(slot, replace(fresh, settings_key=slot.key))
        except OSError as exc:
            logger.warning("%s: cannot write the stored result %s: %s", ticker, slot.path, exc)
    return result


def read_entry(
    slot: ResultsSlot, ticker: str, model_kind: str | None = None
) -> tuple[StoredRows | None, str]:
    """The stored result, or None and why there is none to use.

    An unusable entry is moved aside; with `model_kind`, a worker passing on the jobs that
    need a model (`models.deferring_estimator_imports`) passes this one on before moving
    anything, so that the worker that runs it finds, moves and reports the entry itself.
    """
    try:
        table = read_parquet(slot.path)
    except FileNotFoundError:
        return None, REASON_MISSING
    except (OSError, ValueError, pa.ArrowException) as exc:
        if not slot.path.is_file():
            return None, REASON_MISSING
        _quarantine(slot.path, f"{type(exc).__name__}: {exc}", model_kind)
        return None, REASON_UNREADABLE
    try:
        stored = _decode(table)
    except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        _quarantine(slot.path, f"{type(exc).__name__}: {exc}", model_kind)
        return None, REASON_UNREADABLE
    foreign = _foreign(stored, ticker, slot.key)
    if foreign:
        _quarantine(slot.path, foreign, model_kind)
        return None, REASON_FOREIGN.format(what=foreign)
    return stored, ""


def write_entry(slot: ResultsSlot, stored: StoredRows) -> None:
    meta = {
        "format": STORE_FORMAT,
        "ticker": stored.ticker,
        "settings_key": stored.settings_key,
        "prices": stored.prices.to_dict(),
        "first_row": stored.first_row,
        "one_class": list(stored.one_class),
        "rows_sha256": _rows_digest(stored.row_dates, stored.predictions, stored.table),
        "intervals": _intervals_to_json(stored.intervals),
        "table": _table_to_json(stored.table, stored.table_refit),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    table = pa.table(
        {
            "date": pa.array(np.asarray(stored.row_dates, dtype="datetime64[ns]")),
            "prediction": pa.array(np.asarray(stored.predictions, dtype=np.int8)),
        }
    )
    table = table.replace_schema_metadata({ENTRY_KEY: json.dumps(meta).encode()})
    atomic_write(slot.path, lambda tmp: _write_rows(table, tmp))


def _write_rows(table: pa.Table, handle: BinaryIO) -> None:
    # A dictionary for the predictions (three values) only: the dates never repeat, and
    # building their dictionary to drop it made the write a third slower and the file larger.
    pq.write_table(table, handle, compression="zstd", use_dictionary=["prediction"])


def _decode(table: pa.Table) -> StoredRows:
    raw = json.loads((table.schema.metadata or {})[ENTRY_KEY])
    if not isinstance(raw, dict):
        raise ValueError("the entry's metadata is not an object")
    if raw.get("format") != STORE_FORMAT:
        raise ValueError(f"store format {raw.get('format')!r}, expected {STORE_FORMAT}")
    dates = table.column("date").to_numpy().astype("datetime64[ns]")
    predictions = table.column("prediction").to_numpy().astype(np.int8)
    patterns, pattern_refit = _table_from_json(raw.get("table"))
    if raw.get("rows_sha256") != _rows_digest(dates, predictions, patterns):
        raise ValueError("the stored rows do not match their checksum")
    return StoredRows(
        ticker=str(raw["ticker"]),
        settings_key=str(raw["settings_key"]),
        prices=PricesUsed.from_dict(raw["prices"]),
        first_row=int(raw["first_row"]),
        predictions=predictions,
        row_dates=dates,
        one_class=tuple(int(i) for i in raw["one_class"]),
        intervals=_intervals_from_json(raw.get("intervals")),
        table=patterns,
        table_refit=pattern_refit,
    )


# A pattern table as text, one character per pattern (-1, 0, +1): short, and readable in the
# metadata.
_SIGN_CHARS = "-0+"
_CHAR_CODES = np.frombuffer(_SIGN_CHARS.encode("ascii"), dtype=np.uint8)


def _table_to_json(table: np.ndarray | None, refit: int | None) -> dict[str, Any] | None:
    if table is None or refit is None:
        return None
    signs = _CHAR_CODES[np.asarray(table, dtype=np.int64) + 1].tobytes().decode("ascii")
    return {"refit": int(refit), "signs": signs}


def _table_from_json(raw: object) -> tuple[np.ndarray | None, int | None]:
    """The stored pattern table and its refit's index; (None, None) when there is none."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or type(raw.get("refit")) is not int:
        raise ValueError("the stored pattern table is malformed")
    signs = raw.get("signs")
    if not isinstance(signs, str) or not signs or set(signs) - set(_SIGN_CHARS):
        raise ValueError("the stored pattern table holds other than -, 0, +")
    sign_of_char = np.zeros(256, dtype=np.int8)
    sign_of_char[_CHAR_CODES] = (-1, 0, 1)
    return sign_of_char[np.frombuffer(signs.encode("ascii"), dtype=np.uint8)], raw["refit"]


def _intervals_to_json(intervals: TickerIntervals | None) -> dict[str, Any] | None:
    """Floats as JSON numbers, NaN as null: the round trip is exact (json writes the shortest
    repr that reads back to the same float)."""
    if intervals is None:
        return None
    values = {
        "sharpe": [intervals.sharpe.low, intervals.sharpe.high],
        "accuracy": [intervals.accuracy.low, intervals.accuracy.high],
        "block_length": [intervals.block_length],
    }
    return {key: [None if math.isnan(v) else v for v in pair] for key, pair in values.items()}


def _intervals_from_json(raw: object) -> TickerIntervals | None:
    """The stored intervals; None for an entry without them (written before they were stored),
    whose ticker then draws them again. Anything else malformed is a ValueError."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("the stored intervals are not an object")

    def numbers(key: str, count: int) -> list[float]:
        values = raw[key]
        if not isinstance(values, list) or len(values) != count:
            raise ValueError(f"the stored intervals' {key} is malformed")
        if not all(v is None or type(v) in (int, float) for v in values):
            raise ValueError(f"the stored intervals' {key} holds a non-number")
        return [math.nan if v is None else float(v) for v in values]

    sharpe, accuracy = numbers("sharpe", 2), numbers("accuracy", 2)
    return TickerIntervals(
        sharpe=Interval(*sharpe),
        accuracy=Interval(*accuracy),
        block_length=numbers("block_length", 1)[0],
    )


def _rows_digest(
    dates: np.ndarray, predictions: np.ndarray, table: np.ndarray | None = None
) -> str:
    """A checksum of the stored rows and pattern table: a flipped bit in a prediction is
    caught, not trusted."""
    digest = hashlib.sha256(np.asarray(dates, dtype="datetime64[ns]").view(np.int64).tobytes())
    digest.update(np.asarray(predictions, dtype=np.int8).tobytes())
    if table is not None:
        digest.update(b"table")
        digest.update(np.asarray(table, dtype=np.int8).tobytes())
    return digest.hexdigest()


def _foreign(stored: StoredRows, ticker: str, key: str) -> str:
    if stored.ticker != ticker:
        return f"ticker {stored.ticker!r}, not {ticker!r}"
    if stored.settings_key != key:
        return "other settings"
    return ""


def _changed(stored: StoredRows | None, fresh: StoredRows, result: TickerResult) -> bool:
    """Whether the entry must be rewritten: a re-run that reused it unchanged leaves it alone
    (unless it was written before the entries held their intervals)."""
    recomputed = result.reuse is None or bool(result.reuse["reason"])
    outdated = stored is not None and stored.intervals is None
    return stored is None or recomputed or outdated or stored.prices != fresh.prices


def _quarantine(path: Path, why: str, model_kind: str | None = None) -> None:
    if model_kind is not None:
        defer_if_not_imported(model_kind)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.parent / QUARANTINE_DIR / f"{path.name}.{stamp}"
    try:
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    except OSError as exc:
        logger.warning("stored result %s is unusable (%s) and cannot be moved: %s", path, why, exc)
        return
    logger.warning("stored result %s is unusable (%s); moved to %s", path, why, target)

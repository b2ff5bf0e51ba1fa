"""The Parquet price cache shared by every source, and when to trust it.

One file per source and ticker, `<cache_dir>/<source name>/<TICKER>.parquet`, holding a frame of
the `sources.base` shape (index "date" at datetime64[ns], float64 price columns). What the file is
known to cover travels inside it, as JSON under the schema metadata key `METADATA_KEY`, so a file
and its metadata can never disagree after a crash. What the source repaired in the rows (rows
dropped, dates sorted: `sources.base.DATA_NOTES`) travels beside it under `NOTES_KEY`, so every run
that uses the file can report it, not only the run that fetched it.

Writes are atomic (`pipeline.safe_io`: temporary file in the same directory, fsync,
`os.replace`, fsync of the directory): a reader sees the old file or the new one, never half of
one. A file that cannot be decoded is moved to `<source>/quarantine/` and read as a miss.

A cache may be shared (a cluster's filesystem): no symlink inside it is ever followed. A
symlinked source directory or lock file is refused with one line; a symlink in place of a cache
file is moved to quarantine like any unusable file, and the file is fetched again.

When to trust a cached file (hit, refresh or full fetch) is `pipeline.data.refresh`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.dates import between
from pipeline.data.quality import Bars
from pipeline.data.sources.base import ADJ_CLOSE, INDEX_NAME, PRICE_COLUMNS
from pipeline.data.sources.normalise import at_midnight
from pipeline.data.tables import read_parquet
from pipeline.errors import CacheLockedError, ConfigError, DataError, OutputError, UnsafePathError
from pipeline.safe_io import (
    atomic_write,
    directory,
    open_file,
    remove_stale_temps,
    replace_within,
    subdirectories,
)
from pipeline.symbols import validate_symbol

try:
    import fcntl
except ImportError:  # Windows: runs are not locked against each other there.
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1
METADATA_KEY = b"pipeline.cache"
NOTES_KEY = b"pipeline.notes"
FILE_SUFFIX = ".parquet"
QUARANTINE_DIR = "quarantine"
LOCK_FILE = ".lock"
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
_INDEX_UNIT = "ns"
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as the lock must not hang the open


@dataclass(frozen=True, slots=True)
class CacheMeta:
    """What one cache file holds and which requested range it is known to cover.

    `covered_start`..`covered_through` (inclusive) is the union of the ranges requested from the
    source; the rows may start later or end earlier (weekends, listing, delisting).
    `covered_through` never passes the day of the fetch, so a future end date cannot freeze the
    file. `fetched_at` is the UTC time of the last fetch.
    """

    ticker: str
    source: str
    source_identity: str
    first_date: date
    last_date: date
    rows: int
    fetched_at: datetime
    covered_start: date
    covered_through: date
    schema_version: int = CACHE_SCHEMA_VERSION

    def to_json(self) -> str:
        fields = {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items()}
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CacheMeta:
        raw = json.loads(text)
        if not isinstance(raw, dict) or set(raw) != set(cls.__dataclass_fields__):
            raise ValueError("cache metadata has missing or unknown fields")
        fetched_at = datetime.fromisoformat(raw["fetched_at"])
        if fetched_at.tzinfo is None:
            raise ValueError("cache metadata fetched_at has no time zone")
        dates = ("first_date", "last_date", "covered_start", "covered_through")
        return cls(
            **{**raw, **{k: date.fromisoformat(raw[k]) for k in dates}, "fetched_at": fetched_at}
        )


@dataclass(frozen=True)
class CachedPrices:
    """One cache file, checked. Its frame is decoded on first use: a cache hit never needs it."""

    table: pa.Table
    meta: CacheMeta
    path: Path

    @cached_property
    def frame(self) -> pd.DataFrame:
        return normalize_price_frame(self.table.to_pandas(use_threads=False))

    def bars(self, start: date, end: date) -> Bars:
        """The rows from `start` to `end` (both inclusive) as the data-quality checks read
        them, straight from the table: a cache hit builds no DataFrame."""
        dates = self.dates
        first = int(np.searchsorted(dates, np.datetime64(start, "ns"), side="left"))
        stop = int(np.searchsorted(dates, np.datetime64(end, "ns"), side="right"))
        rows = self.table.slice(first, stop - first)
        names = [name for name in PRICE_COLUMNS if name in rows.column_names]
        columns = {
            name: np.asarray(rows.column(name).to_numpy(), dtype=np.float64) for name in names
        }
        index = pd.DatetimeIndex(dates[first:stop], name=INDEX_NAME).as_unit(_INDEX_UNIT)
        return Bars(index, columns)

    @property
    def dates(self) -> np.ndarray:
        """The trading days as datetime64 values, ascending."""
        return self.table.column(INDEX_NAME).to_numpy()

    @property
    def notes(self) -> tuple[str, ...]:
        """The source's data-quality notes about these rows, for the run's report."""
        return _read_notes(self.table)


def meta_for_frame(
    frame: pd.DataFrame,
    *,
    ticker: str,
    source: str,
    source_identity: str,
    covered_start: date,
    covered_through: date,
    fetched_at: datetime,
) -> CacheMeta:
    """The metadata of a non-empty price frame about to be cached."""
    if frame.empty:
        raise ValueError(f"{ticker}: refusing to cache an empty price frame")
    return CacheMeta(
        ticker=ticker,
        source=source,
        source_identity=source_identity,
        first_date=frame.index[0].date(),
        last_date=frame.index[-1].date(),
        rows=len(frame),
        fetched_at=fetched_at.astimezone(UTC),
        covered_start=covered_start,
        covered_through=covered_through,
    )


def normalize_price_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the stored form, or ValueError naming what breaks the `sources.base` shape.

    Columns are put in `PRICE_COLUMNS` order and made float64, the index becomes datetime64[ns]
    without a frequency; anything else (unknown columns, a tz-aware or unsorted index, times of
    day, duplicate days, text prices) is refused rather than guessed at.
    """
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"index must be a DatetimeIndex, got {type(index).__name__}")
    if index.tz is not None:
        raise ValueError(f"index must be tz-naive, got tz={index.tz}")
    unknown = [c for c in frame.columns if c not in PRICE_COLUMNS]
    if unknown or ADJ_CLOSE not in frame.columns:
        raise ValueError(
            f"columns must include {ADJ_CLOSE!r} and be among {list(PRICE_COLUMNS)}; "
            f"got {list(frame.columns)}"
        )
    if not (index.is_monotonic_increasing and index.is_unique):
        raise ValueError("dates must be strictly increasing, without duplicates")
    if not at_midnight(index):
        raise ValueError("dates must be at midnight (one row per trading day)")
    columns = [c for c in PRICE_COLUMNS if c in frame.columns]
    # numpy's number kinds are numeric; anything else (an extension type, text) is asked.
    if not all(getattr(dtype, "kind", "O") in "biufc" for dtype in frame.dtypes):
        non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            raise ValueError(f"price columns must be numeric; not numeric: {non_numeric}")
    stored_index = pd.DatetimeIndex(index.as_unit(_INDEX_UNIT), freq=None, name=INDEX_NAME)
    # In order already (every frame this package wrote): no selection, which copies the frame.
    ordered = frame if list(frame.columns) == columns else frame[columns]
    return ordered.astype("float64").set_axis(stored_index)


def _check_stored_columns(table: pa.Table, dates: np.ndarray) -> None:
    """What `normalize_price_frame` refuses, checked on the table: other columns, text prices,
    a time zone, times of day (order and uniqueness are `_check_table`'s)."""
    columns = [name for name in table.column_names if name != INDEX_NAME]
    unknown = [name for name in columns if name not in PRICE_COLUMNS]
    if unknown:
        raise ValueError(
            f"columns must include {ADJ_CLOSE!r} and be among {list(PRICE_COLUMNS)}; "
            f"got {columns}"
        )
    non_numeric = [
        name
        for name in columns
        if not (pa.types.is_floating(table.schema.field(name).type)
                or pa.types.is_integer(table.schema.field(name).type))
    ]  # fmt: skip
    if non_numeric:
        raise ValueError(f"price columns must be numeric; not numeric: {non_numeric}")
    kind = table.schema.field(INDEX_NAME).type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        raise ValueError(f"index must be tz-naive, got tz={kind.tz}")
    if not (dates == dates.astype("datetime64[D]")).all():
        raise ValueError("dates must be at midnight (one row per trading day)")


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_holder(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']}, started {holder['started_at']}"
    except (ValueError, KeyError, TypeError):
        return f"pid {text or 'unknown'}"


class PriceCache:
    """Per-ticker Parquet files under `cache_dir`; see the module docstring.

    Opening the cache removes temporary files left by writers that were killed. Instances are
    safe to share between threads as long as each ticker has one writer at a time.
    """

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.root = Path(cache_dir).absolute()
        if self.root.is_dir():
            self._remove_stale_temps()

    def path_for(self, source_name: str, ticker: str) -> Path:
        """`<cache_dir>/<source_name>/<ticker>.parquet`; refuses names that could escape it."""
        validate_symbol(ticker, key="ticker")
        if not _SOURCE_NAME.fullmatch(source_name):
            raise ConfigError(
                f"source name {source_name!r} is not valid; use lowercase letters, digits, _ and -"
            )
        # A valid symbol and source name are plain file names; symlinks on the way are refused
        # when the file is opened (`safe_io`).
        return self.root / source_name / f"{ticker}{FILE_SUFFIX}"

    def read(self, source_name: str, ticker: str) -> CachedPrices | None:
        """The cached prices, or None when there is no usable file (a bad one is quarantined).

        OSError when the system cannot read the file (permission, file descriptors, I/O).
        """
        path = self.path_for(source_name, ticker)
        try:
            table = self._read_table(source_name, path.name)
            return CachedPrices(table, _check_table(table, source_name, ticker), path=path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # whatever a damaged file makes pyarrow or the checks raise
            if isinstance(exc, OSError) and exc.errno is not None:
                # A failed system call (no file descriptor left, permission denied, EIO) says
                # nothing about the file, which stays; pyarrow's complaints about undecodable
                # bytes are OSErrors without an errno.
                raise
            self._quarantine(path, f"{type(exc).__name__}: {exc}")
            return None

    def load(self, source_name: str, ticker: str, start: date, end: date) -> pd.DataFrame:
        """The cached rows of `ticker` from `start` to `end`: what a backtest reads."""
        cached = self.read(source_name, ticker)
        if cached is None:
            raise DataError(f"{ticker}: no cached prices from source {source_name!r}")
        return between(cached.frame, start, end)

    def write(
        self,
        source_name: str,
        ticker: str,
        frame: pd.DataFrame,
        meta: CacheMeta,
        notes: Sequence[str] = (),
    ) -> Path:
        """Atomically replace the ticker's file with `frame`, `meta` and `notes`; its path."""
        path = self.path_for(source_name, ticker)
        frame = normalize_price_frame(frame)
        frame.attrs = {}  # pyarrow would store them too; the notes are stored once, below
        _check_meta_describes(meta, frame.index, source_name, ticker)
        # One thread: for a frame this small, pyarrow's default starts a thread pool per call
        # (3-4 ms against 0.75 ms a 20-year file).
        table = pa.Table.from_pandas(frame, preserve_index=True, nthreads=1)
        metadata = {**(table.schema.metadata or {}), METADATA_KEY: meta.to_json().encode()}
        if notes:
            metadata[NOTES_KEY] = json.dumps(list(notes)).encode()
        table = table.replace_schema_metadata(metadata)
        with directory(self.root, [source_name]) as source_fd:
            self._log_removed(source_fd, source_name, prefix=f".{path.name}.")
        atomic_write(path, lambda handle: _write_prices(table, handle), within=self.root)
        return path

    @contextmanager
    def lock(self, wait_seconds: float = 0.0, poll_seconds: float = 0.2) -> Iterator[None]:
        """Hold the cache for one run.

        When another run holds it, wait up to `wait_seconds` for it, then raise
        CacheLockedError naming the holder (pid and start time). The lock is the kernel's
        (flock): it goes away with its process, so a run killed with SIGKILL leaves no stale lock.
        """
        fd = self._open_lock()
        try:
            if fcntl is not None:
                deadline = time.monotonic() + wait_seconds
                while not _try_flock(fd):
                    if time.monotonic() >= deadline:
                        raise CacheLockedError(
                            f"another run ({_lock_holder(fd)}) holds the lock on cache "
                            f"{self.root}; wait for it to finish (--wait SECONDS) or use another "
                            "data.cache_dir"
                        )
                    time.sleep(poll_seconds)
            started = datetime.now(UTC).isoformat(timespec="seconds")
            holder = json.dumps({"pid": os.getpid(), "started_at": started}) + "\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
            yield
        finally:
            os.close(fd)

    def _open_lock(self) -> int:
        """The lock file's descriptor: a regular file of the cache root, never a symlink."""
        path = self.root / LOCK_FILE
        try:
            with directory(self.root) as root_fd:
                flags = os.O_RDWR | os.O_CREAT | _O_NONBLOCK
                return open_file(root_fd, LOCK_FILE, flags, shown=path)
        except UnsafePathError:
            raise
        except OSError as exc:  # a read-only or foreign cache directory
            raise OutputError(
                f"cannot lock the cache {self.root}: {exc.strerror or exc}; data.cache_dir must "
                "be a directory this user can write"
            ) from None

    def _read_table(self, source_name: str, name: str) -> pa.Table:
        """The file's table, opened without following a symlink anywhere in the cache."""
        with directory(self.root, [source_name], create=False) as source_fd:
            fd = open_file(source_fd, name, os.O_RDONLY, shown=self.root / source_name / name)
        with os.fdopen(fd, "rb") as handle:
            return read_parquet(handle)

    def _remove_stale_temps(self) -> None:
        """Remove what killed writers left in the source directories; symlinks are skipped."""
        try:
            with directory(self.root, create=False) as root_fd:
                sources = subdirectories(root_fd)
            for source_name in sources:
                with directory(self.root, [source_name], create=False) as source_fd:
                    self._log_removed(source_fd, source_name)
        except (OSError, UnsafePathError) as exc:  # a read-only cache: the lock says it later
            logger.debug("stale temporary files left in %s: %s", self.root, exc)

    def _log_removed(self, source_fd: int, source_name: str, prefix: str = ".") -> None:
        for name in remove_stale_temps(source_fd, prefix):
            logger.info(
                "removed %s, left by an interrupted cache write", self.root / source_name / name
            )

    def _quarantine(self, path: Path, why: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        source_name = path.parent.name
        target = path.parent / QUARANTINE_DIR / f"{path.name}.corrupt-{stamp}"
        replace_within(
            self.root, [source_name, path.name], [source_name, QUARANTINE_DIR, target.name]
        )
        logger.warning("cache file %s is unusable (%s); moved to %s", path, why, target)


def _check_table(table: pa.Table, source_name: str, ticker: str) -> CacheMeta:
    """The file's metadata, once the table is shown to be what it describes.

    Checked on the Arrow table, without building a DataFrame: reading every page already
    proves the file is whole, and a warm run checks hundreds of files. The shape is the one
    `normalize_price_frame` gives `CachedPrices.frame`: a file it would refuse is refused here,
    so that it is quarantined and fetched again rather than failing its ticker.
    """
    raw_meta = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw_meta is None:
        raise ValueError(f"no {METADATA_KEY.decode()} metadata")
    meta = CacheMeta.from_json(raw_meta)
    if meta.schema_version != CACHE_SCHEMA_VERSION:
        raise ValueError(f"schema_version {meta.schema_version} != {CACHE_SCHEMA_VERSION}")
    missing = {INDEX_NAME, ADJ_CLOSE} - set(table.column_names)
    if missing:
        raise ValueError(f"columns {sorted(missing)} are missing")
    if not pa.types.is_floating(table.schema.field(ADJ_CLOSE).type):
        raise ValueError(f"{ADJ_CLOSE} is {table.schema.field(ADJ_CLOSE).type}, not a float")
    raw_dates = table.column(INDEX_NAME).to_numpy()
    # A file of another shape (written by something else) is as unusable as a torn one.
    _check_stored_columns(table, raw_dates)
    dates = pd.DatetimeIndex(raw_dates)
    if not (dates.is_monotonic_increasing and dates.is_unique):
        raise ValueError("dates must be strictly increasing, without duplicates")
    _check_meta_describes(meta, dates, source_name, ticker)
    _read_notes(table)
    return meta


def _read_notes(table: pa.Table) -> tuple[str, ...]:
    raw = (table.schema.metadata or {}).get(NOTES_KEY)
    if raw is None:
        return ()
    notes = json.loads(raw)
    if not (isinstance(notes, list) and all(isinstance(note, str) for note in notes)):
        raise ValueError(f"{NOTES_KEY.decode()} metadata is not a list of strings")
    return tuple(notes)


def _check_meta_describes(
    meta: CacheMeta, dates: pd.DatetimeIndex, source_name: str, ticker: str
) -> None:
    expected = (ticker, source_name, len(dates))
    if dates.empty or (meta.ticker, meta.source, meta.rows) != expected:
        raise ValueError(f"metadata {meta.ticker}/{meta.source}/{meta.rows} rows != {expected}")
    if (meta.first_date, meta.last_date) != (dates[0].date(), dates[-1].date()):
        raise ValueError("metadata first_date/last_date do not match the rows")


def _write_prices(table: pa.Table, handle: BinaryIO) -> None:
    # No dictionary pages: prices rarely repeat, so pyarrow builds each column's dictionary
    # only to drop it; without them the file is written twice as fast and is smaller.
    pq.write_table(table, handle, use_dictionary=False)

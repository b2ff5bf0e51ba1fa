"""A cache file that is damaged (cut short, overwritten, another ticker's file copied over it,
rewritten in another shape) is moved aside into quarantine and fetched again; the run succeeds
with the same results. A healthy file that the system cannot read just now (no file descriptor
left) is not quarantined."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.data.cache as cache_module
from pipeline.data.cache import QUARANTINE_DIR, PriceCache
from pipeline.data.tables import read_parquet
from tests.faults.conftest import csv_settings, run_in_process, write_prices

TICKERS = ["KO", "XOM", "IBM"]
VICTIM = "KO"


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite_with_garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def scramble_the_footer(path: Path) -> None:
    """Magic bytes intact, metadata undecodable: pyarrow raises an OSError without an errno."""
    data = path.read_bytes()
    path.write_bytes(data[:-80] + bytes(72) + data[-8:])


def copy_another_ticker(path: Path) -> None:
    """A valid Parquet file, of XOM: its metadata does not describe KO."""
    shutil.copyfile(path.with_name("XOM.parquet"), path)


def _rewrite_keeping_metadata(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), path)


def add_a_column(path: Path) -> None:
    """Whole and described by its metadata, but of another shape: a column no source writes."""
    _rewrite_keeping_metadata(
        path, lambda table: table.append_column("dividends", pa.array([0.0] * table.num_rows))
    )


def prices_as_text(path: Path) -> None:
    def text(table: pa.Table) -> pa.Table:
        volume = pa.array(["n/a"] * table.num_rows)
        if "volume" in table.column_names:
            return table.set_column(table.column_names.index("volume"), "volume", volume)
        return table.append_column("volume", volume)

    _rewrite_keeping_metadata(path, text)


CORRUPTIONS: list[Callable[[Path], None]] = [
    cut_in_half,
    overwrite_with_garbage,
    empty,
    scramble_the_footer,
    copy_another_ticker,
    add_a_column,
    prices_as_text,
]


@pytest.fixture
def warm_cache(tmp_path: Path) -> tuple[dict[str, object], pd.DataFrame]:
    """The settings of a three-ticker csv run whose cache is warm, and its summary."""
    for seed, ticker in enumerate(TICKERS):
        write_prices(tmp_path / "prices", ticker, seed=seed)
    settings = csv_settings(tmp_path, TICKERS)
    first = run_in_process(settings)
    assert first.failed_tickers == [], first.summary
    return settings, first.summary


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda corrupt: corrupt.__name__)
def test_a_damaged_file_is_quarantined_and_fetched_again(
    tmp_path: Path, warm_cache: tuple[dict[str, object], pd.DataFrame], corrupt: Callable
) -> None:
    settings, summary = warm_cache
    path = tmp_path / "cache" / "csv" / f"{VICTIM}.parquet"
    corrupt(path)
    damaged = path.read_bytes()

    second = run_in_process(settings)

    assert second.failed_tickers == [], second.summary
    assert second.manifest["cache"] == {"hits": 2, "fetched": 1, "refreshed": 0}
    pd.testing.assert_frame_equal(second.summary, summary)
    (quarantined,) = (path.parent / QUARANTINE_DIR).iterdir()
    assert quarantined.name.startswith(f"{VICTIM}.parquet.corrupt-")
    assert quarantined.read_bytes() == damaged, "the damaged file is kept as it was, for a look"
    assert PriceCache(tmp_path / "cache").read("csv", VICTIM) is not None


def _is_file(source: object, path: Path) -> bool:
    """Whether pyarrow was handed `path`, by name or as an open file."""
    if hasattr(source, "fileno"):
        return os.fstat(source.fileno()).st_ino == path.stat().st_ino
    return Path(str(source)) == path


def test_a_file_the_system_cannot_read_now_stays_where_it_is(
    tmp_path: Path,
    warm_cache: tuple[dict[str, object], pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, summary = warm_cache
    path = tmp_path / "cache" / "csv" / f"{VICTIM}.parquet"
    healthy = path.read_bytes()

    def starved_read(source: object, *args: object, **kwargs: object) -> object:
        if _is_file(source, path):
            raise OSError(errno.EMFILE, f"Failed to open local file '{source}'")
        return read_parquet(source, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(cache_module, "read_parquet", starved_read)
        starved = run_in_process(settings)

    assert VICTIM in starved.failed_tickers
    reason = starved.summary.set_index("ticker").loc[VICTIM, "reason"]
    assert f"cannot read the cache file {path}: Too many open files (EMFILE)" in reason
    assert path.read_bytes() == healthy
    assert not (path.parent / QUARANTINE_DIR).exists()
    again = run_in_process(settings)
    assert again.manifest["cache"] == {"hits": 3, "fetched": 0, "refreshed": 0}
    pd.testing.assert_frame_equal(again.summary, summary)

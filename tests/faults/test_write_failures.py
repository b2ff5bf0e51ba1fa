"""A cache write that fails, because the disk is full or the directory is read-only: the ticker
fails with a reason naming the problem, its previous file is intact and still readable, and no
temporary file remains. The other tickers are ok."""

from __future__ import annotations

import errno
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.data.cache as cache_module
from pipeline.data.cache import METADATA_KEY, PriceCache
from tests.faults.conftest import base_settings, run_in_process, temp_files

TICKERS = ["SYN000", "SYN001", "SYN002"]
VICTIM = "SYN001"


def synthetic_settings(tmp_path: Path, seed: int) -> dict[str, object]:
    """A new seed is a new source identity: every file is fetched and written again."""
    extra = {
        "data.source": "synthetic",
        "data.tickers": TICKERS,
        "data.synthetic.seed": seed,
        "data.synthetic.n_days": 300,
        "data.start": "2020-01-01",
        "data.end": "2021-12-31",
    }
    return base_settings(tmp_path, extra)


@pytest.fixture
def cached(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    """The victim's cache file after a first run, and its bytes."""
    first = run_in_process(synthetic_settings(tmp_path, seed=0))
    assert first.failed_tickers == [], first.summary
    path = tmp_path / "cache" / "synthetic" / f"{VICTIM}.parquet"
    yield path, path.read_bytes()


def assert_previous_file_intact(tmp_path: Path, path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    previous = PriceCache(tmp_path / "cache").read("synthetic", VICTIM)
    assert previous is not None and "seed=0" in previous.meta.source_identity
    assert temp_files(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(OSError(errno.ENOSPC), errno.ENOSPC, id="bare-errno"),
        pytest.param(OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC, id="os"),
        pytest.param(OSError(errno.EDQUOT, "Disk quota exceeded"), errno.EDQUOT, id="quota"),
    ],
)
def test_a_full_disk_fails_the_ticker_and_keeps_its_previous_file(
    tmp_path: Path,
    cached: tuple[Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: OSError,
    code: int,
) -> None:
    path, before = cached

    def write_table(table: pa.Table, where: object, **kwargs: object) -> None:
        if json.loads(table.schema.metadata[METADATA_KEY])["ticker"] != VICTIM:
            return pq.write_table(table, where, **kwargs)
        where.write(b"PAR1" + bytes(4096))  # the disk fills up part way through
        raise error

    fake_pq = SimpleNamespace(read_table=pq.read_table, write_table=write_table)
    monkeypatch.setattr(cache_module, "pq", fake_pq)
    result = run_in_process(synthetic_settings(tmp_path, seed=1))

    assert result.failed_tickers == [VICTIM]
    summary = result.summary.set_index("ticker")
    assert summary["status"].to_dict() == {"SYN000": "ok", VICTIM: "failed", "SYN002": "ok"}
    words, name = os.strerror(code), errno.errorcode[code]
    expected = f"download: cannot write the cache file {path}: {words} ({name})"
    assert summary.loc[VICTIM, "reason"] == expected
    assert_previous_file_intact(tmp_path, path, before)
    assert not [r for r in caplog.records if r.exc_info], "a full disk is not a crash: no traceback"


@pytest.fixture
def read_only_directory(
    cached: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The victim's directory made read-only: "chmod". Root writes through a mode of 0555, so
    as root the refusal is injected where the cache creates its temporary file instead, with a
    warning saying so: "injected"."""
    path = cached[0].parent
    path.chmod(0o555)
    try:
        probe = path / ".probe"
        probe.touch()
    except PermissionError:
        yield "chmod"
    else:
        probe.unlink()
        warnings.warn(
            "running as root, which chmod does not stop: PermissionError injected at os.open",
            stacklevel=1,
        )
        real_open = os.open

        def in_victim_directory(file: object, dir_fd: int | None) -> bool:
            if dir_fd is None:
                return Path(str(file)).parent == path
            return os.fstat(dir_fd).st_ino == path.stat().st_ino  # opened relative to it

        def refusing_open(file: object, flags: int, *args: object, **kwargs: object) -> int:
            if flags & os.O_CREAT and in_victim_directory(file, kwargs.get("dir_fd")):  # type: ignore[arg-type]
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return real_open(file, flags, *args, **kwargs)

        monkeypatch.setattr(cache_module.os, "open", refusing_open)
        yield "injected"
    finally:
        path.chmod(0o755)


def test_a_read_only_directory_fails_the_ticker_and_keeps_its_file(
    tmp_path: Path, cached: tuple[Path, bytes], read_only_directory: str
) -> None:
    victim_path, before = cached
    result = run_in_process(synthetic_settings(tmp_path, seed=1))

    assert result.failed_tickers
    summary = result.summary.set_index("ticker")
    assert (summary["status"] == "failed").all(), "every file of the directory is refused"
    reason = summary.loc[VICTIM, "reason"]
    expected = f"download: cannot write the cache file {victim_path}: Permission denied (EACCES)"
    assert reason == expected, read_only_directory
    assert_previous_file_intact(tmp_path, victim_path, before)

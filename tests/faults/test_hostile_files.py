"""Hostile files planted in a cache or an output directory: symlinks, hard links and FIFOs
where the pipeline expects its own files. Every one is refused with one line or moved aside,
and nothing outside the directory is ever touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.data.cache import LOCK_FILE, QUARANTINE_DIR, PriceCache
from pipeline.errors import UnsafePathError
from tests.faults.conftest import csv_settings, invoke, run_in_process, write_prices

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs and flock are POSIX")


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `directory` with its bytes and modification time."""
    return {
        str(path.relative_to(directory)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory of someone else's files, which no run may change."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "precious.txt").write_text("do not overwrite\n")
    return place


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def one_line_error(result: object) -> str:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return lines[0]


# --- the cache lock ------------------------------------------------------------------------


def test_a_symlinked_lock_is_refused_and_its_target_untouched(
    tmp_path: Path, outside: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / LOCK_FILE).symlink_to(outside / "precious.txt")
    before = snapshot(outside)
    with pytest.raises(UnsafePathError, match=r"\.lock is a symlink"), PriceCache(cache).lock():
        pass
    assert snapshot(outside) == before


@pytest.mark.parametrize("command", ["run", "download"])
def test_a_symlinked_lock_stops_a_command_with_one_line(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path / "prices", "KO")
    settings = csv_settings(tmp_path, ["KO"])
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / LOCK_FILE).symlink_to(outside / "precious.txt")
    before = snapshot(outside)
    result = invoke(command, settings)
    assert result.exit_code == 1, result.output
    assert "is a symlink; refusing to follow it" in one_line_error(result)
    assert snapshot(outside) == before


def test_a_hard_linked_lock_is_refused(tmp_path: Path, outside: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.link(outside / "precious.txt", cache / LOCK_FILE)
    before = snapshot(outside)
    with pytest.raises(UnsafePathError, match="other hard links"), PriceCache(cache).lock():
        pass
    assert snapshot(outside) == before


def test_a_fifo_as_the_lock_is_refused_without_hanging(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.mkfifo(cache / LOCK_FILE)
    with pytest.raises(UnsafePathError, match="not a regular file"), PriceCache(cache).lock():
        pass


def test_a_directory_as_the_lock_is_refused(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file"), PriceCache(tmp_path).lock():
        pass


# --- stale temporary files -----------------------------------------------------------------


def test_cleanup_never_follows_a_symlinked_source_directory(tmp_path: Path, outside: Path) -> None:
    stale = outside / f".KO.parquet.{dead_pid()}.0123abcdef01.tmp"
    stale.write_bytes(b"someone else's file that looks like a leftover")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "csv").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    PriceCache(cache)
    assert snapshot(outside) == before


def test_cleanup_removes_a_dead_writers_file_but_not_a_symlink_of_that_name(
    tmp_path: Path, outside: Path
) -> None:
    source = tmp_path / "cache" / "csv"
    source.mkdir(parents=True)
    pid = dead_pid()
    leftover = source / f".KO.parquet.{pid}.0123abcdef01.tmp"
    leftover.write_bytes(b"half a file")
    planted = source / f".XOM.parquet.{pid}.0123abcdef02.tmp"
    planted.symlink_to(outside / "precious.txt")
    before = snapshot(outside)
    PriceCache(tmp_path / "cache")
    assert not leftover.exists()
    assert planted.is_symlink()
    assert snapshot(outside) == before


# --- cache files and their directories -------------------------------------------------------


def test_a_symlinked_source_directory_fails_its_tickers_with_one_reason(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path / "prices", "KO")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "csv").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    result = run_in_process(csv_settings(tmp_path, ["KO"]))
    assert result.failed_tickers == ["KO"]
    reason = result.summary.set_index("ticker").loc["KO", "reason"]
    assert "is a symlink or not a directory; refusing to write through it" in reason
    assert "\n" not in reason
    assert snapshot(outside) == before


def test_a_symlink_in_place_of_a_cache_file_is_quarantined_and_refetched(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path / "prices", "KO")
    settings = csv_settings(tmp_path, ["KO"])
    assert not run_in_process(settings).failed_tickers
    cached = tmp_path / "cache" / "csv" / "KO.parquet"
    real = outside / "KO.parquet"
    os.replace(cached, real)
    cached.symlink_to(real)
    before = snapshot(outside)

    again = run_in_process(settings)

    assert not again.failed_tickers, again.summary
    assert again.manifest["cache"]["fetched"] == 1
    assert cached.is_file() and not cached.is_symlink()
    (moved,) = (cached.parent / QUARANTINE_DIR).iterdir()
    assert moved.is_symlink()  # the link was moved aside, not what it pointed at
    assert snapshot(outside) == before


def test_a_symlinked_quarantine_is_refused(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_prices(tmp_path / "prices", "KO")
    settings = csv_settings(tmp_path, ["KO"])
    assert not run_in_process(settings).failed_tickers
    source = tmp_path / "cache" / "csv"
    (source / "KO.parquet").write_bytes(b"not parquet")
    (source / QUARANTINE_DIR).symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)

    again = run_in_process(settings)

    assert again.failed_tickers == ["KO"]
    reason = again.summary.set_index("ticker").loc["KO", "reason"]
    assert f"{QUARANTINE_DIR} is a symlink or not a directory" in reason
    assert snapshot(outside) == before

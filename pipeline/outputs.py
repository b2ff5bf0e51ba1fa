"""Run directories and the files in them, each written atomically."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
DAILY_PARQUET = "daily.parquet"
LATEST_LINK = "latest"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it onto `path`.

    A reader sees the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    # Created 0666 less the umask, like any file the user writes (mkstemp's 0600 would stay).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_tables(run_dir: Path, summary: pd.DataFrame, daily: pd.DataFrame) -> None:
    atomic_write(run_dir / SUMMARY_CSV, lambda tmp: summary.to_csv(tmp, index=False))
    atomic_write(run_dir / SUMMARY_PARQUET, lambda tmp: summary.to_parquet(tmp, index=False))
    atomic_write(run_dir / DAILY_PARQUET, lambda tmp: daily.to_parquet(tmp, index=False))


def new_run_id(config_hash: str, now: datetime | None = None) -> str:
    """UTC time plus a short config hash: sortable, and two configs never share an id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{config_hash[:8]}"


def default_run_dir(out_dir: Path, config_hash: str) -> Path:
    run_dir = out_dir / new_run_id(config_hash)
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out_dir / f"{new_run_id(config_hash)}-{suffix}"
    return run_dir


def point_latest(out_dir: Path, run_dir: Path) -> Path:
    """Make `<out_dir>/latest` a relative symlink to `run_dir`, replaced atomically."""
    link = out_dir / LATEST_LINK
    tmp = out_dir / f".{LATEST_LINK}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir, out_dir))
    os.replace(tmp, link)
    return link

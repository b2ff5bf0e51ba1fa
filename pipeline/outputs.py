"""Run directories and the files in them, each written atomically (`pipeline.safe_io`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.safe_io import atomic_write, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
DAILY_PARQUET = "daily.parquet"
LATEST_LINK = "latest"


def write_tables(run_dir: Path, summary: pd.DataFrame, daily: pd.DataFrame) -> None:
    atomic_write_text(run_dir / SUMMARY_CSV, summary.to_csv(index=False))
    atomic_write(run_dir / SUMMARY_PARQUET, lambda out: summary.to_parquet(out, index=False))
    atomic_write(run_dir / DAILY_PARQUET, lambda out: daily.to_parquet(out, index=False))


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

"""manifest.json: what a run was given and what it did, so it can be reproduced and compared."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.backtest.result import count_statuses
from pipeline.config import Config
from pipeline.outputs import atomic_write_text

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_RECORDED_PACKAGES = (
    "pipeline",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "yfinance",
    "pydantic",
    "typer",
    "matplotlib",
    "dask",
    "distributed",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    config: Config,
    *,
    started_at: datetime,
    timings: Mapping[str, float],
    execution: Mapping[str, Any],
    summary: pd.DataFrame,
    cache_counts: Mapping[str, int],
    warnings: Mapping[str, list[str]],
    fingerprints: Mapping[str, Mapping[str, Any]] | None = None,
    aggregates: Mapping[str, Any] | None = None,
    data_quality: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "config": config.to_dict(),
        "config_hash": config.digest(),
        "versions": package_versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "command": sys.argv[1:],
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timings": dict(timings),
        "execution": dict(execution),
        "counts": count_statuses(summary),
        "cache": dict(cache_counts),
        "failed": {
            row.ticker: row.reason for row in summary.itertuples() if row.status == "failed"
        },
        "data_warnings": dict(warnings),
        "data_quality": dict(data_quality or {}),
        "fingerprints": dict(fingerprints or {}),
        "aggregates": dict(aggregates or {}),
    }


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    path = run_dir / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    return path


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MANIFEST_NAME).read_text())

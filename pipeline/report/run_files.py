"""Reading a run directory's saved results: the only files a report or a comparison needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import RunDirectoryError
from pipeline.manifest import MANIFEST_NAME, read_manifest
from pipeline.outputs import DAILY_PARQUET, SUMMARY_PARQUET
from pipeline.report.next_session import read_signals


@dataclass(frozen=True)
class RunFiles:
    """summary.parquet, daily.parquet and manifest.json of one run, as written by the runner."""

    run_dir: Path
    summary: pd.DataFrame
    daily: pd.DataFrame
    manifest: dict[str, Any]
    signals: pd.DataFrame | None = None  # next-session positions; absent in older runs

    @property
    def mode(self) -> str:
        return str(config_value(self.manifest, "backtest", "mode", default="unknown"))

    @property
    def cost_bps(self) -> float:
        return float(config_value(self.manifest, "backtest", "cost_bps", default=0.0) or 0.0)


def config_value(manifest: dict[str, Any], *keys: str, default: Any = None) -> Any:
    """manifest["config"][keys[0]][keys[1]]..., or `default` when a level is missing."""
    value: Any = manifest.get("config", {})
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.

    An empty dict stays a value of its own, so no key disappears.
    """
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_run(run_dir: Path) -> RunFiles:
    """The three result files of `run_dir`; RunDirectoryError names any that is missing."""
    run_dir = Path(run_dir)
    needed = (SUMMARY_PARQUET, DAILY_PARQUET, MANIFEST_NAME)
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise RunDirectoryError(
            f"{run_dir} is not a complete run directory: {', '.join(missing)} missing "
            f"(a run directory holds {', '.join(needed)})"
        )
    return RunFiles(
        run_dir=run_dir,
        summary=pd.read_parquet(run_dir / SUMMARY_PARQUET),
        daily=pd.read_parquet(run_dir / DAILY_PARQUET),
        manifest=read_manifest(run_dir),
        signals=read_signals(run_dir),
    )

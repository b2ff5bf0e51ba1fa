"""Reading a run directory's saved results: the only files a report or a comparison needs.

Every file is checked as it is read: a damaged one (truncated, empty, not Parquet or not JSON,
the wrong JSON type, columns or fields missing or null) raises RunDirectoryError naming the file
and what is wrong with it, so `pipeline report` and `pipeline compare` say so in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.display import shorten
from pipeline.errors import RunDirectoryError
from pipeline.manifest import MANIFEST_NAME
from pipeline.outputs import DAILY_PARQUET, SUMMARY_PARQUET
from pipeline.report.next_session import read_signals

# What a report and a comparison read of each file; a file without them is damaged.
SUMMARY_NEEDS: tuple[str, ...] = ("ticker", "status", "reason")
DAILY_NEEDS: tuple[str, ...] = (
    "ticker",
    "date",
    "position",
    "asset_log_return",
    "strategy_log_return",
)
# Manifest fields that, when present, are JSON objects (null is damage, not "absent").
MANIFEST_OBJECTS: tuple[str, ...] = (
    "config",
    "versions",
    "platform",
    "timings",
    "execution",
    "counts",
    "cache",
    "failed",
    "data_warnings",
    "data_quality",
    "fingerprints",
    "aggregates",
    "statistics",
    "reuse",
    "signals",
)
CONFIG_SECTIONS: tuple[str, ...] = ("data", "features", "model", "backtest", "execution", "report")


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
        summary=read_table(run_dir / SUMMARY_PARQUET, SUMMARY_NEEDS),
        daily=read_table(run_dir / DAILY_PARQUET, DAILY_NEEDS),
        manifest=read_checked_manifest(run_dir / MANIFEST_NAME),
        signals=_readable(run_dir / "signals.parquet", lambda: read_signals(run_dir)),
    )


def damaged(path: Path, problem: str) -> RunDirectoryError:
    return RunDirectoryError(
        f"{path} is damaged: {problem}; run the pipeline again to rewrite its run directory"
    )


def _readable(path: Path, read: Callable[[], Any]) -> Any:
    """`read()`, with any failure to parse `path` as RunDirectoryError."""
    try:
        return read()
    except RecursionError:
        raise damaged(path, "it nests too deeply") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        # pyarrow's errors (ArrowInvalid, ArrowIOError, ...) are ValueError / OSError.
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise damaged(path, f"not readable ({shorten(reason, 160)})") from None


def read_table(path: Path, needed: Iterable[str]) -> pd.DataFrame:
    """A Parquet table holding the `needed` columns, one row per line of the run."""
    frame = _readable(path, lambda: pd.read_parquet(path))
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise damaged(path, f"column(s) {', '.join(missing)} missing")
    if "ticker" in frame.columns and frame["ticker"].isna().any():
        raise damaged(path, "a row has no ticker")
    return frame


def read_checked_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a JSON object whose known fields have their types."""
    manifest = _readable(path, lambda: json.loads(path.read_bytes().decode("utf-8")))
    if not isinstance(manifest, dict):
        raise damaged(path, f"a JSON {_json_type(manifest)}, not an object")
    if "config" not in manifest:
        raise damaged(path, "no 'config' field")
    for key in MANIFEST_OBJECTS:
        if key in manifest and not isinstance(manifest[key], dict):
            raise damaged(path, f"'{key}' is {_json_type(manifest[key])}, not an object")
    for section in CONFIG_SECTIONS:
        value = manifest["config"].get(section)
        if section in manifest["config"] and not isinstance(value, dict):
            raise damaged(path, f"'config.{section}' is {_json_type(value)}, not an object")
    return manifest


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return names.get(type(value), type(value).__name__)

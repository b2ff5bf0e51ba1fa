"""Trials: every configuration evaluated on a universe and date range (METHOD.md, "Selection
bias"). Pure functions: what identifies a trial, and which recorded trials a DSR counts.

A trial record is a plain mapping: config_hash (the settings that change numbers), universe_hash,
start, end, and the portfolio's moments gross and net of costs (sr, n_days, skewness, kurtosis;
sr_net ...). The I/O (the JSON-lines file under report.out_dir) lives in `pipeline.trials`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.config import Config
from pipeline.statistics.sharpe import ReturnMoments


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def numbers_hash(config: Config) -> str:
    """Hash of the settings that change the backtest's numbers: features, model, backtest."""
    plain = config.to_dict()
    return _digest({key: plain[key] for key in ("features", "model", "backtest")})


def universe_hash(config: Config) -> str:
    """Hash of the universe: the source and the set of tickers (and the synthetic generator)."""
    data = config.data
    identity: dict[str, Any] = {"source": data.source, "tickers": sorted(data.universe)}
    if data.source == "synthetic":
        identity["synthetic"] = data.synthetic.model_dump(mode="json")
    return _digest(identity)


def trial_key(config: Config) -> dict[str, str]:
    """What makes trials comparable: the same universe_hash, start and end."""
    return {
        "universe_hash": universe_hash(config),
        "start": config.data.start.isoformat(),
        "end": config.data.end.isoformat(),
    }


def moments_fields(moments: ReturnMoments, suffix: str = "") -> dict[str, float | int]:
    return {
        f"sr{suffix}": moments.sharpe,
        f"n_days{suffix}": moments.n_days,
        f"skewness{suffix}": moments.skewness,
        f"kurtosis{suffix}": moments.kurtosis,
    }


def comparable_trials(
    records: Iterable[Mapping[str, Any]], key: Mapping[str, str]
) -> dict[str, Mapping[str, Any]]:
    """The latest record of each distinct config_hash with the same universe and range."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if all(record.get(name) == value for name, value in key.items()):
            config_hash = record.get("config_hash")
            if isinstance(config_hash, str):
                latest[config_hash] = record
    return latest


def trial_sharpes(trials: Mapping[str, Mapping[str, Any]], field: str = "sr") -> Sequence[float]:
    """The trials' non-annualised Sharpe ratios (`field`: sr or sr_net; net falls back to
    gross for a trial run without costs); unreadable values are left out."""
    values = []
    for record in trials.values():
        value = record.get(field, record.get("sr"))
        if isinstance(value, int | float) and math.isfinite(value):
            values.append(float(value))
    return values

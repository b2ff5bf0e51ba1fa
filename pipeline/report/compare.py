"""What changed between two runs, and whether it matters: the question a scheduled run's reader
asks every morning. `compare_runs` reads two run directories (summary, daily, manifest) and
returns a Comparison; `compare_text.format_comparison` writes it as plain text.

Run A is the earlier (baseline) run, B the newer one; every change reads "A -> B".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.report import formatting as fmt
from pipeline.report.aggregates import Aggregates, manifest_aggregates
from pipeline.report.run_files import RunFiles, flatten, read_run

COMPARED_METRICS: tuple[str, ...] = ("accuracy", "cum_return", "sharpe")
SUMMARY_DATA_FIELDS: tuple[str, ...] = ("first_day", "last_day", "n_days")
FINGERPRINT_FIELDS: tuple[str, ...] = ("first_date", "last_date", "rows", "sha256")
# Config keys that change how a run is executed or where it writes, never its figures.
RESULT_NEUTRAL_PREFIXES: tuple[str, ...] = (
    "execution.",
    "report.",
    "data.download.",
    "data.cache_dir",
)
# Two figures this close are the same figure (the executors agree to the last bit; this only
# absorbs float noise from a different summation order).
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ConfigChange:
    key: str
    before: Any
    after: Any

    @property
    def affects_results(self) -> bool:
        return not self.key.startswith(RESULT_NEUTRAL_PREFIXES)


@dataclass(frozen=True)
class StatusChange:
    ticker: str
    before: str
    after: str
    reason: str


@dataclass(frozen=True)
class DataChange:
    """One ticker's data field that differs: a summary field (first_day, last_day, n_days) or,
    when both manifests carry fingerprints, "fingerprint.<field>"."""

    ticker: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class HeadlineChange:
    """A run-level figure in A and in B; `kind` names its format (see HEADLINE_FORMATS)."""

    label: str
    before: float
    after: float
    kind: str


@dataclass(frozen=True)
class Comparison:
    """The differences between run A and run B.

    `metric_changes` has one row per ticker ok in both runs with <metric>_a, <metric>_b and
    <metric>_change (B - A) for each of COMPARED_METRICS, largest accuracy change first.
    """

    run_a: str
    run_b: str
    config_hash_a: str | None
    config_hash_b: str | None
    config_changes: tuple[ConfigChange, ...]
    tickers_added: tuple[str, ...]
    tickers_dropped: tuple[str, ...]
    newly_failing: tuple[StatusChange, ...]
    newly_ok: tuple[StatusChange, ...]
    other_status_changes: tuple[StatusChange, ...]
    data_changes: tuple[DataChange, ...]
    fingerprints_compared: bool
    headline: tuple[HeadlineChange, ...]
    finished_a: str | None = None
    finished_b: str | None = None
    mode_a: str | None = None
    mode_b: str | None = None
    metric_changes: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)

    @property
    def config_changed(self) -> bool:
        return self.config_hash_a != self.config_hash_b or bool(self.config_changes)

    @property
    def data_changed(self) -> bool:
        return bool(self.data_changes)

    @property
    def changed_tickers(self) -> tuple[str, ...]:
        """Tickers ok in both runs whose accuracy, cum_return or sharpe differ."""
        frame = self.metric_changes
        if frame.empty:
            return ()
        return tuple(frame.loc[frame["changed"], "ticker"])

    @property
    def status_changed(self) -> bool:
        return bool(self.newly_failing or self.newly_ok or self.other_status_changes)

    @property
    def nothing_changed(self) -> bool:
        return not (
            self.config_changed
            or self.data_changed
            or self.changed_tickers
            or self.status_changed
            or self.tickers_added
            or self.tickers_dropped
        )


def config_changes(config_a: dict[str, Any], config_b: dict[str, Any]) -> list[ConfigChange]:
    """Every dotted config key whose value differs, in A's key order, then keys only in B."""
    flat_a, flat_b = flatten(config_a), flatten(config_b)
    keys = list(flat_a) + [key for key in flat_b if key not in flat_a]
    return [
        ConfigChange(key, flat_a.get(key), flat_b.get(key))
        for key in keys
        if flat_a.get(key) != flat_b.get(key)
    ]


def _statuses(summary: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {
        str(row.ticker): (str(row.status), str(row.reason))
        for row in summary[["ticker", "status", "reason"]].itertuples()
    }


def status_changes(
    summary_a: pd.DataFrame, summary_b: pd.DataFrame
) -> tuple[list[StatusChange], list[StatusChange], list[StatusChange]]:
    """Tickers in both runs whose status moved: (newly failing, newly ok, any other move)."""
    before, after = _statuses(summary_a), _statuses(summary_b)
    failing, ok, other = [], [], []
    for ticker, (status_b, reason_b) in after.items():
        if ticker not in before or before[ticker][0] == status_b:
            continue
        change = StatusChange(ticker, before[ticker][0], status_b, reason_b or before[ticker][1])
        target = failing if status_b == "failed" else ok if status_b == "ok" else other
        target.append(change)
    return failing, ok, other


def same_value(a: Any, b: Any) -> bool:
    if fmt.is_missing(a) and fmt.is_missing(b):
        return True
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return str(a) == str(b)


def _both_ok(summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> pd.DataFrame:
    """Tickers ok in both runs, one row each, columns suffixed _a and _b (B's ticker order)."""
    ok_a = summary_a[summary_a["status"] == "ok"]
    ok_b = summary_b[summary_b["status"] == "ok"]
    return ok_b.merge(ok_a, on="ticker", suffixes=("_b", "_a"), sort=False)


def summary_data_changes(summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> list[DataChange]:
    """first_day, last_day or n_days that differ for a ticker ok in both runs."""
    joined = _both_ok(summary_a, summary_b)
    return [
        DataChange(str(row["ticker"]), name, _plain(row[f"{name}_a"]), _plain(row[f"{name}_b"]))
        for _, row in joined.iterrows()
        for name in SUMMARY_DATA_FIELDS
        if not same_value(_plain(row[f"{name}_a"]), _plain(row[f"{name}_b"]))
    ]


def fingerprint_changes(
    fingerprints_a: dict[str, dict[str, Any]], fingerprints_b: dict[str, dict[str, Any]]
) -> list[DataChange]:
    """Fields of the per-ticker fingerprints (first_date, last_date, rows, sha256) that differ,
    for tickers fingerprinted in both runs."""
    return [
        DataChange(ticker, f"fingerprint.{name}", before.get(name), after.get(name))
        for ticker, after in fingerprints_b.items()
        if (before := fingerprints_a.get(ticker)) is not None
        for name in FINGERPRINT_FIELDS
        if not same_value(before.get(name), after.get(name))
    ]


def _plain(value: Any) -> Any:
    """A pandas or numpy scalar as a plain Python value (NA -> None)."""
    if fmt.is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def metric_changes(summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> pd.DataFrame:
    """Per ticker ok in both runs: each compared metric in A and B, B - A, and `changed`."""
    joined = _both_ok(summary_a, summary_b)
    frame = pd.DataFrame({"ticker": joined["ticker"].astype(str)})
    changed = pd.Series(False, index=joined.index)
    for metric in COMPARED_METRICS:
        a = joined[f"{metric}_a"].astype("float64")
        b = joined[f"{metric}_b"].astype("float64")
        frame[f"{metric}_a"], frame[f"{metric}_b"], frame[f"{metric}_change"] = a, b, b - a
        same = np.isclose(a, b, rtol=RELATIVE_TOLERANCE, atol=1e-12, equal_nan=True)
        changed |= ~same
    frame["changed"] = changed.to_numpy()
    magnitude = pd.DataFrame(
        {"accuracy": frame["accuracy_change"].abs(), "sharpe": frame["sharpe_change"].abs()}
    ).fillna(0.0)
    order = magnitude.sort_values(["accuracy", "sharpe"], ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def headline_changes(agg_a: Aggregates, agg_b: Aggregates) -> list[HeadlineChange]:
    """The run-level figures that say whether the changes matter, in A and in B."""
    items: list[tuple[str, Callable[[Aggregates], float], str]] = [
        ("tickers ok", lambda agg: agg.counts["ok"], "count"),
        ("tickers failed", lambda agg: agg.counts["failed"], "count"),
        ("median accuracy", lambda agg: agg.distributions["accuracy"].median, "share_fine"),
        ("beat buy & hold", lambda agg: agg.share_beat_buy_hold, "share"),
        ("beat buy & hold, net", lambda agg: agg.share_beat_buy_hold_net, "share"),
        ("significant (BH 5%)", lambda agg: agg.share_significant, "share"),
        ("portfolio cum return", lambda agg: agg.portfolio_strategy.cum_return, "multiple"),
        ("portfolio Sharpe", lambda agg: agg.portfolio_strategy.sharpe, "ratio"),
        ("portfolio max drawdown", lambda agg: agg.portfolio_strategy.max_drawdown, "share"),
    ]
    return [HeadlineChange(label, get(agg_a), get(agg_b), kind) for label, get, kind in items]


def _fingerprints(manifest: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    fingerprints = manifest.get("fingerprints")
    # Absent (an older run) or empty (no ticker got as far as its prices): nothing to compare.
    return fingerprints if isinstance(fingerprints, dict) and fingerprints else None


def _aggregates(run: RunFiles) -> Aggregates:
    """As the run recorded them: a comparison recomputes no figure."""
    return manifest_aggregates(run.manifest, run_dir=run.run_dir)


def compare_runs(run_a: Path, run_b: Path) -> Comparison:
    """Compare run directory `run_a` (the baseline) with `run_b` (the newer run)."""
    a, b = read_run(Path(run_a)), read_run(Path(run_b))
    tickers_a, tickers_b = list(a.summary["ticker"]), list(b.summary["ticker"])
    failing, now_ok, other = status_changes(a.summary, b.summary)
    prints_a, prints_b = _fingerprints(a.manifest), _fingerprints(b.manifest)
    data = summary_data_changes(a.summary, b.summary)
    if prints_a is not None and prints_b is not None:
        data += fingerprint_changes(prints_a, prints_b)
    return Comparison(
        run_a=str(a.run_dir),
        run_b=str(b.run_dir),
        config_hash_a=a.manifest.get("config_hash"),
        config_hash_b=b.manifest.get("config_hash"),
        config_changes=tuple(
            config_changes(a.manifest.get("config", {}), b.manifest.get("config", {}))
        ),
        tickers_added=tuple(t for t in tickers_b if t not in set(tickers_a)),
        tickers_dropped=tuple(t for t in tickers_a if t not in set(tickers_b)),
        newly_failing=tuple(failing),
        newly_ok=tuple(now_ok),
        other_status_changes=tuple(other),
        data_changes=tuple(data),
        fingerprints_compared=prints_a is not None and prints_b is not None,
        headline=tuple(headline_changes(_aggregates(a), _aggregates(b))),
        finished_a=a.manifest.get("finished_at"),
        finished_b=b.manifest.get("finished_at"),
        mode_a=a.mode,
        mode_b=b.mode,
        metric_changes=metric_changes(a.summary, b.summary),
    )

"""What the data-quality policy did, for the report: which `data.quality` ran ("warn", "skip" or
"repair"), the findings by kind, the tickers skipped for them and each repair with its dates.

A pure function of the manifest's `data_quality` block (pipeline.data.download.quality_record):
{policy, tickers_flagged, findings: {kind: count}, skipped: [ticker], repaired: {ticker:
[[first, last, factor], ...]}}. A run written before the block existed has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.report.tables import Table

# What each policy does with a finding, in the words the report uses.
POLICY_MEANING: Mapping[str, str] = {
    "warn": "prices kept as the source gave them, findings flagged",
    "skip": "a ticker with a finding is skipped",
    "repair": "what can be repaired safely is rescaled before the backtest, the rest flagged",
}


@dataclass(frozen=True)
class QualitySummary:
    """The policy line and the tables behind it; every value a formatted string."""

    policy: str
    line: str
    findings: Table
    repairs: Table


def quality_summary(manifest: Mapping[str, Any]) -> QualitySummary | None:
    """The data-quality policy and what it did; None for a run that did not record it."""
    record = manifest.get("data_quality")
    if not isinstance(record, Mapping) or not record.get("policy"):
        return None
    policy = str(record["policy"])
    findings = {str(k): int(v) for k, v in (record.get("findings") or {}).items()}
    skipped = [str(ticker) for ticker in record.get("skipped") or ()]
    repairs = _repair_rows(record.get("repaired") or {})
    return QualitySummary(
        policy=policy,
        line=_policy_line(
            policy, int(record.get("tickers_flagged") or 0), findings, skipped, repairs
        ),
        findings=Table(("kind", "findings"), tuple((kind, str(n)) for kind, n in findings.items())),
        repairs=Table(("ticker", "first day", "last day", "prices multiplied by"), repairs),
    )


def _repair_rows(repaired: Mapping[str, Any]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        (str(ticker), str(first), str(last), f"{float(factor):g}")
        for ticker, changes in repaired.items()
        for first, last, factor in changes
    )


def _policy_line(
    policy: str,
    n_flagged: int,
    findings: Mapping[str, int],
    skipped: list[str],
    repairs: tuple[tuple[str, ...], ...],
) -> str:
    meaning = POLICY_MEANING.get(policy, "")
    head = f'data.quality = "{policy}"' + (f" ({meaning})" if meaning else "")
    if not n_flagged:
        return f"{head}: no finding in any ticker's prices."
    kinds = ", ".join(f"{count} {kind}" for kind, count in findings.items())
    parts = [f"{n_flagged} ticker(s) with findings ({kinds})"]
    if policy == "skip" or skipped:
        parts.append(
            f"{len(skipped)} skipped for quality" + (f": {', '.join(skipped)}" if skipped else "")
        )
    if policy == "repair" or repairs:
        tickers = sorted({row[0] for row in repairs})
        parts.append(f"{len(repairs)} repair(s)" + (f" in {', '.join(tickers)}" if tickers else ""))
    return f"{head}: " + "; ".join(parts) + "."

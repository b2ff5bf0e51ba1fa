"""Plain-words verdicts: is there evidence of skill after costs, baselines and trials?

Pure functions of figures already computed (the manifest's statistics block, a sweep's table):
the sentence an analyst reads first, with the figures behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# DSR at or above this: the Sharpe ratio is unlikely to be the best of the trials by luck.
DSR_THRESHOLD = 0.95


def _num(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def run_verdict(statistics: Mapping[str, Any], in_sample: bool = False) -> dict[str, Any]:
    """{evidence: bool, headline: str, details: str} for one run's equal-weight portfolio.

    Evidence of skill needs all three: DSR (net of costs when costs were given) >= 0.95 over
    the trials of the universe and range, and a net Sharpe ratio above the best baseline's.
    """
    net = "_net" if "dsr_net" in statistics else ""
    dsr = statistics.get(f"dsr{net}")
    sharpe = statistics.get(f"portfolio_sharpe{net}")
    low, high = (
        statistics.get(f"portfolio_sharpe_lo{net}"),
        statistics.get(f"portfolio_sharpe_hi{net}"),
    )
    n_trials = statistics.get(f"n_trials{net}", 1)
    baseline = statistics.get(f"best_baseline{net}") or statistics.get("best_baseline")
    baseline_sharpe = statistics.get(f"best_baseline_sharpe{net}")
    passes_dsr = isinstance(dsr, int | float) and dsr >= DSR_THRESHOLD
    beats_baseline = (
        isinstance(sharpe, int | float)
        and isinstance(baseline_sharpe, int | float)
        and sharpe > baseline_sharpe
    ) or baseline_sharpe is None
    evidence = bool(passes_dsr and beats_baseline and not in_sample)
    costs = "after costs" if net else "before costs (none given)"
    reasons = []
    if not passes_dsr:
        reasons.append(f"DSR {_num(dsr)} is below {DSR_THRESHOLD} after {n_trials} trial(s)")
    if not beats_baseline:
        reasons.append(f"the best baseline ({baseline}, Sharpe {_num(baseline_sharpe)}) "
                       "does at least as well")  # fmt: skip
    if in_sample:
        reasons.append("the run is in-sample: it describes the past, not a forecast")
    if evidence:
        headline = (
            f"Evidence of skill {costs}: DSR {_num(dsr)} over {n_trials} trial(s), and the "
            f"portfolio's Sharpe {_num(sharpe)} beats the best baseline ({baseline}, "
            f"{_num(baseline_sharpe)})."
        )
    else:
        headline = f"No evidence of skill {costs}: " + "; ".join(reasons) + "."
    details = (
        f"Portfolio Sharpe {_num(sharpe)} (interval {_num(low)} to {_num(high)}), "
        f"PSR {_num(statistics.get(f'psr{net}'))}, DSR {_num(dsr)}, {n_trials} trial(s); "
        f"best baseline {baseline} {_num(baseline_sharpe)}."
    )
    return {"evidence": evidence, "headline": headline, "details": details}


def sweep_verdict(best: Mapping[str, Any], pbo: float | None, n_trials: int) -> dict[str, Any]:
    """The verdict of a sweep from its best configuration by DSR and its PBO."""
    dsr = best.get("dsr")
    passes = isinstance(dsr, int | float) and dsr >= DSR_THRESHOLD
    overfit = pbo is not None and pbo >= 0.5
    pbo_text = "PBO could not be computed" if pbo is None else f"PBO {_num(pbo)}"
    if passes and not overfit:
        headline = (
            f"Evidence of skill: the best configuration ({best.get('config_hash')}) has DSR "
            f"{_num(dsr)} after {n_trials} trials, and {pbo_text}: the in-sample winner "
            "usually stays above the median out of sample."
        )
    elif overfit:
        headline = (
            f"Likely overfit: {pbo_text}, so the configuration that looks best in-sample falls "
            f"to or below the median out of sample in {_num(100 * pbo, 0)}% of splits; "
            f"best DSR {_num(dsr)} after {n_trials} trials."
        )
    else:
        headline = (
            f"No evidence of skill: the best DSR is {_num(dsr)} (needs {DSR_THRESHOLD}) after "
            f"{n_trials} trials; {pbo_text}."
        )
    return {"evidence": bool(passes and not overfit), "headline": headline}

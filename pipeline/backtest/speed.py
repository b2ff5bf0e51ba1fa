"""Warnings, before a run, about model settings that make the backtest stage slow.

Measured on one real ticker of 21 years (5,402 prices) in walk_forward with the defaults
(train_days 504, retrain_every 21: about 230 refits), one core: the SVC's fast path 1.6-2.9 s,
the plain SVC fit 374 s; logistic regression 1.7-2.5 s and linear_svc 0.5-0.7 s either way;
random_forest (no exact fast path, so always the plain fit) 44-97 s.
"""

from __future__ import annotations

from pipeline.backtest.models import weighted_fit_is_exact
from pipeline.config import BacktestSettings

# Kinds whose plain fit costs a minute or more per ticker in walk_forward (figures above).
SLOW_PLAIN_FIT = frozenset({"svc", "random_forest"})


def speed_warnings(settings: BacktestSettings) -> list[str]:
    """One line per setting that will make walk_forward slow, saying what is faster."""
    model, backtest = settings.model, settings.backtest
    if backtest.mode != "walk_forward" or model.kind not in SLOW_PLAIN_FIT:
        return []
    if model.fast_path and weighted_fit_is_exact(model.kind, model.params):
        return []
    if not weighted_fit_is_exact(model.kind, model.params):
        why = f"model.kind {model.kind!r} with these params has no exact fast path"
        faster = "a larger backtest.retrain_every or mode 'holdout' is faster"
    else:
        why = "model.fast_path = false"
        faster = "model.fast_path = true fits the same model in seconds"
    return [
        f"{why}, so each walk_forward refit (every {backtest.retrain_every} rows) fits every "
        f"training row: expect a minute or more per ticker of 20 years; {faster}"
    ]

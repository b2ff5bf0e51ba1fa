"""The per-ticker task: one ticker's prices in, its TickerResult out.

`backtest_ticker` is what every executor runs (serial, process pool, Dask): a top-level pure
function of plain picklable inputs, with no globals and no I/O. Data problems never raise: they
end as status "skipped" (too few rows for the mode) or "failed" (prices that cannot be cleaned,
one target class, an estimator error), with the reason. Only a bad config raises (ConfigError).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import cache
from typing import Any

import pandas as pd
from threadpoolctl import ThreadpoolController

from pipeline.backtest.evaluation import (
    Evaluation,
    Resume,
    TooFewRowsError,
    evaluate,
    plan_refits,
)
from pipeline.backtest.features import Design
from pipeline.backtest.incremental import PricesUsed, StoredRows, plan_resume, prices_used
from pipeline.backtest.metrics import strategy_log_returns, summarise
from pipeline.backtest.models import make_estimator
from pipeline.backtest.result import TickerResult
from pipeline.backtest.shared import SharedPrices
from pipeline.config import BacktestSettings
from pipeline.errors import DataError
from pipeline.statistics.baselines import baseline_positions, majority_positions
from pipeline.statistics.bootstrap import TickerIntervals
from pipeline.statistics.ticker import assess_ticker, intervals_of

logger = logging.getLogger(__name__)


def backtest_ticker(ticker: str, prices: pd.Series, settings: BacktestSettings) -> TickerResult:
    """Backtest one ticker as METHOD.md states; `prices` are adjusted closes on a DatetimeIndex."""
    return backtest_resuming(ticker, prices, settings)[0]


def backtest_resuming(
    ticker: str,
    prices: pd.Series,
    settings: BacktestSettings,
    stored: StoredRows | None = None,
    why_not_stored: str = "no results store",
    shared: SharedPrices | None = None,
) -> tuple[TickerResult, StoredRows | None]:
    """`backtest_ticker`, reusing `stored` where METHOD.md "Incremental runs" allows, and what
    to store of the result (None unless it is ok). The result is the same with or without
    `stored`, bit for bit; its `reuse` says how many rows were reused and, for a full
    computation, why (`why_not_stored` when there was nothing to reuse). `shared`, when given,
    holds `prices` cleaned and their design matrices, computed once for several settings."""
    # A bad model.params is the config's fault: raise, early. Without params the estimator
    # is the registry's own, and is built only when a refit needs it: a ticker whose stored
    # refits all stand never imports scikit-learn.
    if settings.model.params:
        make_estimator(settings.model.kind, settings.model.params)
    shared = shared if shared is not None else SharedPrices(prices)
    try:
        cleaned = shared.cleaned()
    except DataError as exc:
        return TickerResult(ticker, "failed", reason=str(exc)), None
    resume, why = (
        (None, why_not_stored) if stored is None else plan_resume(stored, cleaned.prices, settings)
    )
    design = shared.design(settings.features.lags)
    warnings = cleaned.warnings
    try:
        with single_threaded_blas():
            evaluation = evaluate(
                design.features,
                design.targets,
                settings.model,
                settings.backtest,
                signal_features=design.signal_features,
                resume=resume,
            )
    except TooFewRowsError as exc:
        reason = f"{exc} ({len(cleaned.prices)} prices, lags={settings.features.lags})"
        return TickerResult(ticker, "skipped", reason=reason, warnings=warnings), None
    except DataError as exc:
        return TickerResult(ticker, "failed", reason=str(exc), warnings=warnings), None
    except Exception as exc:  # an estimator may raise anything; one ticker must not stop the run
        logger.warning("%s: the model raised %s: %s", ticker, type(exc).__name__, exc)
        reason = f"the model raised {type(exc).__name__}: {exc}"
        return TickerResult(ticker, "failed", reason=reason, warnings=warnings), None
    if evaluation.one_class_refits:
        warnings = (*warnings, _one_class_note(evaluation))
    known = stored.intervals_for(cleaned.prices) if resume is not None and stored else None
    result = _ok_result(ticker, design, evaluation, settings, warnings, known)
    result = replace(result, reuse=_reuse_note(evaluation, resume, why))
    intervals = intervals_of(result.metrics)
    # Intervals reused: the prices are the stored ones, whole (plan_resume hashed them).
    used = stored.prices if known is not None and stored else prices_used(cleaned.prices)
    return result, _to_store(ticker, used, design, evaluation, stored, intervals)


def _reuse_note(evaluation: Evaluation, resume: Resume | None, why: str) -> dict[str, Any]:
    n_days = len(evaluation.positions)
    reused = 0 if resume is None else min(resume.next_row - evaluation.first_row, n_days)
    return {
        "rows_reused": reused,
        "rows_computed": n_days - reused,
        "refits_computed": evaluation.refits_computed,
        "reason": "" if resume is not None else why,
    }


def _to_store(
    ticker: str,
    prices: PricesUsed,
    design: Design,
    evaluation: Evaluation,
    stored: StoredRows | None,
    intervals: TickerIntervals,
) -> StoredRows | None:
    if evaluation.predictions is None or design.as_of is None:
        return None
    first = evaluation.first_row
    row_dates = design.decision_dates[first:].append(pd.DatetimeIndex([design.as_of]))
    return StoredRows(
        ticker=ticker,
        settings_key=stored.settings_key if stored is not None else "",
        prices=prices,
        first_row=first,
        predictions=evaluation.predictions,
        row_dates=row_dates.as_unit("ns").to_numpy(),
        one_class=evaluation.one_class,
        intervals=intervals,
        table=evaluation.table,
        table_refit=evaluation.table_refit,
    )


def single_threaded_blas() -> AbstractContextManager[object]:
    """One BLAS thread while a ticker is fitted.

    The models are tiny (a few dozen rows of L features), and waking BLAS threads for each of
    L-BFGS's small vector operations costs more than the operation: logistic regression ran 6-12x
    slower with OpenBLAS's default threads on a busy machine, with identical results. Executors
    run one task per process and core, so more threads per task only oversubscribe the cores.
    threadpoolctl (a dependency of scikit-learn) is the one portable way to set this after
    numpy and scipy are loaded.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@cache
def _blas_controller() -> ThreadpoolController:
    """Finding the loaded BLAS libraries takes milliseconds: once per process."""
    return ThreadpoolController()


def _ok_result(
    ticker: str,
    design: Design,
    evaluation: Evaluation,
    settings: BacktestSettings,
    warnings: tuple[str, ...],
    known: TickerIntervals | None = None,
) -> TickerResult:
    rows = slice(evaluation.first_row, design.n_rows)
    positions = evaluation.positions
    asset = design.next_returns[rows]
    holding_dates = design.holding_dates[rows]
    metrics = summarise(positions, design.targets[rows], asset, settings.backtest.cost_bps)
    metrics.update(
        mode=settings.backtest.mode,
        first_day=holding_dates[0].date().isoformat(),
        last_day=holding_dates[-1].date().isoformat(),
    )
    baselines = _baselines(design, rows, settings)
    targets = design.targets[rows]
    metrics.update(
        assess_ticker(ticker, positions, targets, asset, baselines, settings.intervals, known)
    )
    daily = pd.DataFrame(
        {
            "date": holding_dates,
            "position": positions,
            "asset_log_return": asset,
            "strategy_log_return": strategy_log_returns(positions, asset),
            "majority_position": baselines["majority"],
            "momentum_position": baselines["momentum"],
        }
    )
    signal = _signal(design, evaluation, settings)
    return TickerResult(
        ticker, "ok", metrics=metrics, daily=daily, warnings=warnings, signal=signal
    )


def _signal(
    design: Design, evaluation: Evaluation, settings: BacktestSettings
) -> dict[str, Any] | None:
    """The position for the next session (METHOD.md, "Next-session positions") and what an
    analyst needs beside it. refit_date is the decision day of row `stop` of the model's
    training rows [start, stop): the close at which its last training target became known."""
    if evaluation.signal is None or evaluation.signal_fit_rows is None or design.as_of is None:
        return None
    start, stop = evaluation.signal_fit_rows
    fitted_on = design.decision_dates[stop] if stop < design.n_rows else design.as_of
    return {
        "as_of": design.as_of.date().isoformat(),
        "position": evaluation.signal,
        "mode": settings.backtest.mode,
        "refit_date": fitted_on.date().isoformat(),
        "train_rows": stop - start,
        "in_sample": settings.backtest.mode == "in_sample",
        "last_close": design.as_of_price,
    }


def _baselines(design: Design, rows: slice, settings: BacktestSettings) -> dict:
    """The baselines' positions on the evaluation rows `rows` (METHOD.md, "Baselines")."""
    refits = plan_refits(design.n_rows, settings.backtest)
    majority = majority_positions(
        design.targets, [(refit.train, refit.predict) for refit in refits]
    )
    return baseline_positions(design.features[rows, 0], majority)


def _one_class_note(evaluation: Evaluation) -> str:
    return (
        f"{evaluation.one_class_refits} of {evaluation.n_refits} refits had one target class "
        "in their training rows and predicted that class"
    )

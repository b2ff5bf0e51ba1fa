"""The per-ticker task: one ticker's prices in, its TickerResult out.

`backtest_ticker` is what every executor runs (serial, process pool, Dask): a top-level pure
function of plain picklable inputs, with no globals and no I/O. Data problems never raise: they
end as status "skipped" (too few rows for the mode) or "failed" (prices that cannot be cleaned,
one target class, an estimator error), with the reason. Only a bad config raises (ConfigError).
"""

from __future__ import annotations

import logging

import pandas as pd

from pipeline.backtest.cleaning import clean_prices
from pipeline.backtest.evaluation import Evaluation, TooFewRowsError, evaluate
from pipeline.backtest.features import Design, build_design
from pipeline.backtest.metrics import strategy_log_returns, summarise
from pipeline.backtest.models import make_estimator
from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.errors import DataError

logger = logging.getLogger(__name__)


def backtest_ticker(ticker: str, prices: pd.Series, settings: BacktestSettings) -> TickerResult:
    """Backtest one ticker as METHOD.md states; `prices` are adjusted closes on a DatetimeIndex."""
    make_estimator(settings.model)  # a bad model.params is the config's fault: raise, early
    try:
        cleaned = clean_prices(prices)
    except DataError as exc:
        return TickerResult(ticker, "failed", reason=str(exc))
    design = build_design(cleaned.prices, settings.features.lags)
    warnings = cleaned.warnings
    try:
        evaluation = evaluate(design.features, design.targets, settings.model, settings.backtest)
    except TooFewRowsError as exc:
        reason = f"{exc} ({len(cleaned.prices)} prices, lags={settings.features.lags})"
        return TickerResult(ticker, "skipped", reason=reason, warnings=warnings)
    except DataError as exc:
        return TickerResult(ticker, "failed", reason=str(exc), warnings=warnings)
    except Exception as exc:  # an estimator may raise anything; one ticker must not stop the run
        logger.warning("%s: the model raised %s: %s", ticker, type(exc).__name__, exc)
        reason = f"the model raised {type(exc).__name__}: {exc}"
        return TickerResult(ticker, "failed", reason=reason, warnings=warnings)
    if evaluation.one_class_refits:
        warnings = (*warnings, _one_class_note(evaluation))
    return _ok_result(ticker, design, evaluation, settings, warnings)


def _ok_result(
    ticker: str,
    design: Design,
    evaluation: Evaluation,
    settings: BacktestSettings,
    warnings: tuple[str, ...],
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
    daily = pd.DataFrame(
        {
            "date": holding_dates,
            "position": positions,
            "asset_log_return": asset,
            "strategy_log_return": strategy_log_returns(positions, asset),
        }
    )
    return TickerResult(ticker, "ok", metrics=metrics, daily=daily, warnings=warnings)


def _one_class_note(evaluation: Evaluation) -> str:
    return (
        f"{evaluation.one_class_refits} of {evaluation.n_refits} refits had one target class "
        "in their training rows and predicted that class"
    )

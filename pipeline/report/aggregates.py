"""Figures across all tickers of one run: pure functions of the summary and daily frames.

Inputs are the run directory's tables (CONTRACT.md): `summary` has one row per requested ticker
(columns SUMMARY_COLUMNS), `daily` one row per ok ticker and holding day (ticker plus
DAILY_COLUMNS). Shares are fractions in [0, 1]; cumulative returns are the value of 1 invested.

The equal-weight portfolio (PORTFOLIO_DEFINITION, METHOD.md) is a book of simple returns: each
day, the tickers with an evaluation row hold equal capital, rebalanced daily, so the day's simple
return is the mean of their simple returns exp(s) - 1 and its log return is ln(1 + that mean).
The mean of the log returns is not a portfolio: it sits below the book by about half the day's
cross-sectional variance (Jensen), several percent a year on real tickers. Net of costs, each
ticker's net log return is formed first and then turned into a simple return.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pipeline.backtest.metrics import (
    APPROX_BDAYS_PER_YEAR,
    BPS_PER_UNIT,
    benjamini_hochberg,
    cum_return,
    max_drawdown,
    sharpe_ratio,
)
from pipeline.backtest.result import count_statuses
from pipeline.errors import RunDirectoryError

DISTRIBUTION_COLUMNS: tuple[str, ...] = (
    "accuracy",
    "cum_return",
    "cum_return_net",
    "buy_hold",
    "sharpe",
    "max_drawdown",
)
SIGNIFICANCE_LEVEL = 0.05  # false discovery rate of the Benjamini-Hochberg procedure
SHORT_HISTORY_DAYS = APPROX_BDAYS_PER_YEAR  # fewer evaluation days than a year: noisy figures
PORTFOLIO_COST_SENTENCE = " Net of costs, each ticker's net log return comes first."
PORTFOLIO_DEFINITION = (
    "Equal weight of all ok tickers, rebalanced daily: the portfolio's simple return on a day is "
    "the mean of the simple returns (exp(log return) - 1) of the tickers that have a row that "
    "day, and its log return is ln(1 + that mean)."
    + PORTFOLIO_COST_SENTENCE
    + " Buy-and-hold is averaged the same way from the assets' returns."
)
# Which return convention each figure uses: readers compare with tools that differ.
RETURN_CONVENTIONS: tuple[tuple[str, str], ...] = (
    (
        "Sharpe ratio",
        "mean / standard deviation (ddof=1) of daily natural-log returns, times sqrt(252), no "
        "risk-free rate. empyrical and quantstats use simple returns: on volatile tickers their "
        "figure can differ from this one by up to about 0.5.",
    ),
    (
        "cum return, buy & hold",
        "exp(sum of daily log returns): the value of 1 invested, compounding exactly.",
    ),
    (
        "portfolio",
        "daily simple returns averaged across tickers (a daily-rebalanced equal-weight book), "
        "then turned back into log returns for its Sharpe ratio, drawdown, PSR and DSR.",
    ),
    (
        "max drawdown",
        "1 - equity / running peak of equity, equity = exp(cumulative log return).",
    ),
    (
        "annual return",
        "exp(252 * mean daily log return) - 1: the compound annual growth rate.",
    ),
    (
        "intervals, PSR, DSR",
        "from the same daily log returns as the Sharpe ratio (non-annualised inside PSR/DSR).",
    ),
)


@dataclass(frozen=True)
class Distribution:
    """Summary statistics of one column over the ok tickers (NaN values left out)."""

    count: int
    mean: float
    median: float
    q1: float
    q3: float
    min: float
    max: float


@dataclass(frozen=True)
class ReasonGroup:
    """Tickers of one status whose reasons share a kind (see `reason_kind`)."""

    status: str
    kind: str
    tickers: tuple[str, ...]


@dataclass(frozen=True)
class PortfolioStats:
    """Figures of one daily log-return series, by the definitions of METHOD.md."""

    n_days: int
    first_date: str | None
    last_date: str | None
    cum_return: float
    annual_return: float
    sharpe: float
    max_drawdown: float


@dataclass(frozen=True)
class Aggregates:
    """Everything the reports say about the run as a whole.

    `curves` (not part of `to_dict`) is indexed by date and holds the portfolio's daily log
    returns: strategy, strategy_net (only when costs were given), buy_hold, and n_tickers.
    """

    n_tickers: int
    counts: Mapping[str, int]
    reasons: tuple[ReasonGroup, ...]
    distributions: Mapping[str, Distribution]
    mean_majority_rate: float
    share_beat_buy_hold: float
    share_beat_buy_hold_net: float
    significance_level: float
    n_tested: int
    n_significant: int
    share_significant: float
    n_short_history: int
    cost_bps: float
    portfolio_strategy: PortfolioStats
    portfolio_strategy_net: PortfolioStats | None
    portfolio_buy_hold: PortfolioStats
    # The ok tickers with fewer than SHORT_HISTORY_DAYS evaluation days, in summary order, and
    # each figure's distribution over the other ok tickers: the extremes (min, max, best,
    # worst) the reports show leave out figures that rest on a few months of data.
    short_history_tickers: tuple[str, ...] = ()
    full_history_distributions: Mapping[str, Distribution] = field(default_factory=dict)
    curves: pd.DataFrame = field(compare=False, repr=False, default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain ints, floats, strings, lists and dicts; NaN becomes None."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "curves"}
        plain["portfolio_definition"] = PORTFOLIO_DEFINITION
        return json_ready(plain)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], curves: pd.DataFrame | None = None) -> Aggregates:
        """The figures `to_dict` wrote (a manifest's "aggregates"), as they were computed: JSON
        keeps every float exactly and None stands for NaN. `curves` are the daily series a
        chart draws; the manifest does not hold them. Keys of no field are left out."""
        known = {f.name for f in fields(cls)} - {"curves"}
        plain = {name: _from_json(cls, name, v) for name, v in data.items() if name in known}
        plain["reasons"] = tuple(
            ReasonGroup(group["status"], group["kind"], tuple(group["tickers"]))
            for group in data.get("reasons", ())
        )
        for name in ("distributions", "full_history_distributions"):
            plain[name] = {
                column: _dataclass_from_json(Distribution, stats)
                for column, stats in (data.get(name) or {}).items()
            }
        plain["short_history_tickers"] = tuple(data.get("short_history_tickers") or ())
        for name in ("portfolio_strategy", "portfolio_strategy_net", "portfolio_buy_hold"):
            stats = data.get(name)
            plain[name] = None if stats is None else _dataclass_from_json(PortfolioStats, stats)
        empty = pd.DataFrame({"strategy": [], "buy_hold": [], "n_tickers": []})
        return cls(**plain, curves=empty if curves is None else curves)


def _from_json(owner: type, name: str, value: Any) -> Any:
    """None back to NaN, except in a field that may be None."""
    optional = "None" in str(next(f.type for f in fields(owner) if f.name == name))
    return math.nan if value is None and not optional else value


def _dataclass_from_json(cls: type, data: Mapping[str, Any]) -> Any:
    return cls(**{f.name: _from_json(cls, f.name, data.get(f.name)) for f in fields(cls)})


def json_ready(value: Any) -> Any:
    """`value` with dataclasses, mappings, tuples and numpy scalars made plain; NaN -> None."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: json_ready(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def ok_rows(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["status"] == "ok"]


def reason_kind(reason: str) -> str:
    """The kind of a skip or failure reason, so that reasons differing in details group together.

    Parenthesised details and everything after the first ": " are dropped and numbers become
    "N": "download: HTTP 404 (after 4 tries)" -> "download"; "too few rows for walk_forward:
    300 rows give ..." -> "too few rows for walk_forward".
    """
    text = re.sub(r"\([^)]*\)", "", str(reason)).split(": ", 1)[0]
    text = re.sub(r"\d+(?:\.\d+)?", "N", text)
    text = re.sub(r"\s+([;,.])", r"\1", " ".join(text.split()))
    return text or "(no reason given)"


def group_reasons(summary: pd.DataFrame) -> tuple[ReasonGroup, ...]:
    """Skipped and failed tickers grouped by status and reason kind, largest group first."""
    problems = summary[summary["status"] != "ok"]
    kinds = problems["reason"].fillna("").map(reason_kind)
    groups = [
        ReasonGroup(status, kind, tuple(rows["ticker"]))
        for (status, kind), rows in problems.groupby([problems["status"], kinds], sort=False)
    ]
    return tuple(sorted(groups, key=lambda group: (group.status, -len(group.tickers))))


def describe_column(values: pd.Series) -> Distribution:
    """Count, mean, median, quartiles (linear interpolation), min and max; NaN for no values."""
    values = pd.to_numeric(values, errors="coerce").astype("float64").dropna()
    if values.empty:
        return Distribution(0, *([math.nan] * 6))
    q1, median, q3 = values.quantile([0.25, 0.5, 0.75])
    return Distribution(
        count=len(values),
        mean=float(values.mean()),
        median=float(median),
        q1=float(q1),
        q3=float(q3),
        min=float(values.min()),
        max=float(values.max()),
    )


def share_true(flags: pd.Series) -> float:
    """Share of True among `flags`; NaN for none."""
    return float(flags.mean()) if len(flags) else math.nan


def share_beating(ok: pd.DataFrame, column: str) -> float:
    """Share of ok tickers whose `column` (cum_return or cum_return_net) exceeds buy_hold."""
    return share_true(ok[column].astype("float64") > ok["buy_hold"].astype("float64"))


def bh_q_values(summary: pd.DataFrame) -> pd.Series:
    """Benjamini-Hochberg q-values of the ok tickers' p-values, indexed like `summary`.

    The family is the ok tickers with a p-value; every other row gets NaN.
    """
    q_values = pd.Series(math.nan, index=summary.index, dtype="float64")
    ok = ok_rows(summary)
    q_values[ok.index] = benjamini_hochberg(ok["p_value"].astype("float64").to_numpy())
    return q_values


def portfolio_returns(daily: pd.DataFrame, cost_bps: float = 0.0) -> pd.DataFrame:
    """Per date: the equal-weight portfolio's daily log returns (METHOD.md).

    Columns strategy, buy_hold, n_tickers, plus strategy_net when `cost_bps` > 0 (each ticker's
    log return less cost_bps / 10^4 * |pos_t - pos_{t-1}|, entering from flat, before it is
    averaged). Each value is ln(1 + mean over the day's tickers of exp(log return) - 1). A NaN
    return on a day makes that day's value NaN, as in the per-ticker figures.
    """
    returns = _row_returns(
        daily["position"].to_numpy(dtype="float64"),
        daily["asset_log_return"].to_numpy(dtype="float64"),
        daily["strategy_log_return"].to_numpy(dtype="float64"),
        _ticker_rows(daily) if cost_bps > 0 else None,
        cost_bps,
    )
    (frame,) = _day_means(daily, [returns])
    return frame


# A portfolio's per-row log returns, or what computes them when its column is filled.
_Column = NDArray[np.float64] | Callable[[], NDArray[np.float64]]


def baseline_portfolios(daily: pd.DataFrame, cost_bps: float = 0.0) -> dict[str, pd.DataFrame]:
    """Each baseline's equal-weight portfolio (METHOD.md, "Baselines"), as `portfolio_returns`
    frames; {} when `daily` lacks the baselines' positions (a run written before them).

    Each baseline's per-row returns are computed when its column of the grouped block is
    filled, and dropped once it is: all of them at once (four baselines' positions, returns and
    net returns) were 350 MB beside 1.8 million daily rows, the run's peak.
    """
    if not {"majority_position", "momentum_position"} <= set(daily.columns):
        return {}

    def momentum() -> NDArray[np.float64]:
        return daily["momentum_position"].to_numpy(dtype="float64")

    held: dict[str, Callable[[], NDArray[np.float64]]] = {
        "long": lambda: np.ones(len(daily)),
        "majority": lambda: daily["majority_position"].to_numpy(dtype="float64"),
        "momentum": momentum,
        "reversal": lambda: -momentum(),
    }
    asset = daily["asset_log_return"].to_numpy(dtype="float64")
    rows = _ticker_rows(daily) if cost_bps > 0 else None
    portfolios = [_held_returns(positions, asset, rows, cost_bps) for positions in held.values()]
    return dict(zip(held, _day_means(daily, portfolios), strict=True))


def _held_returns(
    positions: Callable[[], NDArray[np.float64]],
    asset: NDArray[np.float64],
    rows: _TickerRows | None,
    cost_bps: float,
) -> dict[str, _Column]:
    """`_row_returns` of a baseline holding `positions`, each column computed when asked."""

    def strategy() -> NDArray[np.float64]:
        return positions() * asset

    def strategy_net() -> NDArray[np.float64]:
        held = positions()
        return _row_returns(held, asset, held * asset, rows, cost_bps)["strategy_net"]

    returns: dict[str, _Column] = {"strategy": strategy, "buy_hold": asset}
    if rows is not None and cost_bps > 0:
        returns["strategy_net"] = strategy_net
    return returns


def _row_returns(
    positions: NDArray[np.float64],
    asset: NDArray[np.float64],
    strategy: NDArray[np.float64],
    rows: _TickerRows | None,
    cost_bps: float,
) -> dict[str, NDArray[np.float64]]:
    """The per-row log returns one portfolio averages, by its column name: strategy_net too
    when `rows` (the ticker layout its costs need) is given and `cost_bps` > 0."""
    returns = {"strategy": strategy, "buy_hold": asset}
    if rows is not None and cost_bps > 0:
        changes = _changes(positions, rows)
        returns["strategy_net"] = strategy - cost_bps / BPS_PER_UNIT * changes
    return returns


def _day_means(
    daily: pd.DataFrame, portfolios: Sequence[Mapping[str, _Column]]
) -> list[pd.DataFrame]:
    """`portfolio_returns`' frame of each of `portfolios` (per-row log returns over `daily`'s
    rows, by column name), from one grouping of the rows by day.

    Grouping 20 years of 500 tickers by day is most of the cost, and a run computes the
    model's portfolio and four baselines' over the same rows: the day codes are found once,
    a column shared by several portfolios (the same array) is averaged once, and every column
    in one grouped mean over one block. pandas' compensated mean runs column by column, so
    each value is the one a grouping of its column alone gives. A column given as a function
    is computed while its part of the block is filled, so only the block stays in memory.
    """
    codes, days = pd.factorize(pd.DatetimeIndex(daily["date"]), sort=True)
    distinct = list(
        {id(values): values for found in portfolios for values in found.values()}.values()
    )
    column = {id(values): number for number, values in enumerate(distinct)}
    # Column-major, so that the frame wraps the block without copying it.
    simple = np.empty((len(daily), len(distinct)), order="F")
    has_nan = np.empty((len(days), len(distinct)), dtype=bool)
    for number, values in enumerate(distinct):
        returns = values() if callable(values) else values
        np.expm1(returns, out=simple[:, number])
        has_nan[:, number] = np.bincount(codes, weights=np.isnan(returns), minlength=len(days)) > 0
        del returns
    means = pd.DataFrame(simple, copy=False).groupby(codes, sort=True).mean().to_numpy()
    del simple
    logs = np.log1p(means)
    logs[has_nan] = np.nan
    index = pd.DatetimeIndex(days, name="date")
    n_tickers = np.bincount(codes, minlength=len(days))
    return [
        pd.DataFrame(
            {
                **{name: logs[:, column[id(values)]] for name, values in found.items()},
                "n_tickers": n_tickers,
            },
            index=index,
        )
        for found in portfolios
    ]


@dataclass(frozen=True, slots=True)
class _TickerRows:
    """Rows in ticker-then-date order (`order`; None when they already are, as a run assembles
    them) and which of them, in that order, is its ticker's first."""

    order: NDArray[np.intp] | None
    first: NDArray[np.bool_]


def _ticker_rows(daily: pd.DataFrame) -> _TickerRows:
    tickers, _ = pd.factorize(daily["ticker"], sort=False)
    dates = pd.DatetimeIndex(daily["date"]).asi8
    steps = np.diff(tickers)
    new_ticker = steps != 0
    order = None
    if not (np.all(steps >= 0) and np.all(new_ticker | (np.diff(dates) > 0))):
        order = np.lexsort((dates, tickers))  # stable: tied rows keep their order
        new_ticker = np.diff(tickers[order]) != 0
    return _TickerRows(order, np.concatenate([[True], new_ticker]) if len(daily) else new_ticker)


def _changes(positions: NDArray[np.float64], rows: _TickerRows) -> NDArray[np.float64]:
    """|pos_t - pos_{t-1}| of each row (in the rows' own order), the first of a ticker's rows
    from flat."""
    ordered = positions if rows.order is None else positions[rows.order]
    previous = np.concatenate([[0.0], ordered[:-1]])
    previous[rows.first] = 0.0
    changes = np.abs(ordered - previous)
    if rows.order is None:
        return changes
    found = np.empty_like(changes)
    found[rows.order] = changes
    return found


def position_changes(daily: pd.DataFrame) -> pd.Series:
    """|pos_t - pos_{t-1}| of each row within its ticker, in date order; the first from flat."""
    positions = daily["position"].to_numpy(dtype="float64")
    return pd.Series(_changes(positions, _ticker_rows(daily)), index=daily.index)


def equity_curve(log_returns: pd.Series) -> pd.Series:
    """exp(cumsum): the value of 1 invested at the start, after each day."""
    return np.exp(log_returns.cumsum())


def drawdown_curve(log_returns: pd.Series) -> pd.Series:
    """1 - equity / running peak after each day (the start at 1 counts as a peak), in [0, 1].

    Its maximum is `metrics.max_drawdown` of the same returns.
    """
    log_equity = log_returns.cumsum()
    log_peak = np.maximum(log_equity.cummax(), 0.0)
    return -np.expm1(log_equity - log_peak)


def portfolio_stats(log_returns: pd.Series) -> PortfolioStats:
    """Figures of a date-indexed daily log-return series; annual_return = exp(252 * mean) - 1."""
    values = log_returns.to_numpy(dtype="float64")
    dates = log_returns.index
    if not len(values):  # no ok ticker: no figure, rather than the 1.0x of an empty sum
        return PortfolioStats(0, None, None, math.nan, math.nan, math.nan, math.nan)
    return PortfolioStats(
        n_days=len(values),
        first_date=dates[0].date().isoformat() if len(dates) else None,
        last_date=dates[-1].date().isoformat() if len(dates) else None,
        cum_return=cum_return(values),
        annual_return=(
            math.expm1(APPROX_BDAYS_PER_YEAR * float(np.mean(values))) if len(values) else math.nan
        ),
        sharpe=sharpe_ratio(values),
        max_drawdown=max_drawdown(values),
    )


def compute_aggregates(
    summary: pd.DataFrame, daily: pd.DataFrame, *, cost_bps: float = 0.0
) -> Aggregates:
    """The run's figures across tickers. `cost_bps` (the config's backtest.cost_bps) adds a
    net-of-costs portfolio; leave it 0 when the costs are unknown."""
    ok = ok_rows(summary)
    short = ok["n_days"].astype("float64") < SHORT_HISTORY_DAYS
    full_history = ok[~short]
    q_values = bh_q_values(summary)[ok.index]
    curves = portfolio_returns(daily, cost_bps)
    net = curves.get("strategy_net")
    return Aggregates(
        n_tickers=len(summary),
        counts=count_statuses(summary),
        reasons=group_reasons(summary),
        distributions={column: describe_column(ok[column]) for column in DISTRIBUTION_COLUMNS},
        mean_majority_rate=describe_column(ok["majority_rate"]).mean,
        share_beat_buy_hold=share_beating(ok, "cum_return"),
        share_beat_buy_hold_net=share_beating(ok, "cum_return_net"),
        significance_level=SIGNIFICANCE_LEVEL,
        n_tested=int(q_values.notna().sum()),
        n_significant=int((q_values <= SIGNIFICANCE_LEVEL).sum()),
        share_significant=share_true(q_values.dropna() <= SIGNIFICANCE_LEVEL),
        n_short_history=int(short.sum()),
        cost_bps=float(cost_bps),
        portfolio_strategy=portfolio_stats(curves["strategy"]),
        portfolio_strategy_net=portfolio_stats(net) if net is not None else None,
        portfolio_buy_hold=portfolio_stats(curves["buy_hold"]),
        short_history_tickers=tuple(ok.loc[short, "ticker"].astype(str)),
        full_history_distributions={
            column: describe_column(full_history[column]) for column in DISTRIBUTION_COLUMNS
        },
        curves=curves,
    )


def manifest_aggregates(
    manifest: Mapping[str, Any],
    daily: pd.DataFrame | None = None,
    run_dir: Path | None = None,
) -> Aggregates:
    """The run's figures as its manifest holds them; with `daily`, the curves the charts draw.

    Raises RunDirectoryError for a manifest without them (written before they were recorded),
    naming `run_dir`'s manifest when given.
    """
    recorded = manifest.get("aggregates")
    if not recorded:
        where = "the manifest" if run_dir is None else str(Path(run_dir) / "manifest.json")
        raise RunDirectoryError(
            f"{where} has no aggregates (an older run): run it again to draw its reports"
        )
    cost_bps = float(recorded.get("cost_bps") or 0.0)
    curves = None if daily is None else portfolio_returns(daily, cost_bps)
    return Aggregates.from_dict(recorded, curves)

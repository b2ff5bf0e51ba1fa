"""The report's charts: data in, PNG bytes out. No file is touched here.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas, never through pyplot, so no
interactive backend is ever loaded and no global figure state is kept between reports.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter

from pipeline.display import printable
from pipeline.report.aggregates import (
    SHORT_HISTORY_DAYS,
    Aggregates,
    drawdown_curve,
    equity_curve,
    ok_rows,
)

FIGURE_SIZE_INCHES = (9.0, 4.5)
DPI = 110
MAX_POINTS_PER_LINE = 2500  # a daily line is thinned to about this many points: 20 years fit
N_EXTREME_TICKERS = 3
STRATEGY_COLOUR = "#1f5fa8"
NET_COLOUR = "#7fa7d6"
BUY_HOLD_COLOUR = "#777777"
GOOD_COLOURS = ("#1a7f37", "#41a05a", "#7cc48f")
BAD_COLOURS = ("#b3261e", "#d9534f", "#ee9a95")
_MARGINS = {"left": 0.095, "right": 0.98, "top": 0.92, "bottom": 0.12}
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 9,
    "legend.frameon": False,
}


@dataclass(frozen=True)
class Chart:
    """One rendered chart: its file name in the run directory, a title (alt text), PNG bytes."""

    file_name: str
    title: str
    png: bytes


@contextmanager
def _figure() -> Iterator[tuple[Figure, Axes]]:
    with mpl.rc_context(_STYLE):
        # Fixed margins: a constrained layout would measure every label and double the time.
        figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=DPI)
        figure.subplots_adjust(**_MARGINS)
        FigureCanvasAgg(figure)
        yield figure, figure.add_subplot()


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def thin(series: pd.Series, max_points: int = MAX_POINTS_PER_LINE) -> pd.Series:
    """Every k-th point plus the last, so that a line keeps at most about `max_points` points.

    A daily curve drawn 990 pixels wide shows no more detail than this.
    """
    step = max(1, int(np.ceil(len(series) / max_points)))
    if step == 1:
        return series
    keep = np.zeros(len(series), dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return series[keep]


def chart_text(value: object) -> str:
    """A name from the run's files as a chart draws it: one printable line, and every "$"
    escaped, so that matplotlib never parses it as mathtext (an unbalanced "$\\frac{" in a
    ticker of a tampered run would stop the drawing with a ParseException)."""
    return printable(value, newlines=False).replace("$", r"\$")


def _note_no_data(axes: Axes, message: str = "no ok tickers: nothing to draw") -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _multiple_label(value: float, _position: object = None) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:g}"


def _multiple_axis(axes: Axes) -> None:
    """A log y axis labelled as plain multiples (0.5, 1, 2, 5), not powers of ten.

    Call it after plotting: a span of up to three decades gets ticks at 1, 2 and 5 of each.
    """
    axes.set_yscale("log")
    low, high = axes.get_ylim()
    subs = (1.0, 2.0, 5.0) if np.log10(high / low) <= 3 else (1.0,)
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    axes.yaxis.set_major_formatter(FuncFormatter(_multiple_label))
    axes.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))


def _date_span(curves: pd.DataFrame) -> str:
    if curves.empty:
        return ""
    return f"{curves.index[0]:%Y-%m-%d} to {curves.index[-1]:%Y-%m-%d}"


def accuracy_histogram(accuracy: pd.Series, majority_rate: float) -> Figure:
    """Tickers by accuracy, with 50% and the mean majority-class rate marked."""
    values = accuracy.dropna().astype("float64")
    with _figure() as (figure, axes):
        axes.set_title(f"Accuracy of the {len(values)} ok tickers")
        if values.empty:
            _note_no_data(axes)
            return figure
        low, high = min(values.min(), 0.5, majority_rate), max(values.max(), 0.5, majority_rate)
        edges = np.linspace(low - 0.005, high + 0.005, 31)
        axes.hist(values, bins=edges, color=STRATEGY_COLOUR, alpha=0.85, edgecolor="white")
        axes.axvline(0.5, color="black", linestyle="--", linewidth=1.2, label="50% (coin flip)")
        if np.isfinite(majority_rate):
            axes.axvline(
                majority_rate,
                color="#c77700",
                linewidth=1.6,
                label=f"mean majority-class rate ({majority_rate:.1%})",
            )
        axes.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
        axes.set_xlabel("accuracy: share of evaluation days with the direction right (%)")
        axes.set_ylabel("tickers (count)")
        axes.legend(loc="upper right")
    return figure


def accuracy_return_scatter(ok: pd.DataFrame) -> Figure:
    """One point per ok ticker: accuracy against the strategy's cumulative return (log)."""
    with _figure() as (figure, axes):
        axes.set_title("Accuracy against cumulative return, one point per ticker")
        if ok.empty:
            _note_no_data(axes)
            return figure
        accuracy = ok["accuracy"].astype("float64")
        growth = ok["cum_return"].astype("float64")
        beat = growth > ok["buy_hold"].astype("float64")
        for mask, colour, label in (
            (beat, GOOD_COLOURS[0], f"beat buy & hold ({int(beat.sum())})"),
            (~beat, BAD_COLOURS[0], f"did not beat buy & hold ({int((~beat).sum())})"),
        ):
            if mask.any():
                axes.scatter(
                    accuracy[mask], growth[mask], s=22, alpha=0.75, color=colour, label=label
                )
        axes.axhline(1.0, color="black", linewidth=0.8)
        axes.axvline(0.5, color="black", linestyle="--", linewidth=0.8)
        _label_extremes(axes, ok)
        _multiple_axis(axes)
        axes.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
        axes.set_xlabel("accuracy (%)")
        axes.set_ylabel("cum return: value of 1 invested (log)")
        axes.legend(loc="upper left")
    return figure


def _label_extremes(axes: Axes, ok: pd.DataFrame, n: int = N_EXTREME_TICKERS) -> None:
    ranked = full_history(ok).sort_values("cum_return")
    for row in pd.concat([ranked.head(n), ranked.tail(n)]).drop_duplicates("ticker").itertuples():
        axes.annotate(
            chart_text(row.ticker),
            (row.accuracy, row.cum_return),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
        )


def portfolio_equity(curves: pd.DataFrame) -> Figure:
    """The equal-weight portfolio's value of 1 invested: strategy against buy-and-hold."""
    with _figure() as (figure, axes):
        axes.set_title(f"Equal-weight portfolio, value of 1 invested ({_date_span(curves)})")
        if curves.empty:
            _note_no_data(axes)
            return figure
        for column, colour, label in _portfolio_lines(curves):
            axes.plot(thin(equity_curve(curves[column])), color=colour, linewidth=1.4, label=label)
        axes.axhline(1.0, color="black", linewidth=0.8)
        _multiple_axis(axes)
        axes.set_xlabel("date")
        axes.set_ylabel("value of 1 invested (log)")
        axes.legend(loc="upper left")
    return figure


def _portfolio_lines(curves: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Column, colour and label of each line: after costs first and in the strategy's colour
    when costs were charged, before costs paler beside it."""
    if "strategy_net" in curves:
        lines = [
            ("strategy_net", STRATEGY_COLOUR, "strategy after costs"),
            ("strategy", NET_COLOUR, "strategy before costs"),
        ]
    else:
        lines = [("strategy", STRATEGY_COLOUR, "strategy")]
    lines.append(("buy_hold", BUY_HOLD_COLOUR, "buy & hold"))
    return lines


def portfolio_drawdown(curves: pd.DataFrame) -> Figure:
    """The equal-weight portfolio's fall from its running peak: the strategy after costs filled
    (when costs were charged; before costs as a dashed line), buy-and-hold as a line."""
    with _figure() as (figure, axes):
        net = "strategy_net" in curves
        axes.set_title(
            "Equal-weight portfolio, drawdown from the running peak"
            + (", after costs" if net else "")
        )
        if curves.empty:
            _note_no_data(axes)
            return figure
        lead = thin(-drawdown_curve(curves["strategy_net" if net else "strategy"]))
        axes.fill_between(
            lead.index,
            lead,
            0.0,
            color=STRATEGY_COLOUR,
            alpha=0.35,
            linewidth=0,
            label=f"strategy after costs (max {-lead.min():.0%})" if net else "strategy",
        )
        if net:
            gross = thin(-drawdown_curve(curves["strategy"]))
            axes.plot(gross, color=STRATEGY_COLOUR, linewidth=1.0, linestyle="--",
                      label=f"strategy before costs (max {-gross.min():.0%})")  # fmt: skip
        holding = thin(-drawdown_curve(curves["buy_hold"]))
        axes.plot(holding, color=BUY_HOLD_COLOUR, linewidth=1.2, label="buy & hold")
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        axes.set_xlabel("date")
        axes.set_ylabel("drawdown (%)")
        axes.legend(loc="lower left")
    return figure


def full_history(ok: pd.DataFrame) -> pd.DataFrame:
    """The ok tickers with at least SHORT_HISTORY_DAYS evaluation days."""
    return ok[ok["n_days"].astype("float64") >= SHORT_HISTORY_DAYS]


def extreme_tickers(ok: pd.DataFrame, daily: pd.DataFrame, n: int = N_EXTREME_TICKERS) -> Figure:
    """Strategy equity curves of the `n` best and `n` worst ok tickers by cum_return, among
    those with a year of evaluation days or more (a few months' return is no extreme).

    With 2n tickers or fewer, all are drawn: the better half in greens, the rest in reds.
    """
    eligible = full_history(ok)
    ranked = eligible.sort_values("cum_return", ascending=False)
    n_best = min(n, (len(ranked) + 1) // 2)
    best, worst = ranked.head(n_best), ranked.iloc[n_best:].tail(n)
    which = "tickers" if len(eligible) == len(ok) else f"tickers with {SHORT_HISTORY_DAYS}+ days"
    title = (
        f"Best and worst {n} {which} by cumulative return (strategy)"
        if len(ranked) > 2 * n
        else f"All {len(ranked)} ok {which} by cumulative return (strategy)"
    )
    with _figure() as (figure, axes):
        axes.set_title(title)
        if ranked.empty:
            _note_no_data(axes, f"no ok ticker has {SHORT_HISTORY_DAYS} evaluation days or more")
            return figure
        for rows, colours in ((best, GOOD_COLOURS), (worst, BAD_COLOURS[::-1])):
            for row, colour in zip(rows.itertuples(), colours, strict=False):
                # One mask per drawn ticker: grouping every row by ticker to draw six of them
                # held 45 MB for 500 tickers x 20 years, in the process that draws the charts.
                ticker_rows = daily.loc[daily["ticker"] == row.ticker, _TICKER_CURVE_COLUMNS]
                _plot_ticker(axes, ticker_rows, row, colour)
        axes.axhline(1.0, color="black", linewidth=0.8)
        _multiple_axis(axes)
        axes.set_xlabel("date")
        axes.set_ylabel("value of 1 invested (log)")
        axes.legend(loc="upper left", ncols=2)
    return figure


_TICKER_CURVE_COLUMNS = ["date", "strategy_log_return"]


def _plot_ticker(axes: Axes, rows: pd.DataFrame, summary_row: object, colour: str) -> None:
    returns = pd.Series(
        rows["strategy_log_return"].to_numpy(dtype="float64"),
        index=pd.to_datetime(rows["date"]),
    ).sort_index()
    label = f"{chart_text(summary_row.ticker)}: {summary_row.cum_return:,.2f}x"
    axes.plot(thin(equity_curve(returns)), color=colour, linewidth=1.3, label=label)


# File name, title and how to draw each chart, in the order the reports show them.
_CHARTS: tuple[tuple[str, str, Callable[[pd.DataFrame, pd.DataFrame, Aggregates], Figure]], ...] = (
    (
        "chart_portfolio_equity.png",
        "Equal-weight portfolio: strategy against buy-and-hold",
        lambda ok, daily, agg: portfolio_equity(agg.curves),
    ),
    (
        "chart_portfolio_drawdown.png",
        "Equal-weight portfolio: drawdown",
        lambda ok, daily, agg: portfolio_drawdown(agg.curves),
    ),
    (
        "chart_accuracy_histogram.png",
        "Accuracy across tickers",
        lambda ok, daily, agg: accuracy_histogram(ok["accuracy"], agg.mean_majority_rate),
    ),
    (
        "chart_accuracy_vs_return.png",
        "Accuracy against cumulative return",
        lambda ok, daily, agg: accuracy_return_scatter(ok),
    ),
    (
        "chart_best_worst_tickers.png",
        "Best and worst tickers",
        lambda ok, daily, agg: extreme_tickers(ok, daily),
    ),
)


def render_charts(
    summary: pd.DataFrame, daily: pd.DataFrame, aggregates: Aggregates
) -> list[Chart]:
    """Every chart of the report, rendered to PNG, in display order; none when no ticker is
    ok (an empty chart says nothing the report does not say in words)."""
    ok = ok_rows(summary)
    if ok.empty:
        return []
    return [
        Chart(file_name, title, figure_png(draw(ok, daily, aggregates)))
        for file_name, title, draw in _CHARTS
    ]

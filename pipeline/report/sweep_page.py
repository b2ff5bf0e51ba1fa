"""report.html of a sweep: configurations ranked by DSR, the logit distribution of CSCV, and a
plain-words verdict. A pure function of the sweep's table, summary and logits; markup from a
Jinja2 template with autoescaping."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.report.charts import STRATEGY_COLOUR, _figure, figure_png
from pipeline.statistics.verdict import sweep_verdict

TEMPLATE = "sweep.html.j2"


def logit_chart(logits: Sequence[float]) -> str | None:
    """The distribution of the in-sample winner's out-of-sample logit, as a PNG data URI."""
    finite = [x for x in logits if math.isfinite(x)]
    if not finite:
        return None
    with _figure() as (figure, axes):
        axes.set_title("In-sample best configuration, ranked out of sample")
        axes.hist(finite, bins=30, color=STRATEGY_COLOUR, edgecolor="white")
        axes.axvline(0.0, color="#b3261e", linewidth=1.5, label="out-of-sample median")
        axes.set_xlabel("logit of its out-of-sample rank (at or below 0: overfit)")
        axes.set_ylabel("combinations of blocks")
        axes.legend(loc="upper left")
    png = figure_png(figure)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def ranked_rows(table: pd.DataFrame, grid_keys: Sequence[str]) -> list[list[str]]:
    """One row per configuration, highest DSR first."""
    ordered = table.sort_values("dsr", ascending=False, na_position="last", kind="stable")
    columns = ["config_hash", *grid_keys, "ok", "failed", "sharpe", "sharpe_lo", "sharpe_hi",
               "psr", "dsr"]  # fmt: skip
    return [[_cell(row[column]) for column in columns] for _, row in ordered.iterrows()]


def render_sweep_report(
    table: pd.DataFrame, summary: Mapping[str, Any], logits: Sequence[float]
) -> str:
    environment = Environment(
        loader=PackageLoader("pipeline.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    grid_keys = list(summary.get("grid_values", summary.get("grid", {})))
    best = (
        table.sort_values("dsr", ascending=False, na_position="last").iloc[0].to_dict()
        if len(table)
        else {}
    )
    verdict = sweep_verdict(best, summary.get("pbo"), int(summary.get("n_trials") or 0))
    return environment.get_template(TEMPLATE).render(
        verdict=verdict,
        summary=summary,
        header=["config", *grid_keys, "ok", "failed", "Sharpe", "low", "high", "PSR", "DSR"],
        rows=ranked_rows(table, grid_keys),
        chart=logit_chart(logits),
        pbo="n/a" if summary.get("pbo") is None else f"{summary['pbo']:.2f}",
    )

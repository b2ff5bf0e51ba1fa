"""report.html of a sweep: configurations ranked by DSR, the logit distribution of CSCV, and a
plain-words verdict. A pure function of the sweep's table, summary and logits; markup from a
Jinja2 template with autoescaping."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.statistics.verdict import sweep_verdict

TEMPLATE = "sweep.html.j2"


def logit_chart(logits: Sequence[float]) -> str | None:
    """The distribution of the in-sample winner's out-of-sample logit, as a PNG data URI."""
    if not logits:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    finite = [x for x in logits if math.isfinite(x)]
    figure, axes = plt.subplots(figsize=(7, 3.2))
    axes.hist(finite, bins=30, color="#4477aa", edgecolor="white")
    axes.axvline(0.0, color="#cc3311", linewidth=1.5, label="median out of sample")
    axes.set_xlabel("logit of the in-sample best's out-of-sample rank (below 0: overfit)")
    axes.set_ylabel("combinations")
    axes.legend(loc="upper left", frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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

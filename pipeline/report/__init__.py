"""Reports of a run directory: figures across tickers, charts, report.html / report.md, and the
comparison of two runs.

    from pipeline.report import build_report, compute_aggregates, compare_runs, format_comparison
    build_report(Path("reports/latest"))            # writes report.html, report.md, chart_*.png
    print(format_comparison(compare_runs(run_a, run_b)))

`build_report` is imported lazily: it pulls in matplotlib, which the other functions do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.report.aggregates import Aggregates, compute_aggregates

__all__ = [
    "Aggregates",
    "Comparison",
    "build_report",
    "compare_runs",
    "compute_aggregates",
    "format_comparison",
]

if TYPE_CHECKING:
    from pipeline.report.build import build_report
    from pipeline.report.compare import Comparison, compare_runs
    from pipeline.report.compare_text import format_comparison

_LAZY = {
    "build_report": "pipeline.report.build",
    "Comparison": "pipeline.report.compare",
    "compare_runs": "pipeline.report.compare",
    "format_comparison": "pipeline.report.compare_text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline.report' has no attribute {name!r}")

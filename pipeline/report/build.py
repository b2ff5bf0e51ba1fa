"""Build a run's reports from its saved results: the one function here that touches files.

It reads summary.parquet, daily.parquet and manifest.json only (no price cache, no model), so a
report can be rebuilt at any time, anywhere the run directory is copied to.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.outputs import atomic_write, atomic_write_text
from pipeline.report.aggregates import compute_aggregates
from pipeline.report.charts import render_charts
from pipeline.report.html_page import render_html
from pipeline.report.markdown_page import render_markdown
from pipeline.report.run_files import read_run

logger = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"


def _write_bytes(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return path


def _write_text(path: Path, text: str) -> Path:
    atomic_write_text(path, text)
    return path


def build_report(run_dir: Path) -> list[Path]:
    """Write report.html, report.md and the PNG charts into `run_dir`; return their paths.

    Each file is written atomically (a reader sees the old file or the new one). Raises
    RunDirectoryError (a PipelineError) when a result file is missing.
    """
    run = read_run(Path(run_dir))
    aggregates = compute_aggregates(run.summary, run.daily, cost_bps=run.cost_bps)
    charts = render_charts(run.summary, run.daily, aggregates)
    written = [_write_bytes(run.run_dir / chart.file_name, chart.png) for chart in charts]
    written.append(_write_text(run.run_dir / REPORT_MD, render_markdown(run, aggregates, charts)))
    written.append(_write_text(run.run_dir / REPORT_HTML, render_html(run, aggregates, charts)))
    logger.info("report written to %s", run.run_dir / REPORT_HTML)
    return written

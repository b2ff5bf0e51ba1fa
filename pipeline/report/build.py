"""Drawing a run's reports, and writing them.

`draw_report` is a pure function of the run's summary, daily rows and manifest: it returns each
file's name and bytes. The run calls it with what it holds in memory; `build_report` (what
`pipeline report RUN_DIR` calls) with what it reads from a run directory, so both draw the same
files. Every run-level figure comes from the manifest's "aggregates", computed once by the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.outputs import atomic_write_bytes
from pipeline.report.aggregates import Aggregates, manifest_aggregates
from pipeline.report.charts import Chart, render_charts
from pipeline.report.html_page import render_html
from pipeline.report.markdown_page import render_markdown
from pipeline.report.run_files import RunFiles, read_run
from pipeline.report.statistics_section import statistics_charts

logger = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_MD = "report.md"


def report_charts(
    summary: pd.DataFrame, daily: pd.DataFrame, aggregates: Aggregates
) -> list[Chart]:
    """The charts of a run that do not depend on its statistics block, from the aggregates it
    computed (the manifest's "aggregates" and the portfolio curves): what `draw_report` draws
    from the manifest."""
    recorded = Aggregates.from_dict(aggregates.to_dict(), aggregates.curves)
    return render_charts(summary, daily, recorded)


def draw_report(
    summary: pd.DataFrame,
    daily: pd.DataFrame,
    manifest: Mapping[str, Any],
    *,
    run_name: str,
    signals: pd.DataFrame | None = None,
    run_dir: Path | None = None,
    charts: Sequence[Chart] | None = None,
) -> dict[str, bytes]:
    """report.html, report.md and the PNG charts of a run: file name -> content, charts first.

    `signals` (the next-session positions) opens the report; without it there is no such
    section, as in a run directory written before signals existed. `run_dir`, when the run is
    read from one, is named in the error of a manifest without aggregates. `charts`, when
    given, are `report_charts` of the run, drawn already."""
    run = RunFiles(Path(run_name), summary, daily, dict(manifest), signals)
    # Only the charts draw the portfolio curves: drawn already, they need not be computed.
    aggregates = manifest_aggregates(manifest, daily if charts is None else None, run_dir)
    if charts is None:
        charts = render_charts(summary, daily, aggregates)
    charts = [*charts, *statistics_charts(summary, manifest)]
    files = {chart.file_name: chart.png for chart in charts}
    files[REPORT_MD] = render_markdown(run, aggregates, charts).encode("utf-8")
    files[REPORT_HTML] = render_html(run, aggregates, charts).encode("utf-8")
    return files


def write_report(run_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Each file written atomically (a reader sees the old file or the new one), in order."""
    written = []
    for name, content in files.items():
        path = Path(run_dir) / name
        atomic_write_bytes(path, content)
        written.append(path)
    logger.info("report written to %s", Path(run_dir) / REPORT_HTML)
    return written


def build_report(run_dir: Path) -> list[Path]:
    """Draw the reports of a run directory from its saved results and write them into it.

    Reads summary.parquet, daily.parquet and manifest.json only (no price cache, no model), so a
    report can be rebuilt at any time, anywhere the run directory is copied to. Raises
    RunDirectoryError (a PipelineError) when a result file is missing.
    """
    run = read_run(Path(run_dir))
    files = draw_report(
        run.summary,
        run.daily,
        run.manifest,
        run_name=run.run_dir.name,
        signals=run.signals,
        run_dir=run.run_dir,
    )
    return write_report(run.run_dir, files)

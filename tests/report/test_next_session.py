"""The report's "Next session" section: counts, table order and stale tickers, from
signals.parquet alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.report.next_session import next_session, read_signals


def signals_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ["ZZ", "AA", "MM", "BB"],
            "as_of": ["2024-03-28", "2024-03-27", "2024-03-28", "2024-03-28"],
            "position": pd.array([1, -1, 0, 1], dtype="int8"),
            "refit_date": ["2024-03-01"] * 4,
            "train_rows": [500, 500, 500, 500],
            "in_sample": [False] * 4,
            "stale": [False, True, False, False],
            "last_close": [1.0, 2.0, 3.0, 4.0],
        }
    )


def test_counts_order_and_stale_tickers() -> None:
    section = next_session(signals_frame())
    assert section is not None
    assert (section.long, section.flat, section.short, section.total) == (2, 1, 1, 4)
    assert [row["ticker"] for row in section.rows] == ["ZZ", "AA", "MM", "BB"]
    assert [row["side"] for row in section.rows] == ["long", "short", "flat", "long"]
    assert section.stale == ("AA",) and section.as_of == "2024-03-28"
    assert section.in_sample is False


def test_in_sample_signals_are_labelled() -> None:
    frame = signals_frame().assign(in_sample=True)
    assert next_session(frame).in_sample is True


def test_a_run_directory_without_signals_has_no_section(tmp_path: Path) -> None:
    assert read_signals(tmp_path) is None
    assert next_session(None) is None
    assert next_session(signals_frame().iloc[:0]) is None
    signals_frame().to_parquet(tmp_path / "signals.parquet")
    assert next_session(read_signals(tmp_path)).long == 2


@pytest.mark.slow
def test_the_run_report_opens_with_the_next_session(small_run_overrides, tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.report.build import REPORT_HTML, REPORT_MD, build_report
    from pipeline.runner import run_pipeline

    run_dir = tmp_path / "run"
    config = load_config("configs/demo.toml", [*small_run_overrides, "data.synthetic.n_tickers=4"])
    result = run_pipeline(config, run_dir, show_progress=False)
    page = (run_dir / REPORT_HTML).read_text()
    markdown = (run_dir / REPORT_MD).read_text()
    assert page.index('id="next_session"') < page.index('id="skill"')
    assert markdown.index("## Next session") < markdown.index("## Evidence of skill")
    counts = result.signals["position"].value_counts()
    expected = (
        f"**{counts.get(1, 0)} long, {counts.get(0, 0)} flat, {counts.get(-1, 0)} short** "
        f"of {len(result.signals)} tickers"
    )
    assert expected in markdown
    for ticker in result.signals["ticker"]:
        assert f"<td class=\"text\">{ticker}</td>" in page
    # `pipeline report` draws the same section from signals.parquet alone
    (run_dir / REPORT_HTML).unlink()
    build_report(run_dir)
    assert (run_dir / REPORT_HTML).read_text() == page

"""The report's "Next session" section: counts, table order and stale tickers, from
signals.parquet alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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

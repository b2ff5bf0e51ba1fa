import pandas as pd

from pipeline.backtest.result import STATUSES, count_statuses


def test_count_statuses_counts_each_status_and_names_the_absent_ones() -> None:
    summary = pd.DataFrame({"status": ["ok", "failed", "ok", "ok"]})
    assert count_statuses(summary) == {"ok": 3, "skipped": 0, "failed": 1}


def test_count_statuses_of_no_rows_is_all_zero_in_status_order() -> None:
    counts = count_statuses(pd.DataFrame({"status": pd.Series([], dtype=object)}))
    assert list(counts) == list(STATUSES) == ["ok", "skipped", "failed"]
    assert set(counts.values()) == {0}

"""Incremental runs are exact (METHOD.md, "Incremental runs"): for random price paths, settings
and sequences of appended days, resuming from the stored rows gives a full run's result bit for
bit, with no more refits than the new rows' blocks; every other case is a full computation with
its reason."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.backtest import incremental
from pipeline.backtest.incremental import StoredRows, plan_resume, settings_key
from pipeline.backtest.result import TickerResult
from pipeline.backtest.task import backtest_resuming, backtest_ticker
from pipeline.config import BacktestSettings
from tests.backtest.conftest import build_settings, random_walk

FAST = {"params": {"gamma": "auto", "tol": 1e-6}}


def assert_identical(got: TickerResult, expected: TickerResult) -> None:
    """Bit for bit: every metric (NaN where NaN), the daily frame, the signal, the notes."""
    assert (got.status, got.reason) == (expected.status, expected.reason)
    assert got.metrics.keys() == expected.metrics.keys()
    for name, value in expected.metrics.items():
        other = got.metrics[name]
        both_nan = isinstance(value, float) and math.isnan(value) and math.isnan(other)
        assert both_nan or (other == value and type(other) is type(value)), name
    if expected.daily is None:
        assert got.daily is None
    else:
        assert got.daily.equals(expected.daily)
    assert got.signal == expected.signal
    assert got.warnings == expected.warnings


def refits_opened(n_old: int, n_new: int, train_days: int, every: int) -> int:
    """Refits of the schedule over n_new + 1 rows that start after row n_old (the stored
    signal row): the refit whose block held it predicts from its stored pattern table."""
    return sum(1 for j in range(train_days, n_new + 1, every) if j > n_old)


def refits_in_new_blocks(n_old: int, n_new: int, train_days: int, every: int) -> int:
    """Refits of the schedule over n_new + 1 rows whose blocks hold a row after row n_old:
    what is fit when there is no pattern table (more lags than a table holds)."""
    return sum(
        1 for j in range(train_days, n_new + 1, every) if min(j + every, n_new + 1) > n_old + 1
    )


def step(
    prices: pd.Series, config: BacktestSettings, stored: StoredRows | None
) -> tuple[TickerResult, StoredRows | None]:
    result, fresh = backtest_resuming("T", prices, config, stored, "nothing stored")
    return result, None if fresh is None else replace(fresh, settings_key="key")


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100_000),
    lags=st.integers(1, 4),
    train_days=st.integers(10, 40),
    every=st.integers(1, 15),
    window=st.sampled_from(["expanding", "rolling"]),
    mode=st.sampled_from(["walk_forward", "walk_forward", "in_sample", "holdout"]),
    first=st.integers(0, 60),
    appended=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    cost_bps=st.sampled_from([0.0, 5.0]),
    zero_share=st.sampled_from([0.0, 0.2]),
)
def test_resuming_after_appended_days_equals_a_full_run_bit_for_bit(
    seed: int,
    lags: int,
    train_days: int,
    every: int,
    window: str,
    mode: str,
    first: int,
    appended: list[int],
    cost_bps: float,
    zero_share: float,
) -> None:
    config = build_settings(
        lags,
        model=FAST,
        mode=mode,
        train_days=train_days,
        retrain_every=every,
        window=window,
        cost_bps=cost_bps,
        min_eval_days=1,
    )
    start = lags + 1 + train_days + first
    prices = random_walk(start + sum(appended), seed=seed, zero_share=zero_share)
    result, stored = step(prices.iloc[:start], config, None)
    assert_identical(result, backtest_ticker("T", prices.iloc[:start], config))
    end = start
    for days in appended:
        old_rows = None if stored is None else stored.prices.rows - lags - 1
        end += days
        part = prices.iloc[:end]
        result, stored_next = step(part, config, stored)
        assert_identical(result, backtest_ticker("T", part, config))
        note = result.reuse
        if result.status == "ok" and old_rows is not None:
            n_rows = end - lags - 1
            if mode == "walk_forward":
                assert note["reason"] == ""
                assert note["refits_computed"] == refits_opened(old_rows, n_rows, train_days, every)
                # Row n_old was the stored signal row: its position is reused too.
                assert note["rows_computed"] == max(n_rows - old_rows - 1, 0)
            elif days:
                assert note["reason"] and note["refits_computed"] == 1
            else:
                assert note["reason"] == "" and note["refits_computed"] == 0
        stored = stored_next if stored_next is not None else stored


def ok_run(n_prices: int = 160, seed: int = 1, **backtest: object):
    config = build_settings(
        3, model=FAST, train_days=40, retrain_every=10, min_eval_days=5, **backtest
    )
    prices = random_walk(n_prices, seed=seed)
    result, stored = step(prices, config, None)
    assert result.status == "ok" and stored is not None
    return prices, config, stored


def test_one_day_inside_the_last_block_is_predicted_from_its_table_without_a_fit() -> None:
    prices, config, stored = ok_run(160)
    assert stored.table is not None and len(stored.table) == 3**3
    longer = random_walk(161, seed=1)
    assert longer.iloc[:160].equals(prices)
    result, fresh = step(longer, config, stored)
    # The new evaluation row was the old signal row, predicted then; the partial block's
    # stored table predicts the new signal row (156 rows, then 157: inside the block from 150).
    assert result.reuse == {
        "rows_reused": 117,
        "rows_computed": 0,
        "refits_computed": 0,
        "reason": "",
    }
    assert_identical(result, backtest_ticker("T", longer, config))
    assert fresh is not None and fresh.table_refit == stored.table_refit
    assert np.array_equal(fresh.table, stored.table)


def test_a_new_block_is_fit_and_its_table_replaces_the_old() -> None:
    _, config, stored = ok_run(160)  # 156 rows: the last block starts at row 150
    longer = random_walk(166, seed=1)  # 162 rows: the signal row 162 opens the block at 160
    result, fresh = step(longer, config, stored)
    assert result.reuse["refits_computed"] == 1
    assert_identical(result, backtest_ticker("T", longer, config))
    assert fresh is not None and fresh.table_refit == stored.table_refit + 1
    _, full = step(longer, config, None)
    assert full is not None and np.array_equal(fresh.table, full.table)


@pytest.mark.parametrize("lags", [9, 10])
def test_more_lags_than_a_table_holds_refit_the_last_block_and_stay_exact(lags: int) -> None:
    config = build_settings(lags, model=FAST, train_days=40, retrain_every=10, min_eval_days=5)
    prices = random_walk(200, seed=3)
    _, stored = step(prices.iloc[:180], config, None)
    assert stored is not None and stored.table is None and stored.table_refit is None
    result, _ = step(prices, config, stored)
    n_old, n_new = 180 - lags - 1, 200 - lags - 1
    assert result.reuse["refits_computed"] == refits_in_new_blocks(n_old, n_new, 40, 10)
    assert_identical(result, backtest_ticker("T", prices, config))


def test_a_table_that_does_not_fit_the_schedule_is_a_full_computation() -> None:
    _, config, stored = ok_run(160)
    longer = random_walk(161, seed=1)
    bad = (
        replace(stored, table=stored.table[:-1]),
        replace(stored, table_refit=stored.table_refit - 1),
        replace(stored, table=np.full_like(stored.table, 2)),
        replace(stored, table=None),
    )
    for wrong in bad:
        resume, reason = plan_resume(wrong, longer, config)
        assert resume is None and reason == incremental.REASON_MISMATCH


def test_an_unchanged_history_reuses_everything_and_fits_nothing() -> None:
    for mode in ("walk_forward", "in_sample", "holdout"):
        prices, config, stored = ok_run(mode=mode)
        result, _ = step(prices, config, stored)
        assert result.reuse["reason"] == "" and result.reuse["refits_computed"] == 0
        assert result.reuse["rows_computed"] == 0
        assert_identical(result, backtest_ticker("T", prices, config))


def test_one_old_price_one_ulp_away_is_a_restated_history() -> None:
    _, config, stored = ok_run()
    longer = random_walk(170, seed=1)
    for day in (0, 57, 159):
        restated = longer.copy()
        restated.iloc[day] = np.nextafter(restated.iloc[day], np.inf)
        resume, reason = plan_resume(stored, restated, config)
        assert resume is None and reason == incremental.REASON_RESTATED
        result, _ = step(restated, config, stored)
        assert result.reuse["reason"] == incremental.REASON_RESTATED
        assert result.reuse["rows_reused"] == 0
        assert_identical(result, backtest_ticker("T", restated, config))
    resume, reason = plan_resume(stored, longer, config)
    assert resume is not None and reason == ""


def test_a_moved_date_is_a_restated_history() -> None:
    prices, config, stored = ok_run()
    dates = prices.index.to_list()
    dates[30] = dates[30] + pd.Timedelta(hours=1)
    moved = pd.Series(prices.to_numpy(), index=pd.DatetimeIndex(dates, name="date"))
    assert plan_resume(stored, moved, config) == (None, incremental.REASON_RESTATED)


def test_prices_that_end_earlier_are_a_full_computation() -> None:
    prices, config, stored = ok_run()
    shorter = prices.iloc[:-3]
    assert plan_resume(stored, shorter, config) == (None, incremental.REASON_SHORTER)
    result, fresh = step(shorter, config, stored)
    assert_identical(result, backtest_ticker("T", shorter, config))
    assert fresh is not None and fresh.prices.rows == len(shorter)


@pytest.mark.parametrize("mode", ["in_sample", "holdout"])
def test_new_days_in_in_sample_and_holdout_are_a_full_computation(mode: str) -> None:
    _, config, stored = ok_run(mode=mode)
    longer = random_walk(161, seed=1)
    resume, reason = plan_resume(stored, longer, config)
    assert resume is None and mode in reason
    result, _ = step(longer, config, stored)
    assert result.reuse["reason"] == reason and result.reuse["rows_reused"] == 0


def test_stored_rows_that_do_not_fit_the_prices_are_not_trusted() -> None:
    prices, config, stored = ok_run()
    shifted = stored.row_dates.copy()
    shifted[3] = shifted[4]
    tampered = [
        replace(stored, row_dates=shifted),
        replace(stored, predictions=stored.predictions[:-1], row_dates=stored.row_dates[:-1]),
        replace(stored, predictions=np.where(stored.predictions == 1, 7, 0).astype(np.int8)),
        replace(stored, first_row=stored.first_row + 1),
    ]
    for bad in tampered:
        assert plan_resume(bad, prices, config) == (None, incremental.REASON_MISMATCH)


def test_the_settings_key_changes_with_every_setting_that_changes_numbers() -> None:
    from datetime import date

    base = build_settings(6)
    start = date(2000, 1, 3)
    key = settings_key(base, start)
    others = [
        settings_key(build_settings(5), start),
        settings_key(build_settings(6, model={"kind": "logistic_regression"}), start),
        settings_key(build_settings(6, model={"params": {"gamma": "auto", "C": 2.0}}), start),
        settings_key(build_settings(6, model={"fast_path": False}), start),
        settings_key(build_settings(6, train_days=250), start),
        settings_key(build_settings(6, retrain_every=5), start),
        settings_key(build_settings(6, window="rolling"), start),
        settings_key(build_settings(6, mode="holdout"), start),
        settings_key(build_settings(6, cost_bps=1.0), start),
        settings_key(base, date(2000, 1, 4)),
    ]
    assert key not in others and len(set(others)) == len(others)
    assert settings_key(build_settings(6), start) == key


def test_the_settings_key_follows_the_estimators_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Results stored under an older default (tol=1e-3) are not reused once the default changes,
    # though the config, which leaves tol to the registry, is the same.
    from datetime import date

    from pipeline.backtest import models

    start = date(2000, 1, 3)
    key = settings_key(build_settings(6), start)
    svc = models._REGISTRY["svc"]
    older = replace(svc, defaults={**svc.defaults, "tol": 1e-3})
    monkeypatch.setitem(models._REGISTRY, "svc", older)
    assert settings_key(build_settings(6), start) != key

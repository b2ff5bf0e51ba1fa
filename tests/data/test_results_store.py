"""The results store: entries round-trip, and an unreadable or foreign entry is moved aside and
never trusted (the ticker is computed in full, with the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.backtest.incremental import REASON_FULL, REASON_MISSING
from pipeline.backtest.task import backtest_resuming, backtest_ticker
from pipeline.data import results_store
from pipeline.data.results_store import (
    ENTRY_KEY,
    QUARANTINE_DIR,
    ResultsSlot,
    backtest_with_store,
    read_entry,
    remove_leftovers,
    results_slot,
)
from tests.backtest.conftest import build_settings, random_walk

SETTINGS = build_settings(3, train_days=40, retrain_every=10, min_eval_days=5)
KEY = "ab" * 32


@pytest.fixture
def slot(tmp_path: Path) -> ResultsSlot:
    return results_slot(tmp_path / "cache" / "csv" / "KO.parquet", KEY)


def test_the_entry_lives_beside_the_price_cache_under_its_settings_key(tmp_path: Path) -> None:
    slot = results_slot(tmp_path / "cache" / "csv" / "KO.parquet", KEY)
    assert slot.path == tmp_path / "cache" / "results" / "csv" / KEY[:16] / "KO.parquet"


def test_a_stored_result_is_read_back_and_reused(slot: ResultsSlot) -> None:
    prices = random_walk(160, seed=2)
    first = backtest_with_store("KO", prices, SETTINGS, slot)
    assert first.reuse["reason"] == REASON_MISSING and slot.path.is_file()
    stored, why = read_entry(slot, "KO")
    assert why == "" and stored is not None
    assert stored.settings_key == KEY and stored.prices.rows == 160
    again = backtest_with_store("KO", random_walk(170, seed=2), SETTINGS, slot)
    assert again.reuse["reason"] == "" and again.reuse["rows_reused"] == first.metrics["n_days"] + 1
    full = backtest_ticker("KO", random_walk(170, seed=2), SETTINGS)
    assert again.daily.equals(full.daily) and again.signal == full.signal


def test_full_writes_the_store_without_reading_it(slot: ResultsSlot) -> None:
    prices = random_walk(160, seed=2)
    backtest_with_store("KO", prices, SETTINGS, slot)
    full = ResultsSlot(slot.path, slot.key, read=False)
    result = backtest_with_store("KO", prices, SETTINGS, full)
    assert result.reuse["reason"] == REASON_FULL and result.reuse["rows_reused"] == 0
    assert read_entry(slot, "KO")[1] == ""


def quarantined(slot: ResultsSlot) -> list[Path]:
    return sorted((slot.path.parent / QUARANTINE_DIR).glob("KO.parquet.*"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not parquet at all"),
        lambda path: path.write_bytes(path.read_bytes()[:-40]),
        lambda path: path.write_bytes(b""),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_an_unreadable_entry_is_moved_aside_and_the_ticker_computed_in_full(
    slot: ResultsSlot, damage
) -> None:
    prices = random_walk(160, seed=2)
    backtest_with_store("KO", prices, SETTINGS, slot)
    damage(slot.path)
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert result.reuse["reason"] == results_store.REASON_UNREADABLE
    assert result.reuse["rows_reused"] == 0
    assert len(quarantined(slot)) == 1
    assert read_entry(slot, "KO")[1] == ""  # rewritten whole


def rewrite_meta(path: Path, **changes: object) -> None:
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[ENTRY_KEY])
    meta.update(changes)
    pq.write_table(table.replace_schema_metadata({ENTRY_KEY: json.dumps(meta)}), path)


@pytest.mark.parametrize(
    ("changes", "reason_part"),
    [
        ({"ticker": "XOM"}, "ticker 'XOM'"),
        ({"settings_key": "cd" * 32}, "other settings"),
        ({"format": 999}, "could not be read"),
        ({"prices": {"rows": "x"}}, "could not be read"),
    ],
    ids=["other-ticker", "other-settings", "other-format", "bad-fingerprint"],
)
def test_a_foreign_entry_is_moved_aside_never_trusted(
    slot: ResultsSlot, changes: dict, reason_part: str
) -> None:
    prices = random_walk(160, seed=2)
    backtest_with_store("KO", prices, SETTINGS, slot)
    rewrite_meta(slot.path, **changes)
    result = backtest_with_store("KO", random_walk(165, seed=2), SETTINGS, slot)
    assert reason_part in result.reuse["reason"] and result.reuse["rows_reused"] == 0
    assert len(quarantined(slot)) == 1


def test_a_store_that_cannot_be_written_never_fails_the_ticker(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError("read-only store")

    monkeypatch.setattr(results_store, "atomic_write", refuse)
    result = backtest_with_store("KO", random_walk(160, seed=2), SETTINGS, slot)
    assert result.status == "ok" and not slot.path.exists()


def test_leftover_temporary_files_are_removed(slot: ResultsSlot, tmp_path: Path) -> None:
    backtest_with_store("KO", random_walk(160, seed=2), SETTINGS, slot)
    leftover = slot.path.parent / ".KO.parquet.12345.abcdef.tmp"
    leftover.write_bytes(b"half")
    assert remove_leftovers(tmp_path / "cache") == 1
    assert not leftover.exists() and slot.path.is_file()


def test_a_flipped_prediction_in_the_entry_is_caught_by_its_checksum(slot: ResultsSlot) -> None:
    import pyarrow as pa

    prices = random_walk(160, seed=2)
    backtest_with_store("KO", prices, SETTINGS, slot)
    table = pq.read_table(slot.path)
    flipped = table.column("prediction").to_numpy().copy()
    flipped[10] = -flipped[10] if flipped[10] else 1
    table = table.set_column(1, "prediction", pa.array(flipped))
    pq.write_table(table, slot.path)
    result = backtest_with_store("KO", random_walk(165, seed=2), SETTINGS, slot)
    assert result.reuse["reason"] == results_store.REASON_UNREADABLE
    assert result.daily.equals(backtest_ticker("KO", random_walk(165, seed=2), SETTINGS).daily)


def count_bootstraps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the ticker bootstraps drawn from here on (each call appends one)."""
    from pipeline.statistics import ticker as ticker_statistics

    calls: list[int] = []
    draw = ticker_statistics.ticker_intervals

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return draw(*args, **kwargs)

    monkeypatch.setattr(ticker_statistics, "ticker_intervals", counted)
    return calls


@pytest.mark.parametrize("mode", ["walk_forward", "in_sample", "holdout"])
def test_an_unchanged_ticker_reuses_its_intervals_exactly(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    settings = build_settings(3, mode=mode, train_days=40, retrain_every=10, min_eval_days=5)
    prices = random_walk(160, seed=4)
    backtest_with_store("KO", prices, settings, slot)
    stored, _ = read_entry(slot, "KO")
    assert stored is not None and stored.intervals is not None
    bootstraps = count_bootstraps(monkeypatch)
    again = backtest_with_store("KO", prices, settings, slot)
    assert bootstraps == [], "the unchanged ticker drew its bootstrap again"
    monkeypatch.undo()
    full = backtest_ticker("KO", prices, settings)
    assert json.dumps(again.metrics) == json.dumps(full.metrics)  # bit for bit, NaN included
    assert again.daily.equals(full.daily) and again.signal == full.signal


def test_a_new_day_draws_the_intervals_again(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    backtest_with_store("KO", random_walk(160, seed=4), SETTINGS, slot)
    bootstraps = count_bootstraps(monkeypatch)
    grown = backtest_with_store("KO", random_walk(161, seed=4), SETTINGS, slot)
    assert bootstraps == [1]
    monkeypatch.undo()
    full = backtest_ticker("KO", random_walk(161, seed=4), SETTINGS)
    assert json.dumps(grown.metrics) == json.dumps(full.metrics)


def test_one_changed_price_draws_the_intervals_again(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    prices = random_walk(160, seed=4)
    backtest_with_store("KO", prices, SETTINGS, slot)
    restated = prices.copy()
    restated.iloc[100] = np.nextafter(restated.iloc[100], np.inf)
    bootstraps = count_bootstraps(monkeypatch)
    result = backtest_with_store("KO", restated, SETTINGS, slot)
    assert bootstraps == [1] and result.reuse["rows_reused"] == 0


def test_an_entry_written_without_intervals_draws_them_and_is_rewritten_with_them(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = random_walk(160, seed=4)
    backtest_with_store("KO", prices, SETTINGS, slot)
    table = pq.read_table(slot.path)
    meta = json.loads(table.schema.metadata[ENTRY_KEY])
    del meta["intervals"]
    pq.write_table(table.replace_schema_metadata({ENTRY_KEY: json.dumps(meta)}), slot.path)
    assert read_entry(slot, "KO")[0].intervals is None
    bootstraps = count_bootstraps(monkeypatch)
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert bootstraps == [1] and result.reuse["reason"] == "" and quarantined(slot) == []
    assert read_entry(slot, "KO")[0].intervals is not None


@pytest.mark.parametrize(
    "intervals",
    [
        "wide",
        {"sharpe": [0.1], "accuracy": [0.4, 0.6], "block_length": [2.0]},
        {"sharpe": [0.1, "0.2"], "accuracy": [0.4, 0.6], "block_length": [2.0]},
        {"sharpe": [0.1, 0.2], "accuracy": [0.4, 0.6]},
        {"sharpe": [0.1, True], "accuracy": [0.4, 0.6], "block_length": [2.0]},
    ],
    ids=["not-an-object", "one-bound", "text", "no-block-length", "boolean"],
)
def test_malformed_stored_intervals_are_moved_aside_never_trusted(
    slot: ResultsSlot, intervals: object
) -> None:
    prices = random_walk(160, seed=4)
    backtest_with_store("KO", prices, SETTINGS, slot)
    rewrite_meta(slot.path, intervals=intervals)
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert result.reuse["reason"] == results_store.REASON_UNREADABLE
    assert len(quarantined(slot)) == 1
    assert json.dumps(result.metrics) == json.dumps(backtest_ticker("KO", prices, SETTINGS).metrics)


def test_stored_intervals_round_trip_nan_exactly(slot: ResultsSlot) -> None:
    from pipeline.statistics.bootstrap import Interval, TickerIntervals

    prices = random_walk(160, seed=4)
    backtest_with_store("KO", prices, SETTINGS, slot)
    stored, _ = read_entry(slot, "KO")
    odd = TickerIntervals(Interval(float("nan"), 1 / 3), Interval(0.1 + 0.2, 5e-324), 17.25)
    results_store.write_entry(slot, results_store.replace(stored, intervals=odd))
    back = read_entry(slot, "KO")[0].intervals
    assert back is not None and repr(back) == repr(odd)


def test_the_pattern_table_round_trips_and_predicts_the_next_day(slot: ResultsSlot) -> None:
    prices = random_walk(161, seed=2)
    backtest_with_store("KO", prices.iloc[:160], SETTINGS, slot)
    stored, _ = read_entry(slot, "KO")
    assert stored is not None and stored.table is not None and len(stored.table) == 3**3
    assert set(stored.table.tolist()) <= {-1, 0, 1} and stored.table_refit is not None
    _, fresh = backtest_resuming("KO", prices.iloc[:160], SETTINGS)
    assert fresh is not None and fresh.table_refit == stored.table_refit
    assert fresh.table.dtype == stored.table.dtype and np.array_equal(fresh.table, stored.table)
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert result.reuse["reason"] == "" and result.reuse["refits_computed"] == 0
    full = backtest_ticker("KO", prices, SETTINGS)
    assert result.daily.equals(full.daily) and result.signal == full.signal


def flip_table_sign(signs: str, at: int) -> str:
    return signs[:at] + ("-" if signs[at] != "-" else "+") + signs[at + 1 :]


@pytest.mark.parametrize(
    "table",
    [
        "flipped",
        {"refit": 3, "signs": "+-x"},
        {"refit": "3", "signs": "+-0"},
        {"signs": "+-0"},
        "not-an-object",
    ],
    ids=["flipped-sign", "other-character", "text-refit", "no-refit", "not-an-object"],
)
def test_a_damaged_pattern_table_is_moved_aside_never_trusted(
    slot: ResultsSlot, table: object
) -> None:
    prices = random_walk(161, seed=2)
    backtest_with_store("KO", prices.iloc[:160], SETTINGS, slot)
    if table == "flipped":  # a valid-looking table whose checksum no longer matches
        meta = json.loads(pq.read_schema(slot.path).metadata[ENTRY_KEY])
        table = dict(meta["table"], signs=flip_table_sign(meta["table"]["signs"], 5))
    rewrite_meta(slot.path, table=table)
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert result.reuse["reason"] == results_store.REASON_UNREADABLE
    assert len(quarantined(slot)) == 1
    full = backtest_ticker("KO", prices, SETTINGS)
    assert result.daily.equals(full.daily) and result.signal == full.signal


def test_a_worker_passing_on_model_jobs_leaves_a_damaged_entry_to_the_one_that_fits(
    slot: ResultsSlot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged entry means a full computation, hence a model: a worker that passes such
    jobs on does so before moving the entry aside, so that the worker that runs the job finds
    it, moves it and reports why (a moved entry would read as merely missing)."""
    from pipeline.backtest import models

    prices = random_walk(160, seed=2)
    backtest_with_store("KO", prices, SETTINGS, slot)
    slot.path.write_bytes(b"not parquet at all")
    with monkeypatch.context() as patch:
        patch.setattr(models, "estimator_is_imported", lambda kind: False)
        with models.deferring_estimator_imports(), pytest.raises(models.EstimatorImportDeferred):
            backtest_with_store("KO", prices, SETTINGS, slot)
    assert quarantined(slot) == [] and slot.path.read_bytes() == b"not parquet at all"
    result = backtest_with_store("KO", prices, SETTINGS, slot)
    assert result.reuse["reason"] == results_store.REASON_UNREADABLE
    assert len(quarantined(slot)) == 1


# Run in a fresh interpreter (the tests' helpers import scikit-learn): one ticker's prices and
# settings from a pickle, its entry reused; says how many models were fit and whether
# scikit-learn was imported.
_REUSE_IN_A_FRESH_PROCESS = """
import pickle, sys
from pathlib import Path
from pipeline.data.results_store import ResultsSlot, backtest_with_store
from pipeline.backtest.models import EstimatorImportDeferred, deferring_estimator_imports
prices, settings = pickle.loads(Path(sys.argv[3]).read_bytes())
slot = ResultsSlot(Path(sys.argv[1]), sys.argv[2])
try:
    with deferring_estimator_imports():
        result = backtest_with_store("KO", prices, settings, slot)
    print("deferring:", result.reuse["reason"] or "reused", result.reuse["refits_computed"])
except EstimatorImportDeferred:
    print("deferring: passed on", "sklearn" in sys.modules)
result = backtest_with_store("KO", prices, settings, slot)
print(result.reuse["reason"] or "reused", result.reuse["refits_computed"], "sklearn" in sys.modules)
"""


@pytest.mark.parametrize(("extra", "refits"), [(0, 0), (1, 0), (12, 1)])
def test_scikit_learn_is_imported_only_when_a_refit_is_fit(
    slot: ResultsSlot, tmp_path: Path, extra: int, refits: int
) -> None:
    """A nightly run's worker whose tickers all reuse their stored refits (unchanged, or a new
    day inside the last refit's block) skips scikit-learn's import, a second of its start."""
    import pickle
    import subprocess
    import sys

    backtest_with_store("KO", random_walk(160, seed=2), SETTINGS, slot)
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((random_walk(160 + extra, seed=2), SETTINGS)))
    script = [sys.executable, "-c", _REUSE_IN_A_FRESH_PROCESS, str(slot.path), slot.key, str(job)]
    done = subprocess.run(script, capture_output=True, text=True, check=True)
    deferring, plain = done.stdout.splitlines()
    # A worker passing on the jobs that need a model runs those that do not, and passes on
    # the others without importing scikit-learn.
    assert deferring == ("deferring: passed on False" if refits else "deferring: reused 0")
    assert plain.split() == ["reused", str(refits), str(refits > 0)]

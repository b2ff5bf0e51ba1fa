"""`pipeline tune`: the sweep's grid, its skipping rule, its table and its recommendation."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from pipeline.benchmarking.sweep import (
    AUTO_TARGET_GAP,
    AutoRun,
    SweepPoint,
    SweepResult,
    busiest_worker_tasks,
    chunksize_ladder,
    format_sweep_table,
    ideal_seconds,
    is_hopeless,
    sample_config,
    sweep_execution,
)
from pipeline.config import Config, load_config
from pipeline.execution.tuning import usable_cpu_count
from tests.conftest import synthetic_raw_config


def tiny_config(cache_dir: Path) -> Config:
    raw = synthetic_raw_config(
        cache_dir, n_tickers=3, n_days=300, start=date(2020, 1, 1), backtest={"mode": "in_sample"}
    )
    return load_config(raw)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return sweep_execution(tiny_config(tmp_path_factory.mktemp("cache")), sample=2)


@pytest.mark.parametrize(
    ("tasks", "workers", "expected"),
    [
        (60, 2, [1, 2, 4, 8, 16, 30]),
        (64, 2, [1, 2, 4, 8, 16, 32]),
        (64, 1, [1, 2, 4, 8, 16, 32, 64]),
        (5, 2, [1, 2, 3]),
        (8, 2, [1, 2, 4]),
        (3, 1, [1, 2, 3]),
        (2, 2, [1]),
        (1, 4, [1]),
        (0, 2, [1]),
    ],
    ids=["60/2", "64/2", "64/1", "5/2", "8/2", "3/1", "one-each", "fewer-tasks", "none"],
)
def test_chunksize_ladder(tasks: int, workers: int, expected: list[int]) -> None:
    assert chunksize_ladder(tasks, workers) == expected


@pytest.mark.parametrize(
    ("tasks", "workers", "chunksize", "expected"),
    [
        (60, 2, 1, 30),
        (60, 2, 30, 30),
        (60, 2, 16, 32),  # chunks 16, 16, 16, 12: the first worker takes two full ones
        (7, 2, 2, 4),  # chunks 2, 2, 2, 1
        (5, 2, 4, 4),  # chunks 4, 1: one worker does nearly everything
        (10, 3, 1, 4),
        (3, 4, 1, 1),
        (0, 2, 1, 0),
    ],
    ids=["60-one", "60-halves", "60-16", "7-2", "5-4", "10-3", "idle-workers", "none"],
)
def test_busiest_worker_tasks(tasks: int, workers: int, chunksize: int, expected: int) -> None:
    assert busiest_worker_tasks(tasks, workers, chunksize) == expected


def test_the_busiest_worker_never_beats_a_perfect_split() -> None:
    for tasks in range(1, 40):
        for workers in range(1, 5):
            for chunksize in chunksize_ladder(tasks, workers):
                busiest = busiest_worker_tasks(tasks, workers, chunksize)
                assert -(-tasks // workers) <= busiest <= tasks


@pytest.mark.parametrize(
    ("ideal", "best", "expected"),
    [(1.0, 1.0, False), (1.5, 1.0, False), (1.51, 1.0, True), (5.0, float("inf"), False)],
    ids=["equal", "at-the-factor", "past-the-factor", "nothing-measured-yet"],
)
def test_is_hopeless(ideal: float, best: float, expected: bool) -> None:
    assert is_hopeless(ideal, best) is expected


def test_ideal_seconds_is_the_busiest_workers_share() -> None:
    assert ideal_seconds(60, 2, 16, 0.01) == pytest.approx(0.32)


def test_sample_config_spreads_over_the_universe(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    assert sample_config(config, None) is config
    assert sample_config(config, 2).data.universe == ("SYN000", "SYN001")
    assert sample_config(config, 10).data.universe == config.data.universe


@pytest.mark.slow
def test_the_sweep_covers_every_worker_count_and_chunksize(sweep: SweepResult) -> None:
    assert sweep.tickers == ("SYN000", "SYN001")  # the sample of 2
    max_workers = min(usable_cpu_count(), 2)
    expected = {(w, c) for w in range(1, max_workers + 1) for c in chunksize_ladder(2, w)}
    assert {(p.workers, p.chunksize) for p in sweep.points} == expected
    assert not sweep.baseline.skipped
    assert not sweep.best.skipped
    assert sweep.auto.chosen_chunksize >= 1 and len(sweep.auto.seconds) == 1


@pytest.mark.slow
def test_the_table_marks_the_best_and_shows_auto(sweep: SweepResult) -> None:
    table = format_sweep_table(sweep)
    best_lines = [line for line in table.splitlines() if line.endswith("<- best")]
    assert len(best_lines) == 1
    assert best_lines[0].split()[:2] == [str(sweep.best.workers), str(sweep.best.chunksize)]
    assert f"auto chose chunksize {sweep.auto.chosen_chunksize}" in table
    assert "recommended: --set execution.workers=" in table


def hand_made(auto_seconds: float, auto_workers: int = 2) -> SweepResult:
    return SweepResult(
        tickers=("A", "B", "C", "D"),
        failed_downloads=(),
        usable_cpus=2,
        repeats=3,
        task_seconds=0.5,
        points=(
            SweepPoint(1, 1, (2.0, 2.2, 2.1), 2.0),
            SweepPoint(1, 2, (), 2.0),
            SweepPoint(2, 1, (1.2, 1.1, 1.0), 1.0),
            SweepPoint(2, 2, (1.0, 1.05, 1.0), 1.0),
        ),
        auto=AutoRun(auto_workers, 1, (auto_seconds,)),
        sweep_seconds=12.0,
        data={
            "source": "csv",
            "start": "2000-01-01",
            "end": "2001-01-01",
            "mode": "in_sample",
            "fast_path": True,
        },
    )


def test_auto_within_the_target_is_recommended() -> None:
    result = hand_made(auto_seconds=1.1)
    assert result.best == SweepPoint(2, 2, (1.0, 1.05, 1.0), 1.0)
    assert result.auto_gap == pytest.approx(0.1)
    assert result.recommendation == {"workers": 2, "chunksize": "auto"}
    table = format_sweep_table(result)
    assert "+10.0% against the best (within the 15% target)" in table
    assert "skipped: even ideally 2.000 s" in table
    assert "recommended: --set execution.workers=2 --set execution.chunksize=auto" in table


@pytest.mark.parametrize(
    ("auto_seconds", "auto_workers"),
    [(1.0 * (1 + AUTO_TARGET_GAP) + 0.01, 2), (1.0, 1)],
    ids=["auto-too-slow", "auto-at-other-workers"],
)
def test_otherwise_the_best_is_recommended(auto_seconds: float, auto_workers: int) -> None:
    result = hand_made(auto_seconds, auto_workers)
    assert result.recommendation == {"workers": 2, "chunksize": 2}


def test_the_gap_is_outside_the_target_when_auto_is_slow() -> None:
    table = format_sweep_table(hand_made(1.5))
    assert "+50.0% against the best (OUTSIDE the 15% target)" in table


def test_one_repeat_warns_that_the_timings_are_noise_and_says_what_the_target_is() -> None:
    once = dataclasses.replace(hand_made(auto_seconds=1.1), repeats=1)
    table = format_sweep_table(once)
    assert "target: auto's time within 15% of the best measured configuration's." in table
    assert table.splitlines()[-1].startswith("warning: one run per configuration;")
    assert "--repeats 3" in table
    assert "warning" not in format_sweep_table(hand_made(auto_seconds=1.1))


def test_one_worker_is_singular() -> None:
    result = hand_made(auto_seconds=1.0, auto_workers=1)
    table = format_sweep_table(result)
    assert "auto: 1 worker, chunksize" in table
    assert "1 workers" not in table

import logging
from pathlib import Path

import pytest

from pipeline.execution import tuning
from pipeline.execution.tuning import (
    ChunkPlan,
    cgroup_cpu_quota,
    choose_chunksize,
    resolve_workers,
    usable_cpu_count,
)


@pytest.mark.parametrize(
    ("seconds", "tasks", "workers", "expected"),
    [
        (0.001, 10_000, 2, 200),  # cheap tasks: 200 of them make a 0.2 s chunk
        (0.001, 200, 2, 25),  # ...but 200 tasks must still give each worker 4 chunks
        (1.0, 500, 2, 1),  # expensive tasks: overhead is already negligible
        (0.01, 5_000, 4, 20),
        (0.0, 100, 2, 12),  # an unmeasurably fast pilot: the balance cap decides
        (0.01, 1, 2, 1),
        (0.01, 0, 2, 1),
    ],
    ids=["cheap-many", "cheap-few", "expensive", "medium", "zero-time", "one-task", "no-task"],
)
def test_chunksize_from_pilot_timings(
    seconds: float, tasks: int, workers: int, expected: int
) -> None:
    assert choose_chunksize(seconds, tasks, workers) == expected


def test_chunksize_keeps_every_worker_busy_to_the_end() -> None:
    for tasks in (8, 50, 505, 5000):
        for workers in (1, 2, 8):
            size = choose_chunksize(1e-4, tasks, workers)
            chunks = -(-tasks // size)
            assert chunks >= min(tasks, 4 * workers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000", 1.5), ("garbage", None)],
    ids=["unlimited", "two-cpus", "fractional", "unreadable"],
)
def test_cgroup_quota(tmp_path: Path, text: str, expected: float | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert cgroup_cpu_quota(cpu_max) == expected


def test_missing_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "absent") is None


def test_workers_auto_uses_usable_cpus_and_never_exceeds_tasks() -> None:
    assert resolve_workers("auto", 10_000) == usable_cpu_count()
    assert resolve_workers("auto", 1) == 1


def test_workers_are_capped_at_the_usable_cpus_and_the_cap_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tuning, "usable_cpu_count", lambda: 4)
    with caplog.at_level(logging.WARNING, logger=tuning.__name__):
        assert resolve_workers(3, 10) == 3
        assert resolve_workers(3, 2) == 2
        assert not caplog.records, "no cap below the CPUs"
        assert resolve_workers(1_000_000, 24) == 4
    assert "execution.workers = 1000000" in caplog.text and "using 4" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=tuning.__name__):
        assert resolve_workers(8, 3) == 3  # the tasks bound it first: nothing to say
    assert not caplog.records


@pytest.mark.parametrize(
    ("setting", "n_tasks", "workers", "samples", "sizes"),
    [
        (3, 100, 2, [], [3, 3]),  # a number is used as it is, no pilot
        ("auto", 100, 2, [0.5, 0.5], [1, 1, 1]),  # expensive tasks: chunks of 1
        ("auto", 10_000, 2, [0.001, 0.003], [1, 1, 100]),  # pilot of 2, then from the median
    ],
    ids=["fixed", "auto-expensive", "auto-cheap"],
)
def test_chunk_plan_pilots_then_chooses(
    setting: int | str, n_tasks: int, workers: int, samples: list[float], sizes: list[int]
) -> None:
    plan = ChunkPlan(setting, n_tasks, workers)
    got = []
    for seconds in [*samples, None]:
        got.append(plan.size())
        if seconds is not None:
            plan.observe(seconds)
    assert got[-1] == sizes[-1]
    assert got[: len(samples)] == sizes[: len(samples)]
    assert not plan.in_pilot


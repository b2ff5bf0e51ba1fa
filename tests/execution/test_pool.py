import time
from datetime import date
from pathlib import Path

import psutil
import pytest

from pipeline.config import load_config
from pipeline.execution.jobs import TickerJob
from pipeline.execution.pool import CrashProofPool
from tests.execution.tasks import echo_task, importing_task, misbehaving_task

pytestmark = pytest.mark.slow  # every test starts a process pool

SETTINGS = load_config(
    {"data": {"source": "synthetic", "start": date(2015, 1, 1), "end": date(2020, 1, 1)}}
).backtest_settings


def jobs_for(tickers: list[str], directory: Path = Path("unused")) -> list[TickerJob]:
    return [
        TickerJob(t, directory / f"{t}.marker", date(2015, 1, 1), date(2020, 1, 1))
        for t in tickers
    ]


def run_all(pool: CrashProofPool, jobs: list[TickerJob]) -> dict[str, tuple[str, str]]:
    seen: dict[int, object] = {}
    for index, result in pool.run(jobs):
        assert index not in seen, f"job {index} reported twice"
        seen[index] = result
    assert sorted(seen) == list(range(len(jobs)))
    return {jobs[i].ticker: (r.status, r.reason) for i, r in seen.items()}  # type: ignore[attr-defined]


def no_children_left() -> bool:
    children = psutil.Process().children(recursive=True)
    alive = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    # multiprocessing's fork server and resource tracker live as long as the interpreter;
    # pool workers may not outlive the run.
    infrastructure = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
    return all(any(name in " ".join(c.cmdline()) for name in infrastructure) for c in alive)


@pytest.mark.parametrize("chunksize", [1, 3, "auto"], ids=["chunk1", "chunk3", "auto"])
def test_every_job_comes_back_once(chunksize: int | str) -> None:
    tickers = [f"T{i:02d}" for i in range(23)]
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=chunksize, task=echo_task)
    outcome = run_all(pool, jobs_for(tickers))
    assert outcome == {t: ("ok", "") for t in tickers}
    assert no_children_left()


def test_two_workers_share_the_work() -> None:
    jobs = jobs_for([f"SLOW{i}" for i in range(6)])
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=echo_task)
    pids = {result.metrics["pid"] for _, result in pool.run(jobs)}
    assert len(pids) == 2


def test_auto_chunksize_is_chosen_after_the_pilot() -> None:
    pool = CrashProofPool(SETTINGS, workers=2, chunksize="auto", task=echo_task)
    run_all(pool, jobs_for([f"T{i:03d}" for i in range(200)]))
    described = pool.describe()
    assert isinstance(described["chunksize"], int) and described["chunksize"] >= 1
    assert described["chunksize_setting"] == "auto"
    assert described["start_method"] in {"fork", "forkserver", "spawn"}


def test_a_task_that_imports_modules_is_no_pilot_sample() -> None:
    """Each worker's first task imports for 0.3 s, and every task works for 20 ms. Timed, the
    imports would make the pilot's median 0.16 s and the chunks one or two tasks; untimed,
    chunks of about ten tasks make 0.2 s."""
    pool = CrashProofPool(SETTINGS, workers=2, chunksize="auto", task=importing_task)
    tickers = [f"T{i:03d}" for i in range(100)]
    assert set(run_all(pool, jobs_for(tickers)).values()) == {("ok", "")}
    assert pool.describe()["chunksize"] >= 4


def test_a_task_that_raises_fails_only_its_ticker() -> None:
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=2, task=misbehaving_task)
    outcome = run_all(pool, jobs_for(["A", "RAISE1", "B", "C"]))
    assert outcome["RAISE1"] == ("failed", "ValueError: boom in the task")
    assert {outcome[t][0] for t in "ABC"} == {"ok"}
    assert pool.describe()["worker_restarts"] == 0


def test_a_worker_killed_every_time_is_retried_once_then_failed() -> None:
    tickers = ["A", "B", "KILL1", "C", "D", "E", "F"]
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=3, task=misbehaving_task)
    outcome = run_all(pool, jobs_for(tickers))
    status, reason = outcome.pop("KILL1")
    assert status == "failed"
    assert "killed by SIGKILL, 2 times" in reason
    assert outcome == {t: ("ok", "") for t in "ABCDEF"}
    assert pool.describe()["worker_restarts"] == 2
    assert no_children_left()


def test_a_worker_killed_once_succeeds_on_the_retry(tmp_path: Path) -> None:
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=misbehaving_task)
    outcome = run_all(pool, jobs_for(["A", "ONCE1", "B"], tmp_path))
    assert outcome == {"A": ("ok", ""), "ONCE1": ("ok", ""), "B": ("ok", "")}
    assert (tmp_path / "ONCE1.marker").exists()


def test_a_task_over_the_timeout_is_killed_and_failed() -> None:
    pool = CrashProofPool(
        SETTINGS, workers=2, chunksize=2, task_timeout=1.0, task=misbehaving_task
    )
    outcome = run_all(pool, jobs_for(["A", "HANG1", "B", "C"]))
    assert outcome["HANG1"] == ("failed", "timed out after 1 s")
    assert {outcome[t][0] for t in "ABC"} == {"ok"}
    assert no_children_left()


def test_stopping_early_leaves_no_worker() -> None:
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=echo_task)
    results = pool.run(jobs_for([f"SLOW{i}" for i in range(10)]))
    next(results)
    results.close()
    assert no_children_left()


def test_a_timeout_shorter_than_the_poll_interval_is_waited_for_exactly() -> None:
    """The pool wakes up when the earliest running task reaches its timeout, not at its next
    poll: a 0.05 s timeout is enforced after 0.05 s, not after the 0.5 s poll."""
    from collections import deque

    from pipeline.execution import pool as pool_module

    pool = CrashProofPool(SETTINGS, workers=1, chunksize=1, task_timeout=0.05)
    now = time.monotonic()
    busy = pool_module._Worker(process=None, conn=None, chunk=deque([0]), task_started=now)  # type: ignore[arg-type]
    pool._workers = [busy]
    assert pool._wait_seconds() <= 0.051
    assert pool_module._POLL_SECONDS > 0.4
    busy.task_started = now - 1.0  # overdue already: do not wait at all
    assert pool._wait_seconds() <= 0.001
    assert pool._overdue(busy)
    pool._workers = []

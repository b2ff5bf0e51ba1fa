import dataclasses
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from pipeline.config import load_config
from pipeline.execution import pool as pool_module
from pipeline.execution.jobs import TickerJob, Variant
from pipeline.execution.pool import CrashProofPool
from tests.execution.tasks import (
    FAKE_MODULE,
    echo_task,
    fitting_task,
    importing_task,
    misbehaving_task,
)

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


# --- the jobs that need a model go to one worker ---------------------------------------------


@pytest.fixture
def fake_estimator_unloaded() -> Iterator[None]:
    """The fake estimator's module not loaded here, so that no forked worker inherits it."""
    sys.modules.pop(FAKE_MODULE, None)
    yield
    sys.modules.pop(FAKE_MODULE, None)


def run_fitting(pool: CrashProofPool, tickers: list[str]) -> list[dict]:
    """Each job's result metrics (pid, whether its process had the module), in job order."""
    jobs = jobs_for(tickers)
    seen: dict[int, dict] = {}
    for index, result in pool.run(jobs):
        assert index not in seen, f"job {index} reported twice"
        assert result.status == "ok", result.reason
        seen[index] = result.metrics
    assert sorted(seen) == list(range(len(jobs)))
    return [seen[index] for index in range(len(jobs))]


def test_a_few_jobs_that_need_a_model_run_in_one_worker(fake_estimator_unloaded: None) -> None:
    """A nightly run's shape: 12 of 40 tickers refit. One worker imports the estimator and
    fits every one; the other passes on those it is handed, and both share the work."""
    tickers = [f"FIT{i:02d}" if i % 10 in (2, 3, 7) else f"T{i:02d}" for i in range(40)]
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=fitting_task)
    metrics = run_fitting(pool, tickers)
    loaded_in = {m["pid"] for m in metrics if m["loaded"]}
    assert len(loaded_in) == 1
    fitted = {m["pid"] for t, m in zip(tickers, metrics, strict=True) if t.startswith("FIT")}
    assert fitted == loaded_in
    assert len({m["pid"] for m in metrics}) == 2
    assert 0 < pool.stats.deferred <= 12
    assert no_children_left()


def test_when_most_jobs_need_a_model_every_worker_imports_it(
    fake_estimator_unloaded: None,
) -> None:
    """A full run's shape: past the first jobs passed on, the other worker fits too."""
    tickers = [f"FIT{i:02d}" if i % 5 else f"T{i:02d}" for i in range(60)]
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=fitting_task)
    metrics = run_fitting(pool, tickers)
    assert len({m["pid"] for m in metrics if m["loaded"]}) == 2
    # At most one chunk per worker is in flight when the limit is reached.
    limit = pool_module._MIN_DEFERRALS
    assert limit <= pool.stats.deferred <= limit + 1


def test_a_single_worker_fits_everything_itself(fake_estimator_unloaded: None) -> None:
    pool = CrashProofPool(SETTINGS, workers=1, chunksize=2, task=fitting_task)
    metrics = run_fitting(pool, ["A", "FIT1", "B", "FIT2"])
    assert [m["loaded"] for m in metrics] == [False, True, True, True]
    assert pool.stats.deferred == 0


def test_passing_on_applies_to_jobs_whose_model_is_not_loaded(
    fake_estimator_unloaded: None, tmp_path: Path
) -> None:
    """`_run_one` with may_defer: a job that would import the module comes back deferred
    without importing it; a job that needs no model, or a sweep's job (its variants store
    their results as they go), runs."""
    plain, fit = jobs_for(["A", "FIT1"], tmp_path)
    assert pool_module._run_one(0, plain, fitting_task, SETTINGS, True)[1].status == "ok"
    assert pool_module._run_one(1, fit, fitting_task, SETTINGS, True) == (
        1,
        pool_module._DEFERRED,
        None,
    )
    assert FAKE_MODULE not in sys.modules
    sweep = dataclasses.replace(fit, variants=(Variant(SETTINGS),))
    index, result, seconds = pool_module._run_one(2, sweep, fitting_task, SETTINGS, True)
    assert (index, result.status, seconds) == (2, "ok", None)  # it imported: no time sample
    assert FAKE_MODULE in sys.modules
    # Loaded now: nothing to pass on.
    assert pool_module._run_one(3, fit, fitting_task, SETTINGS, True)[1].status == "ok"


def test_passed_on_jobs_wait_for_the_fitting_worker_unless_they_pile_up() -> None:
    pool = CrashProofPool(SETTINGS, workers=2, chunksize=1, task=fitting_task)
    fitter, other = SimpleNamespace(ready=True), SimpleNamespace(ready=True)
    pool._workers = [fitter, other]  # type: ignore[list-item]
    queue, deferred = deque([1, 2]), deque([7])
    assert pool._source(0, queue, deferred) is deferred  # the fitter takes them first
    assert pool._source(1, queue, deferred) is queue
    queue.clear()
    assert not pool._source(1, queue, deferred)  # idle: the fitter will take it
    deferred.extend(range(10, 10 + pool_module._DEFERRED_BACKLOG))
    assert pool._source(1, queue, deferred) is deferred  # a backlog: help
    deferred = deque([7])
    fitter.ready = False  # being replaced
    assert pool._source(1, queue, deferred) is deferred
    assert pool._source(0, queue, deque()) is queue
    pool._workers = []

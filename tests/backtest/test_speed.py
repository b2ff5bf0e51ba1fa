"""The backtest stage's speed settings: BLAS pinned to one thread while a ticker is fitted, and
warnings before a run whose model settings make walk_forward slow."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from pipeline.backtest import task
from pipeline.backtest.speed import speed_warnings
from tests.backtest.conftest import build_settings, random_walk


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_the_fit_runs_on_one_blas_thread_and_restores_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many BLAS threads on tiny problems made logistic regression 6-12x slower."""
    seen: list[list[int]] = []
    real_evaluate = task.evaluate

    def watching_evaluate(*args, **kwargs):
        seen.append(blas_threads())
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(task, "evaluate", watching_evaluate)
    before = blas_threads()
    result = task.backtest_ticker(
        "RW",
        random_walk(400),
        build_settings(model={"kind": "logistic_regression"}, train_days=200, retrain_every=50),
    )
    assert result.status == "ok", result.reason
    assert seen and seen[0] and set(seen[0]) == {1}
    assert blas_threads() == before


def test_one_blas_thread_gives_the_same_results() -> None:
    settings = build_settings(
        model={"kind": "logistic_regression"}, train_days=200, retrain_every=25
    )
    pinned = task.backtest_ticker("RW", random_walk(600, seed=3), settings)
    real_limit = task.single_threaded_blas
    try:
        task.single_threaded_blas = lambda: _nothing()  # type: ignore[assignment]
        free = task.backtest_ticker("RW", random_walk(600, seed=3), settings)
    finally:
        task.single_threaded_blas = real_limit  # type: ignore[assignment]
    assert pinned.metrics == free.metrics
    assert pinned.daily.equals(free.daily)


def _nothing():
    from contextlib import nullcontext

    return nullcontext()


@pytest.mark.parametrize(
    ("model", "mode", "expected"),
    [
        ({"kind": "svc"}, "walk_forward", None),
        ({"kind": "svc", "fast_path": False}, "walk_forward", "model.fast_path = false"),
        ({"kind": "svc", "fast_path": False}, "holdout", None),
        ({"kind": "svc", "params": {"class_weight": "balanced"}}, "walk_forward", "no exact fast"),
        ({"kind": "random_forest"}, "walk_forward", "'random_forest' with these params"),
        ({"kind": "random_forest"}, "in_sample", None),
        ({"kind": "logistic_regression", "fast_path": False}, "walk_forward", None),
        ({"kind": "linear_svc", "fast_path": False}, "walk_forward", None),
    ],
    ids=[
        "svc-fast",
        "svc-plain",
        "svc-plain-holdout",
        "svc-balanced",
        "forest",
        "forest-in-sample",
        "logistic-plain",
        "linear-plain",
    ],
)
def test_slow_model_settings_warn_before_a_walk_forward_run(
    model: dict, mode: str, expected: str | None
) -> None:
    found = speed_warnings(build_settings(model=model, mode=mode))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0]
        assert "every 21 rows" in found[0]

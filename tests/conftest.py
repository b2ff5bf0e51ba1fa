"""Fixtures shared across the suite: the shared real-price sample and small run configs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "sp500-sample"


@pytest.fixture
def sp500_sample() -> Path:
    """The 60-ticker real-price sample beside the project; tests using it skip without it."""
    if not (SHARED_SAMPLE / "KO.csv").is_file():
        pytest.skip(f"the shared real-price sample is not at {SHARED_SAMPLE}")
    return SHARED_SAMPLE


@pytest.fixture
def small_run_overrides(tmp_path: Path) -> list[str]:
    """--set overrides that make the demo config small, serial and confined to tmp_path."""
    return [
        f"data.cache_dir={(tmp_path / 'cache').as_posix()!r}".replace("'", '"'),
        f"report.out_dir={(tmp_path / 'reports').as_posix()!r}".replace("'", '"'),
        "data.synthetic.n_tickers=3",
        "data.synthetic.n_days=400",
        "backtest.train_days=150",
        "execution.executor=serial",
    ]

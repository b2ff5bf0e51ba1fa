"""Fixtures shared across the suite: the shared real-price sample and small run configs."""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "sp500-sample"

# A suite started in the background by a shell without job control inherits SIGINT ignored,
# and so would every `pipeline` it starts: the Ctrl-C tests' signal would never arrive. Python's
# own handler here means the children start with the default and install theirs.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def sp500_sample() -> Path:
    """The 60-ticker real-price sample beside the project; tests using it skip without it."""
    if not (SHARED_SAMPLE / "KO.csv").is_file():
        pytest.skip(f"the shared real-price sample is not at {SHARED_SAMPLE}")
    return SHARED_SAMPLE


def synthetic_raw_config(
    cache_dir: Path,
    *,
    n_tickers: int,
    n_days: int,
    seed: int = 0,
    start: date = date(2015, 1, 1),
    end: date = date(2021, 12, 31),
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """A raw config of a small synthetic universe cached in `cache_dir`; `sections` (backtest,
    execution, report, ...) are added as given."""
    synthetic = {"n_tickers": n_tickers, "n_days": n_days, "seed": seed}
    data = {"source": "synthetic", "start": start, "end": end, "cache_dir": cache_dir.as_posix()}
    return {"data": {**data, "synthetic": synthetic}, **sections}


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

"""Config-driven backtests of a per-ticker lag-feature SVM.

In a notebook:

    from pipeline import run_backtest
    result = run_backtest("configs/demo.toml", ["execution.executor=serial"])
    result.summary, result.daily, result.manifest
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["run_backtest"]

if TYPE_CHECKING:
    from pipeline.runner import run_backtest


def __getattr__(name: str) -> Any:
    # Imported lazily so that `pipeline --help` and worker processes stay quick to start.
    if name == "run_backtest":
        from pipeline.runner import run_backtest

        return run_backtest
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")

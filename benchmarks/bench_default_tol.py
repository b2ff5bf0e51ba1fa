"""The SVC's default tolerance: the fast path against the plain fit, and what tol costs.

For every ticker of the real-price sample, in_sample over its whole history: the share of days
on which the fast path holds the plain fit's position and the largest gap in cum_return, at the
default (METHOD.md's tol = 1e-6) and at scikit-learn's tol = 1e-3. Then the walk_forward fast
path (the default run's backtest) timed at both tolerances. Figures go to benchmarks/RESULTS.md.

    python benchmarks/bench_default_tol.py [SAMPLE_DIR] [--tickers KO XOM ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backtest.task import backtest_ticker
from pipeline.config import BacktestConfig, BacktestSettings, FeaturesConfig, ModelConfig
from pipeline.data.sources.base import ADJ_CLOSE
from pipeline.data.sources.csv_source import read_price_file

DEFAULT_SAMPLE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sp500-sample"
TOLERANCES: dict[str, dict[str, Any]] = {"default (1e-6)": {}, "tol=1e-3": {"tol": 1e-3}}


def settings(mode: str, fast_path: bool, params: dict[str, Any]) -> BacktestSettings:
    return BacktestSettings(
        features=FeaturesConfig(),
        model=ModelConfig(params=params, fast_path=fast_path),
        backtest=BacktestConfig(mode=mode, train_days=504, retrain_every=21),
    )


def agreement(
    ticker: str, prices, params: dict[str, Any], mode: str = "in_sample"
) -> tuple[float, float]:
    """(share of days with the same position, |cum_return gap|) of plain vs fast."""
    plain = backtest_ticker(ticker, prices, settings(mode, False, params))
    fast = backtest_ticker(ticker, prices, settings(mode, True, params))
    same = np.mean(plain.daily["position"].to_numpy() == fast.daily["position"].to_numpy())
    gap = abs(plain.summary_row()["cum_return"] - fast.summary_row()["cum_return"])
    return float(same), float(gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample_dir", nargs="?", type=Path, default=DEFAULT_SAMPLE_DIR)
    parser.add_argument("--tickers", nargs="*")
    parser.add_argument(
        "--walk-forward-plain",
        action="store_true",
        help="compare plain and fast in walk_forward instead (about 30 s a ticker plain)",
    )
    args = parser.parse_args()
    files = sorted(args.sample_dir.glob("*.csv"))
    if args.tickers:
        files = [path for path in files if path.stem in args.tickers]
    prices = {path.stem: read_price_file(path)[ADJ_CLOSE] for path in files}
    print(f"{len(prices)} tickers; load average {os.getloadavg()[0]:.1f} at the start")
    mode = "walk_forward" if args.walk_forward_plain else "in_sample"
    for name, params in TOLERANCES.items():
        started = time.perf_counter()
        results = {t: agreement(t, series, params, mode) for t, series in prices.items()}
        shares = np.array([share for share, _ in results.values()])
        gaps = np.array([gap for _, gap in results.values()])
        worst = min(results, key=lambda ticker: results[ticker][0])
        differing = sum(round((1 - s) * len(prices[t])) for t, (s, _) in results.items())
        print(
            f"{mode} plain vs fast, {name}: identical on {int((shares == 1).sum())} of "
            f"{len(shares)} tickers; worst {worst} {shares.min():.4%} of days; "
            f"about {differing} days differ; "
            f"largest cum_return gap {gaps.max():.4g} ({time.perf_counter() - started:.0f} s)"
        )
    for name, params in TOLERANCES.items() if not args.walk_forward_plain else ():
        started = time.perf_counter()
        for ticker, series in prices.items():
            backtest_ticker(ticker, series, settings("walk_forward", True, params))
        elapsed = time.perf_counter() - started
        print(
            f"walk_forward fast path, {name}: {elapsed:.1f} s for {len(prices)} tickers "
            f"({elapsed / len(prices):.2f} s a ticker, one process)"
        )


if __name__ == "__main__":
    main()

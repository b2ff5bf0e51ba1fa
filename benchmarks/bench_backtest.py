"""Backtest speed: the plain per-row fit against the exact fast path, on real prices.

Prints, per ticker, the in_sample time of the plain fit and of the fast path (METHOD.md,
"Exactness of a weighted fit"), their ratio and how many positions agree, then the walk_forward
time per ticker with monthly refits on the fast path. Figures go to benchmarks/RESULTS.md.

    python benchmarks/bench_backtest.py [SAMPLE_DIR] [--tickers KO XOM ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

from pipeline.backtest.result import TickerResult
from pipeline.backtest.task import backtest_ticker
from pipeline.config import BacktestConfig, BacktestSettings, FeaturesConfig, ModelConfig
from pipeline.data.sources.base import ADJ_CLOSE
from pipeline.data.sources.csv_source import CsvSource

DEFAULT_SAMPLE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sp500-sample"
DEFAULT_TICKERS = ("KO", "XOM", "AAPL", "IBM", "MCD", "MSFT", "TXN", "HPQ")
S_AND_P_TICKERS = 505


def read_prices(sample_dir: Path, ticker: str, start: str, end: str) -> pd.Series:
    """Adjusted closes of one ticker, read the way the pipeline's csv source reads them."""
    frame = CsvSource(sample_dir).fetch(ticker, date.fromisoformat(start), date.fromisoformat(end))
    return frame[ADJ_CLOSE]


def make_settings(mode: str, fast_path: bool) -> BacktestSettings:
    return BacktestSettings(
        features=FeaturesConfig(),
        model=ModelConfig(fast_path=fast_path),
        backtest=BacktestConfig(mode=mode, train_days=504, retrain_every=21),
    )


def time_backtest(
    ticker: str, prices: pd.Series, mode: str, fast_path: bool, repeats: int = 1
) -> tuple[float, TickerResult]:
    """The fastest of `repeats` runs of the task, in seconds, and its result."""
    settings = make_settings(mode, fast_path)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = backtest_ticker(ticker, prices, settings)
        times.append(time.perf_counter() - started)
    return min(times), result


def machine() -> str:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]  # fmt: skip
        cpu = models[0] if models else cpu
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), load average {load}; Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample_dir", nargs="?", type=Path, default=DEFAULT_SAMPLE_DIR)
    parser.add_argument("--tickers", nargs="+", default=list(DEFAULT_TICKERS))
    parser.add_argument("--start", default="1999-12-31")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--repeats", type=int, default=5, help="fast-path runs; the best counts")
    args = parser.parse_args()

    print(machine())
    print(
        f"in_sample and walk_forward (train_days=504, retrain_every=21), {args.start}..{args.end}"
    )
    header = f"{'ticker':<6} {'prices':>6} {'plain s':>8} {'fast s':>8} {'ratio':>6} {'agree':>7}"
    print(f"{header} {'wf fast s':>9} {'read s':>7}")
    ratios, walk_times, fast_times = [], [], []
    for ticker in args.tickers:
        started = time.perf_counter()
        prices = read_prices(args.sample_dir, ticker, args.start, args.end)
        read_seconds = time.perf_counter() - started
        plain_s, plain = time_backtest(ticker, prices, "in_sample", fast_path=False)
        fast_s, fast = time_backtest(ticker, prices, "in_sample", True, args.repeats)
        walk_s, _ = time_backtest(ticker, prices, "walk_forward", fast_path=True)
        agree = np.mean(plain.daily["position"].to_numpy() == fast.daily["position"].to_numpy())
        ratios.append(plain_s / fast_s)
        walk_times.append(walk_s)
        fast_times.append(fast_s)
        print(
            f"{ticker:<6} {len(prices):>6} {plain_s:>8.3f} {fast_s:>8.4f} {plain_s / fast_s:>6.0f} "
            f"{agree:>7.2%} {walk_s:>9.3f} {read_seconds:>7.3f}"
        )
    cores = os.cpu_count() or 1
    print(f"ratio plain/fast: median {statistics.median(ratios):.0f}x, min {min(ratios):.0f}x")
    print(f"in_sample fast path: mean {statistics.mean(fast_times) * 1e3:.1f} ms per ticker")
    print(f"walk_forward fast path: mean {statistics.mean(walk_times):.2f} s per ticker")
    print(
        f"compute-only estimate for {S_AND_P_TICKERS} such tickers on {cores} cores: in_sample "
        f"{statistics.mean(fast_times) * S_AND_P_TICKERS / cores:.1f} s, walk_forward "
        f"{statistics.mean(walk_times) * S_AND_P_TICKERS / cores:.0f} s"
    )


if __name__ == "__main__":
    main()

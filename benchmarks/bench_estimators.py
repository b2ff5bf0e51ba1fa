"""Per-ticker walk_forward time of each estimator kind, with BLAS pinned to one thread (what
the task does) and with the BLAS library's default threads, on real prices.

Shows why logistic regression was slow (its L-BFGS solver makes many tiny BLAS calls, and
waking BLAS threads costs more than each call) and that pinning changes no result.

    python benchmarks/bench_estimators.py [SAMPLE_DIR] [--tickers KO XOM] [--with-plain-svc]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path

from pipeline.backtest import task
from pipeline.config import BacktestConfig, BacktestSettings, FeaturesConfig, ModelConfig
from pipeline.data.sources.base import ADJ_CLOSE
from pipeline.data.sources.csv_source import CsvSource

DEFAULT_SAMPLE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sp500-sample"
KINDS = (
    ("logistic_regression", True),
    ("logistic_regression", False),
    ("svc", True),
    ("linear_svc", True),
    ("random_forest", True),
)


def timed(ticker: str, prices, settings: BacktestSettings, pinned: bool):
    original = task.single_threaded_blas
    if not pinned:
        task.single_threaded_blas = nullcontext  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = task.backtest_ticker(ticker, prices, settings)
        return time.perf_counter() - started, result
    finally:
        task.single_threaded_blas = original  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample_dir", nargs="?", type=Path, default=DEFAULT_SAMPLE_DIR)
    parser.add_argument("--tickers", nargs="+", default=["KO", "XOM"])
    parser.add_argument("--with-plain-svc", action="store_true", help="minutes per ticker")
    args = parser.parse_args()
    kinds = [*KINDS, *([("svc", False)] if args.with_plain_svc else [])]
    source = CsvSource(args.sample_dir)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"{'ticker':<7} {'kind':<20} {'fit':<6} {'pinned s':>9} {'default s':>10} "
        f"{'ratio':>6}  identical"
    )
    for ticker in args.tickers:
        frame = source.fetch(ticker, *_whole_range())
        prices = frame[ADJ_CLOSE]
        for kind, fast in kinds:
            settings = BacktestSettings(
                features=FeaturesConfig(),
                model=ModelConfig(kind=kind, fast_path=fast),
                backtest=BacktestConfig(mode="walk_forward"),
            )
            pinned_s, pinned = timed(ticker, prices, settings, pinned=True)
            free_s, free = timed(ticker, prices, settings, pinned=False)
            same = pinned.metrics == free.metrics and pinned.daily.equals(free.daily)
            print(
                f"{ticker:<7} {kind:<20} {'fast' if fast else 'plain':<6} {pinned_s:>9.2f} "
                f"{free_s:>10.2f} {free_s / pinned_s:>6.1f}  {same}",
                flush=True,
            )


def _whole_range():
    from datetime import date

    return date(1900, 1, 1), date(2100, 1, 1)


if __name__ == "__main__":
    main()

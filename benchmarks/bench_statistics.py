"""Costs of the statistics: the bootstrap's share of a walk-forward run, and a sweep against
one run.

    python benchmarks/bench_statistics.py                 # both scenarios
    python benchmarks/bench_statistics.py --only per-ticker   # or whole-run, sweep

- bootstrap: (a) in one process, per ticker of the 60-ticker sample, walk_forward 504/21: the
  CPU time of the task without intervals against that of the interval work on its evaluation
  days (block length, resampling, quantiles, and ticker_intervals as a whole); (b) 505 tickers (the
  sample repeated, as bench_scale.py builds them) through `pipeline run --full`, backtest stage
  with 1000 resamples against 0. Target: at most 10% added.
- sweep: `pipeline sweep` of 12 configurations (features.lags 3..6 x retrain_every 21/42/63) on
  the 60 tickers, walk_forward, against one `pipeline run --full` of the default config; both
  from the same warm price cache, each timed from outside. Target: at most 12x one run.
It prints one line per figure; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import (
    DEFAULT_SAMPLE,
    REPO_ROOT,
    build_sp500_universe,
    machine,
    sp500_config,
    timed_run,
)

SWEEP_GRID = ["--grid", "features.lags=[3,4,5,6]", "--grid", "backtest.retrain_every=[21,42,63]"]


def per_ticker_cost(sample: Path) -> None:
    """Per ticker, in this process: the task without intervals, then the interval work on its
    evaluation days, part by part (CPU seconds of this process; the machine is shared)."""
    import numpy as np
    import pandas as pd

    from pipeline.backtest.task import backtest_ticker
    from pipeline.config import load_config
    from pipeline.statistics import bootstrap

    config = load_config("configs/sp500-sample.toml", [f'data.path="{sample.as_posix()}"'])
    settings = load_config(config, ["report.bootstrap_samples=0"]).backtest_settings
    n_samples = config.report.bootstrap_samples
    seconds = dict.fromkeys(("task", "block length", "resampling", "quantiles", "whole"), 0.0)
    paths = sorted(sample.glob("*.csv"))
    for path in paths:
        frame = pd.read_csv(path, parse_dates=["timestamp"]).sort_values("timestamp")
        prices = frame.set_index("timestamp")["adjusted_close"]
        prices = prices.loc[str(config.data.start) : str(config.data.end)]
        started = time.process_time()
        result = backtest_ticker(path.stem, prices, settings)
        seconds["task"] += time.process_time() - started
        if result.daily is None:
            continue
        returns = result.daily["strategy_log_return"].to_numpy()
        correct = result.daily["position"].to_numpy() == np.sign(
            result.daily["asset_log_return"].to_numpy()
        )
        started = time.process_time()
        block = bootstrap.optimal_block_length(returns)
        seconds["block length"] += time.process_time() - started
        series = np.column_stack([returns, returns * returns, correct])
        started = time.process_time()
        sums = bootstrap.block_sums(series, block, n_samples, np.random.default_rng(0))
        seconds["resampling"] += time.process_time() - started
        started = time.process_time()
        sharpes = bootstrap.sharpe_from_sums(sums[:, 0], sums[:, 1], len(returns))
        bootstrap.percentile_interval(sharpes, 0.95)
        bootstrap.percentile_interval(sums[:, 2] / len(returns), 0.95)
        seconds["quantiles"] += time.process_time() - started
        started = time.process_time()
        bootstrap.ticker_intervals(returns, correct, n_samples=n_samples, confidence=0.95,
                                   seed=bootstrap.ticker_seed(0, path.stem))  # fmt: skip
        seconds["whole"] += time.process_time() - started
    count = len(paths)
    parts = ", ".join(
        f"{name} {value / count * 1000:.1f} ms" for name, value in seconds.items() if name != "task"
    )
    print(
        f"intervals per ticker, CPU time in one process, {count} tickers walk_forward "
        f"{config.data.start}..{config.data.end}, {n_samples} resamples: task without intervals "
        f"{seconds['task'] / count * 1000:.0f} ms; {parts} (whole = ticker_intervals); "
        f"statistics / task = {seconds['whole'] / seconds['task'] * 100:.1f}%",
        flush=True,
    )


def whole_run_cost(sample: Path, scratch: Path) -> None:
    build_sp500_universe(sample, scratch)
    config = sp500_config(scratch, "walk_forward")
    subprocess.run([sys.executable, "-m", "pipeline", "download", str(config), "--quiet"],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    figures = {}
    for name, samples in (("off", 0), ("on", 1000)):
        extra = ["--full", "--set", f"report.bootstrap_samples={samples}"]
        figures[name] = timed_run(config, scratch / f"run-{name}", extra)
    off, on = (figures[name]["timings"]["backtest"] for name in ("off", "on"))
    print(
        f"bootstrap, 505 tickers walk_forward via pipeline run --full: backtest stage {off:.1f} s "
        f"without, {on:.1f} s with 1000 resamples (+{(on / off - 1) * 100:.1f}%); wall "
        f"{figures['off']['wall_seconds']:.1f} s / {figures['on']['wall_seconds']:.1f} s",
        flush=True,
    )


def sweep_cost(sample: Path, scratch: Path) -> None:
    config = scratch / "sample.toml"
    text = (REPO_ROOT / "configs" / "sp500-sample.toml").read_text()
    config.write_text(text)
    common = ["--set", f'data.path="{sample.as_posix()}"',
              "--set", f'data.cache_dir="{(scratch / "cache").as_posix()}"',
              "--set", f'report.out_dir="{(scratch / "reports").as_posix()}"']  # fmt: skip
    subprocess.run([sys.executable, "-m", "pipeline", "download", str(config), "--quiet", *common],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "sweep", str(config), "--quiet",
                    *SWEEP_GRID, "--out", str(scratch / "sweep"), *common],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    sweep_seconds = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "--quiet", "--full",
                    "--out", str(scratch / "run"), *common],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    run_seconds = time.perf_counter() - started
    print(
        f"sweep of 12 configurations x 60 tickers walk_forward: {sweep_seconds:.1f} s; one run "
        f"{run_seconds:.1f} s; ratio {sweep_seconds / run_seconds:.2f}x (target <= 12x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--only", choices=["per-ticker", "whole-run", "sweep"], action="append")
    args = parser.parse_args()
    wanted = set(args.only or ["per-ticker", "whole-run", "sweep"])
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-statistics-") as directory:
        scratch = Path(directory)
        if "per-ticker" in wanted:
            per_ticker_cost(args.sample)
        if "whole-run" in wanted:
            whole_run_cost(args.sample, scratch / "sp500")
        if "sweep" in wanted:
            (scratch / "sweep-cost").mkdir()
            sweep_cost(args.sample, scratch / "sweep-cost")


if __name__ == "__main__":
    main()

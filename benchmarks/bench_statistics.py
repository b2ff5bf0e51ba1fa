"""Costs of the statistics: the bootstrap's share of a walk-forward run, and a sweep against
one run.

    python benchmarks/bench_statistics.py                 # both scenarios
    python benchmarks/bench_statistics.py --only bootstrap

- bootstrap: (a) in one process, per ticker of the 60-ticker sample, walk_forward 504/21: the
  time of the whole task with `report.bootstrap_samples` = 1000 against 0; (b) 505 tickers (the
  sample repeated, as bench_scale.py builds them) through `pipeline run --full`, backtest stage
  with 1000 resamples against 0. Target: at most 10% added.
- sweep: `pipeline sweep` of 12 configurations (features.lags 3..6 x retrain_every 21/42/63) on
  the 60 tickers, walk_forward, against one `pipeline run --full` of the default config; both
  from the same warm price cache, each timed from outside. Target: at most 12x one run.
It prints one line per figure; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
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
    import pandas as pd

    from pipeline.backtest.task import backtest_ticker
    from pipeline.config import load_config

    on = load_config("configs/sp500-sample.toml", [f'data.path="{sample.as_posix()}"'])
    off = load_config(on, ["report.bootstrap_samples=0"])
    seconds = {"on": [], "off": []}
    for path in sorted(sample.glob("*.csv")):
        frame = pd.read_csv(path, parse_dates=["timestamp"]).sort_values("timestamp")
        prices = frame.set_index("timestamp")["adjusted_close"]
        prices = prices.loc[str(on.data.start) : str(on.data.end)]
        for name, config in (("off", off), ("on", on)):
            started = time.perf_counter()
            backtest_ticker(path.stem, prices, config.backtest_settings)
            seconds[name].append(time.perf_counter() - started)
    total_on, total_off = sum(seconds["on"]), sum(seconds["off"])
    added = [a - b for a, b in zip(seconds["on"], seconds["off"], strict=True)]
    print(
        f"bootstrap per ticker, in one process, {len(added)} tickers walk_forward: task "
        f"{total_off / len(added) * 1000:.0f} ms without, {total_on / len(added) * 1000:.0f} ms "
        f"with 1000 resamples; median added {statistics.median(added) * 1000:.0f} ms; "
        f"total +{(total_on / total_off - 1) * 100:.1f}%",
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
    parser.add_argument("--only", choices=["bootstrap", "sweep"], action="append")
    args = parser.parse_args()
    wanted = set(args.only or ["bootstrap", "sweep"])
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-statistics-") as directory:
        scratch = Path(directory)
        if "bootstrap" in wanted:
            per_ticker_cost(args.sample)
            whole_run_cost(args.sample, scratch / "sp500")
        if "sweep" in wanted:
            (scratch / "sweep-cost").mkdir()
            sweep_cost(args.sample, scratch / "sweep-cost")


if __name__ == "__main__":
    main()

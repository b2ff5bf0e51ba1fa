"""Nightly runs: what a run as of one more day costs next to the full run it extends.

    python benchmarks/bench_incremental.py                 # 505 tickers x 20 years
    python benchmarks/bench_incremental.py --tickers 100   # a quicker look

The universe is the shared sample's real prices repeated under new names (as bench_scale.py
builds it), walk_forward with monthly refits (504 / 21), from 1999-12-31. Every step is a fresh
`pipeline run` process timed from outside, start to finish, with the peak resident memory of its
whole process tree, in this order on one cache:
1. full: `--full` as of day E (the cache already holds every price: a warm cache);
2. +1 day: as of the next trading day (the download stage refreshes every ticker by one day);
3. +22 days: as of 22 trading days later (every ticker crosses a refit);
4. unchanged: the same day again (nothing new);
5. with --check, `--full` as of the same day: its summary, daily and signals must equal run 3's.
It prints one line per step, the ratios to the full run, the load average around each step
(the machine is shared) and the results store's size on disk. Record them in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_scale import (
    DEFAULT_SAMPLE,
    REPO_ROOT,
    TreeMemory,
    build_sp500_universe,
    machine,
)

START = "1999-12-31"
FIRST_AS_OF = "2019-11-29"
TARGETS = {"+1 day": 0.05, "+22 days": 0.15, "unchanged": 0.03}


def walk_forward_config(scratch: Path) -> Path:
    config = scratch / "nightly.toml"
    config.write_text(
        f"""[data]
source = "csv"
path = "{(scratch / "prices").as_posix()}"
tickers_file = "{(scratch / "tickers.txt").as_posix()}"
start = {START}
end = {FIRST_AS_OF}
cache_dir = "{(scratch / "cache").as_posix()}"

[backtest]
mode = "walk_forward"
train_days = 504
retrain_every = 21

[report]
out_dir = "{(scratch / "reports").as_posix()}"
"""
    )
    return config


def trading_days_after(sample: Path, day: str, count: int) -> list[str]:
    dates = pd.read_csv(sample / "KO.csv", usecols=["timestamp"])["timestamp"]
    later = sorted(d for d in dates if d > day)
    if len(later) < count:
        raise SystemExit(f"the sample has {len(later)} trading days after {day}, need {count}")
    return later[:count]


def timed(config: Path, run_dir: Path, as_of: str, *extra: str) -> dict:
    command = [
        sys.executable, "-m", "pipeline", "run", str(config), "--quiet",
        "--out", str(run_dir), "--as-of", as_of, *extra,
    ]  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    with TreeMemory(child.pid) as memory:
        child.wait()
    wall = time.perf_counter() - started
    if child.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {
        "wall": wall,
        "rss_mb": memory.peak / 2**20,
        "timings": manifest["timings"],
        "reuse": manifest["reuse"],
        "signals": manifest["signals"],
        "counts": manifest["counts"],
        "load": (load_before, os.getloadavg()[0]),
    }


def describe(name: str, figures: dict, full: dict | None) -> str:
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in figures["timings"].items())
    reuse = figures["reuse"]
    ratio = "" if full is None else f" = {figures['wall'] / full['wall']:.1%} of full"
    memory = "" if full is None else f" ({figures['rss_mb'] / full['rss_mb']:.0%} of full)"
    return (
        f"{name}: wall {figures['wall']:.1f} s{ratio} ({timings}); peak RSS "
        f"{figures['rss_mb']:.0f} MB{memory}; reused {reuse['tickers_reused']} tickers, "
        f"{reuse['rows_reused']} rows; computed {reuse['rows_computed']} rows, "
        f"{reuse['refits_computed']} refits; load {figures['load'][0]:.1f} -> "
        f"{figures['load'][1]:.1f}"
    )


def same_results(a: Path, b: Path) -> bool:
    return all(
        pd.read_parquet(a / name).equals(pd.read_parquet(b / name))
        for name in ("summary.parquet", "daily.parquet", "signals.parquet")
    )


def store_bytes(cache: Path) -> int:
    root = cache / "results"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--tickers", type=int, default=505)
    parser.add_argument(
        "--check", action="store_true", help="also run step 5 (a second full run) and compare"
    )
    args = parser.parse_args()
    print(machine(), flush=True)
    days = trading_days_after(args.sample, FIRST_AS_OF, 22)
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as directory:
        scratch = Path(directory)
        build_sp500_universe(args.sample, scratch, args.tickers)
        config = walk_forward_config(scratch)
        # Fill the price cache through the last day used, so that every run is warm.
        fill = [sys.executable, "-m", "pipeline", "download", str(config), "--quiet"]
        subprocess.run([*fill, "--set", f"data.end={days[-1]}"], check=True, cwd=REPO_ROOT,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        steps = [
            ("full", FIRST_AS_OF, ("--full",)),
            ("+1 day", days[0], ()),
            ("+22 days", days[21], ()),
            ("unchanged", days[21], ()),
        ]
        if args.check:
            steps.append(("check (--full)", days[21], ("--full",)))
        figures: dict[str, dict] = {}
        for name, as_of, extra in steps:
            figures[name] = timed(config, scratch / name.split()[0], as_of, *extra)
            print(describe(name, figures[name], figures.get("full")), flush=True)
        full = figures["full"]
        for name, target in TARGETS.items():
            ratio = figures[name]["wall"] / full["wall"]
            verdict = "met" if ratio <= target else "MISSED"
            print(f"{name}: {ratio:.1%} of the full run (target <= {target:.0%}): {verdict}")
        incremental_peak = max(figures[n]["rss_mb"] for n in TARGETS)
        print(
            f"peak RSS: incremental {incremental_peak:.0f} MB vs full {full['rss_mb']:.0f} MB: "
            f"{'met' if incremental_peak <= full['rss_mb'] else 'MISSED'}"
        )
        if args.check:
            identical = same_results(scratch / "+22", scratch / "check")
            print(f"+22 days equals a --full run of the same day: {identical}")
        size = store_bytes(scratch / "cache")
        print(
            f"results store: {size / 2**20:.1f} MiB for {args.tickers} tickers "
            f"({size / args.tickers / 1024:.1f} KiB a ticker)"
        )


if __name__ == "__main__":
    main()

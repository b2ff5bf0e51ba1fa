"""Whole-universe targets of the parallel-execution work, measured through `pipeline run`.

    python benchmarks/bench_scale.py                      # every scenario
    python benchmarks/bench_scale.py --only sp500-in-sample

Scenarios (each a fresh `pipeline run` process, timed from outside, start to finish):
- sp500-in-sample: 505 tickers x 20 years of real daily prices, in_sample, from a warm cache.
  The 60 tickers of the shared sample are repeated under new names (KO, KO1, KO2, ...) through
  symbolic links in a scratch directory; nothing is copied.
- sp500-walk-forward: the same universe, walk_forward with monthly refits (504 / 21).
- synthetic-5000: 5,000 synthetic tickers x 10 years (2,520 days), in_sample, cold cache;
  resident memory is sampled every 0.1 s and summed over the run's whole process tree.
It prints one line per scenario; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "sp500-sample"
SP500_SIZE = 505


def build_sp500_universe(sample: Path, scratch: Path, size: int = SP500_SIZE) -> Path:
    """Link `size` ticker files into scratch/prices, repeating the sample under new names."""
    prices = scratch / "prices"
    prices.mkdir(parents=True, exist_ok=True)
    originals = sorted(sample.glob("*.csv"))
    if not originals:
        raise SystemExit(f"no CSV files in {sample}")
    names = []
    for position in range(size):
        original = originals[position % len(originals)]
        repeat = position // len(originals)
        name = original.stem if repeat == 0 else f"{original.stem}{repeat}"
        link = prices / f"{name}.csv"
        if not link.exists():
            link.symlink_to(original.resolve())
        names.append(name)
    (scratch / "tickers.txt").write_text("\n".join(names) + "\n")
    return scratch


def sp500_config(scratch: Path, mode: str) -> Path:
    config = scratch / f"sp500-{mode}.toml"
    config.write_text(
        f"""[data]
source = "csv"
path = "{(scratch / 'prices').as_posix()}"
tickers_file = "{(scratch / 'tickers.txt').as_posix()}"
start = 1999-12-31
end = 2019-12-31
cache_dir = "{(scratch / 'cache').as_posix()}"

[backtest]
mode = "{mode}"
train_days = 504
retrain_every = 21

[report]
out_dir = "{(scratch / 'reports').as_posix()}"
"""
    )
    return config


def synthetic_config(scratch: Path, n_tickers: int) -> Path:
    config = scratch / "synthetic.toml"
    config.write_text(
        f"""[data]
source = "synthetic"
start = 2012-01-01
end = 2021-12-31
cache_dir = "{(scratch / 'synthetic-cache').as_posix()}"

[data.synthetic]
n_tickers = {n_tickers}
n_days = 2520
seed = 0

[backtest]
mode = "in_sample"

[report]
out_dir = "{(scratch / 'reports').as_posix()}"
"""
    )
    return config


class TreeMemory:
    """Peak of the summed resident memory of a process and all its descendants."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, total)
            time.sleep(self.every)


def timed_run(config: Path, run_dir: Path, extra: list[str] | None = None) -> dict:
    command = [
        sys.executable, "-m", "pipeline", "run", str(config),
        "--quiet", "--out", str(run_dir), *(extra or []),
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    with TreeMemory(child.pid) as memory:
        child.wait()
    wall = time.perf_counter() - started
    if child.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(memory.peak / 2**20),
        "timings": manifest["timings"],
        "execution": manifest["execution"],
        "counts": manifest["counts"],
        "cache": manifest["cache"],
    }


def report(name: str, figures: dict) -> None:
    timings = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in figures["timings"].items())
    execution = figures["execution"]
    print(
        f"{name}: wall {figures['wall_seconds']:.1f} s ({timings}); "
        f"peak RSS of the process tree {figures['peak_rss_mb']} MB; "
        f"{execution['executor']} x{execution['workers']} chunksize {execution['chunksize']}; "
        f"counts {figures['counts']}; cache {figures['cache']}",
        flush=True,
    )


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}; {usable} usable CPUs; {memory:.0f} GiB; Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--synthetic-tickers", type=int, default=5000)
    parser.add_argument(
        "--only",
        choices=["sp500-in-sample", "sp500-walk-forward", "synthetic-5000"],
        action="append",
    )
    args = parser.parse_args()
    wanted = set(args.only or ["sp500-in-sample", "sp500-walk-forward", "synthetic-5000"])
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        scratch = Path(directory)
        if wanted & {"sp500-in-sample", "sp500-walk-forward"}:
            build_sp500_universe(args.sample, scratch)
            in_sample = sp500_config(scratch, "in_sample")
            timed_run(in_sample, scratch / "warm-up")  # fills the cache
            if "sp500-in-sample" in wanted:
                report("sp500-in-sample (warm cache)", timed_run(in_sample, scratch / "in-sample"))
            if "sp500-walk-forward" in wanted:
                walk = sp500_config(scratch, "walk_forward")
                report("sp500-walk-forward (warm cache)", timed_run(walk, scratch / "walk"))
        if "synthetic-5000" in wanted:
            config = synthetic_config(scratch, args.synthetic_tickers)
            report(
                f"synthetic-{args.synthetic_tickers} (cold cache)",
                timed_run(config, scratch / "synthetic"),
            )


if __name__ == "__main__":
    main()

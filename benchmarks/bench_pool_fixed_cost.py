"""The pool's fixed cost, end to end: serial against two pool workers on real prices.

    python benchmarks/bench_pool_fixed_cost.py                    # 16 and 64 tickers, 5 repeats
    python benchmarks/bench_pool_fixed_cost.py --tickers 16 --repeats 3

Each measurement is a fresh `python -m pipeline run` process (plain fit, `model.fast_path =
false`, in_sample, on the shared sample's tickers from a warm cache), timed from outside, start
to finish, with `--full` (nothing reused from an earlier repeat), so the pool pays everything it
costs: starting and warming up its workers, the pilot. Serial and pool runs alternate back to
back within each repeat (the order rotating), and the speed-up is the median of the per-repeat
ratios, which cancels most of the slow drift of a shared machine. The load average is printed
beside the figures.

Then, in this process, the parts of the fixed cost: starting two workers until both are warm,
and the pool's backtest on warm workers against the serial one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path

from bench_scale import build_sp500_universe

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "sp500-sample"
START = "2009-01-02"
END = "2021-04-21"


def overrides(sample: Path, tickers: list[str], cache: Path, executor: str) -> list[str]:
    return [
        "data.source=csv",
        f"data.path={json.dumps(sample.as_posix())}",
        f"data.tickers={json.dumps(tickers)}",
        f"data.start={START}",
        f"data.end={END}",
        f"data.cache_dir={json.dumps(cache.as_posix())}",
        "model.fast_path=false",
        "backtest.mode=in_sample",
        f"execution.executor={executor}",
        "execution.workers=2",
    ]


def timed_run(sample: Path, tickers: list[str], scratch: Path, executor: str) -> dict:
    out = scratch / f"run-{executor}-{time.monotonic_ns()}"
    # --full: every ticker fitted, none taken from the results store of an earlier repeat.
    command = [sys.executable, "-m", "pipeline", "run", "configs/demo.toml", "--quiet", "--full"]
    for item in overrides(sample, tickers, scratch / "cache", executor):
        command += ["--set", item]
    command += ["--out", str(out)]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{executor} run failed ({finished.returncode}): {finished.stderr}")
    manifest = json.loads((out / "manifest.json").read_text())
    timings = manifest["timings"]
    # The pool starts its workers before the download stage, so that they warm up meanwhile:
    # what they cost there counts against the pool too.
    stages = timings["download"] + timings["backtest"]
    return {"wall": seconds, "download_and_backtest": stages, **timings}


def end_to_end(sample: Path, tickers: list[str], repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        timed_run(sample, tickers, scratch, "serial")  # warm the cache, untimed
        runs: dict[str, list[dict]] = {"serial": [], "pool": []}
        for repeat in range(repeats):
            order = ["serial", "pool"] if repeat % 2 == 0 else ["pool", "serial"]
            for executor in order:
                runs[executor].append(timed_run(sample, tickers, scratch, executor))
    def ratio(key: str) -> float:
        pairs = zip(runs["serial"], runs["pool"], strict=True)
        return statistics.median(s[key] / p[key] for s, p in pairs)

    def median(executor: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[executor])

    return {
        "tickers": len(tickers),
        "repeats": repeats,
        "serial_wall": median("serial", "wall"),
        "pool_wall": median("pool", "wall"),
        "speedup_wall": ratio("wall"),
        "serial_backtest": median("serial", "backtest"),
        "pool_backtest": median("pool", "backtest"),
        "speedup_backtest": ratio("backtest"),
        "speedup_download_and_backtest": ratio("download_and_backtest"),
        "serial_download": median("serial", "download"),
        "pool_download": median("pool", "download"),
        "all_speedups_wall": [
            round(s["wall"] / p["wall"], 3)
            for s, p in zip(runs["serial"], runs["pool"], strict=True)
        ],
    }


def fixed_cost_parts(sample: Path, tickers: list[str]) -> dict:
    """In this process: the pool's start until its workers are warm, then warm timings."""
    from pipeline.config import load_config
    from pipeline.execution.executors import collect_results
    from pipeline.execution.pool import CrashProofPool
    from pipeline.runner import run_pipeline

    with tempfile.TemporaryDirectory() as scratch_name:
        cache = Path(scratch_name) / "cache"
        config = load_config("configs/demo.toml", overrides(sample, tickers, cache, "serial"))
        from pipeline.data.cache import PriceCache
        from pipeline.runner import plan_jobs, run_data_stage

        run_pipeline(config, None, show_progress=False, full=True)  # warm cache and process
        downloads = run_data_stage(config, PriceCache(cache), show_progress=False)
        jobs = plan_jobs(config, downloads, True)  # full: fit every ticker
        settings = config.backtest_settings
        started = time.perf_counter()
        pool = CrashProofPool(settings, 2, "auto")
        pool.start()
        spawned = time.perf_counter()
        waiting = list(pool._workers)  # a benchmark may look inside: when is each one warm?
        while waiting:
            for conn in wait([w.conn for w in waiting]):
                assert conn.recv() == "ready"
                worker = next(w for w in waiting if w.conn is conn)
                worker.ready = True
                waiting.remove(worker)
        warm = time.perf_counter()
        with pool:
            clock = time.perf_counter()
            collect_results(jobs, pool.run(jobs))
            pool_warm = time.perf_counter() - clock
        clock = time.perf_counter()
        from pipeline.execution.jobs import run_job

        for job in jobs:
            run_job(job, settings)
        serial = time.perf_counter() - clock
    return {
        "start_fork_server_and_spawn_seconds": round(spawned - started, 3),
        "until_both_workers_warm_seconds": round(warm - started, 3),
        "pool_on_warm_workers_seconds": round(pool_warm, 3),
        "serial_in_process_seconds": round(serial, 3),
        "speedup_warm": round(serial / pool_warm, 3),
        "per_task_seconds": round(serial / len(jobs), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--tickers", type=int, nargs="*", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as universe_name:
        # The sample has 60 tickers; larger universes repeat them under new names (KO1, ...)
        # through symbolic links, as bench_scale.py does.
        universe = build_sp500_universe(args.sample, Path(universe_name), max(args.tickers))
        names = (universe / "tickers.txt").read_text().split()
        prices = universe / "prices"
        for count in args.tickers:
            figures = end_to_end(prices, names[:count], args.repeats)
            figures["load_average"] = [round(v, 2) for v in os.getloadavg()]
            print(json.dumps(figures), flush=True)
        parts = fixed_cost_parts(prices, names[:16])
    parts["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(parts), flush=True)


if __name__ == "__main__":
    main()

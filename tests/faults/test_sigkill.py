"""SIGKILL of `python -m pipeline run` at random points of its download and backtest stages, over
and over on the same cache, then a clean run of the real command.

Each run switches the synthetic seed, a new source identity, so its download rewrites every cache
file: a kill in the download lands among replacements of files a reader relies on. After each
kill the cache holds:

- `.lock`, naming the killed run (the kernel's lock itself died with it);
- `<TICKER>.parquet` files, every one whole and exactly one seed's prices, old or new;
- possibly `.<TICKER>.parquet.<pid>.<hex>.tmp` files of the killed pid, and of no other: the next
  run removes them when it opens the cache, which is asserted after the next kill;
- nothing else (no quarantine: no file was ever torn).

The killed runs are forked from `tests.faults.forkserver`, which has made the imports once: each
is a whole `python -m pipeline run` but for the interpreter's start. Two streams on two caches run
side by side.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.config import SyntheticConfig
from pipeline.data.cache import LOCK_FILE, METADATA_KEY, CacheMeta
from pipeline.data.results_store import ENTRY_KEY, RESULTS_DIR
from pipeline.data.sources.synthetic import SyntheticSource
from tests.conftest import REPO_ROOT
from tests.faults.conftest import BASE_CONFIG, base_settings, set_options, temp_files

KILLS = 22
STREAMS = 2
SEED = 20240611
N_TICKERS = 60
N_DAYS = 300
START, END = date(2020, 1, 1), date(2021, 12, 31)
# A kill comes this many seconds at most after its moment: the download stage starts (about as
# long as each stage here), a cache write is seen under way, or the backtest stage starts.
MOMENT_SECONDS = {"download": 0.6, "write": 0.002, "backtest": 0.6}
DOWNLOAD_DONE = f"download: {N_TICKERS} tickers in"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs os.fork"),
]


def settings_for(cache: Path, seed: int) -> dict[str, object]:
    extra = {
        "data.cache_dir": cache,
        "data.source": "synthetic",
        "data.synthetic.n_tickers": N_TICKERS,
        "data.synthetic.n_days": N_DAYS,
        "data.synthetic.seed": seed,
        "data.start": START,
        "data.end": END,
    }
    return base_settings(cache.parent, extra)


def expected_closes(seed: int) -> dict[str, np.ndarray]:
    source = SyntheticSource(SyntheticConfig(seed=seed, n_days=N_DAYS))
    tickers = [f"SYN{i:03d}" for i in range(N_TICKERS)]
    return {ticker: source.fetch(ticker, START, END)["adj_close"].to_numpy() for ticker in tickers}


EXPECTED = {seed: expected_closes(seed) for seed in (0, 1)}


def temp_files_of(cache: Path, pid: int | None) -> list[Path]:
    """The temporary files in the cache written by process `pid`."""
    return [path for path in temp_files(cache) if path.name.split(".")[-3] == str(pid)]


def stored_results(cache: Path) -> set[Path]:
    """The results store's directories and entries; every entry whole and its own ticker's."""
    root = cache / RESULTS_DIR
    entries = set(root.glob("synthetic/*/*.parquet"))
    for path in entries:
        meta = json.loads(pq.read_table(path).schema.metadata[ENTRY_KEY])
        assert meta["ticker"] == path.stem, path
    directories = {root, root / "synthetic", *root.glob("synthetic/*")} if root.exists() else set()
    return entries | {d for d in directories if d.is_dir()}


def check_cache(cache: Path, killed_pid: int | None) -> int:
    """Assert what the module docstring says may remain; the number of temporary files left."""
    leftovers = temp_files(cache)
    assert leftovers == temp_files_of(cache, killed_pid), "a temporary file outlived a run"
    files = sorted((cache / "synthetic").glob("*.parquet"))
    stored = stored_results(cache)
    allowed = {cache / LOCK_FILE, cache / "synthetic", *files, *leftovers, *stored}
    assert set(cache.rglob("*")) <= allowed, sorted(set(cache.rglob("*")) - allowed)
    for path in files:
        table = pq.read_table(path)
        meta = CacheMeta.from_json(table.schema.metadata[METADATA_KEY])
        seed = int(meta.source_identity.split("seed=")[1].split(",")[0])
        assert (meta.ticker, meta.rows) == (path.stem, table.num_rows)
        closes = table.column("adj_close").to_numpy()
        assert np.array_equal(closes, EXPECTED[seed][path.stem]), f"{path} mixes two seeds"
    return len(leftovers)


def text_of(log: Path) -> str:
    """What a run has logged so far; nothing before the forked child has opened its log."""
    try:
        return log.read_text()
    except FileNotFoundError:
        return ""


def holds_lock(cache: Path, pid: int) -> bool:
    try:
        return json.loads((cache / LOCK_FILE).read_text())["pid"] == pid
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False


class ForkServer:
    """The test's side of `tests.faults.forkserver`."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "tests.faults.forkserver"]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.child: int | None = None

    def _ask(self, line: str) -> dict[str, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, "the fork server died"
        return json.loads(answer)

    def start(self, argv: list[str], log: Path) -> int:
        self.child = self._ask(json.dumps({"argv": argv, "log": str(log)}))["pid"]
        return self.child

    def reap(self) -> int:
        """The child's exit code (negative: the signal that ended it), once it has ended."""
        self.child = None
        return self._ask("reap")["returncode"]

    def close(self) -> None:
        if self.child is not None:  # a test failed with a run under way: end it
            os.kill(self.child, signal.SIGKILL)
            self.reap()
        self.process.communicate(timeout=30)  # end of input stops the server


@contextmanager
def fork_server() -> Iterator[ForkServer]:
    server = ForkServer()
    try:
        yield server
    finally:
        try:
            server.close()
        finally:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


@dataclass
class Stream:
    """Kills runs on one cache; records in which stage each kill landed."""

    root: Path
    rng: random.Random
    stages: list[str] = field(default_factory=list)
    temp_files_left: int = 0

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def argv(self, run: int) -> list[str]:
        settings = settings_for(self.cache, run % 2)
        return ["run", str(BASE_CONFIG), *set_options(settings), "--out", str(self.root / f"{run}")]

    def kill_once(self, server: ForkServer, run: int) -> None:
        log = self.root / f"{run}.log"
        moment = self.rng.choice(list(MOMENT_SECONDS))
        delay = self.rng.uniform(0.0, MOMENT_SECONDS[moment])
        pid = server.start(self.argv(run), log)
        reached: dict[str, Callable[[], bool]] = {
            "download": lambda: holds_lock(self.cache, pid),
            # A write may be over before it is seen; the end of the download stops the wait.
            "write": lambda: bool(temp_files_of(self.cache, pid)) or DOWNLOAD_DONE in text_of(log),
            "backtest": lambda: DOWNLOAD_DONE in text_of(log),
        }
        deadline = time.monotonic() + 60
        while not reached[moment]():
            assert time.monotonic() < deadline, f"run {run} never reached its {moment}"
            time.sleep(0.001)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)  # unreaped until `reap`, the pid is still this run's
        assert server.reap() == -signal.SIGKILL, text_of(log)
        self.stages.append("backtest" if DOWNLOAD_DONE in text_of(log) else "download")
        self.temp_files_left += check_cache(self.cache, pid)

    def finish(self, run: int) -> None:
        """The real command, after planting a temporary file of a writer that is gone for sure."""
        dead = subprocess.Popen(["true"])
        dead.wait()
        planted = self.cache / "synthetic" / f".SYN000.parquet.{dead.pid}.0123456789ab.tmp"
        planted.write_bytes(b"PAR1 cut short")
        command = [sys.executable, "-m", "pipeline", *self.argv(run)]
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert check_cache(self.cache, None) == 0
        summary = pd.read_csv(self.root / f"{run}" / "summary.csv")
        assert len(summary) == N_TICKERS and "failed" not in set(summary["status"])


def drive(stream: Stream) -> None:
    runs = KILLS // STREAMS
    with fork_server() as server:
        for run in range(runs):
            stream.kill_once(server, run)
    stream.finish(runs)


def test_runs_killed_at_random_points_never_corrupt_the_cache(tmp_path: Path) -> None:
    streams = [Stream(tmp_path / f"stream-{i}", random.Random(SEED + i)) for i in range(STREAMS)]
    for stream in streams:
        stream.root.mkdir()
    with ThreadPoolExecutor(STREAMS) as pool:
        for done in [pool.submit(drive, stream) for stream in streams]:
            done.result()

    stages = [stage for stream in streams for stage in stream.stages]
    left = sum(stream.temp_files_left for stream in streams)
    assert len(stages) >= 20
    assert stages.count("download") >= 3 and stages.count("backtest") >= 3, (stages, left)

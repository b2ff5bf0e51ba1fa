"""Ctrl-C (SIGINT) of `python -m pipeline run` during the download stage: exit 130, no temporary
file left in the cache even before another run opens it, every cached file whole, the cache lock
free for the next run at once, and no process of the run left behind."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from pipeline.data.cache import PriceCache
from tests.conftest import REPO_ROOT
from tests.faults.conftest import base_settings, invoke, pipeline_command, temp_files

N_TICKERS = 400
STARTED = 8  # cache files written before the signal: the download is well under way


def settings_for(tmp_path: Path, executor: str) -> dict[str, object]:
    extra = {
        "data.source": "synthetic",
        "data.synthetic.n_tickers": N_TICKERS,
        "data.synthetic.n_days": 300,
        "data.start": "2020-01-01",
        "data.end": "2021-12-31",
        "execution.executor": executor,
        "execution.workers": 2,
    }
    return base_settings(tmp_path, extra)


def wait_for_files(directory: Path, count: int, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(list(directory.glob("*.parquet"))) < count:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.005)


def alive(processes: list[psutil.Process]) -> list[int]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return living


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "pool"])
def test_ctrl_c_in_the_download_exits_130_and_leaves_the_cache_clean(
    tmp_path: Path, executor: str
) -> None:
    settings = settings_for(tmp_path, executor)
    cache = tmp_path / "cache"
    command = pipeline_command(settings, "--quiet", "--out", str(tmp_path / "run"))
    child = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_files(cache / "synthetic", STARTED, child)
        started = psutil.Process(child.pid).children(recursive=True)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "pipeline: interrupted", stderr
    assert "Traceback" not in stderr
    # Writes under way when the signal came were finished, not cut: nothing to clean up.
    assert temp_files(cache) == []
    written = sorted((cache / "synthetic").glob("*.parquet"))
    assert STARTED <= len(written) < N_TICKERS, "the signal came during the download"
    reader = PriceCache(cache)
    assert all(reader.read("synthetic", path.stem) is not None for path in written)
    assert not (cache / "synthetic" / "quarantine").exists()
    assert not (tmp_path / "run" / "manifest.json").exists()
    deadline = time.monotonic() + 10
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(started), "a process of the run outlived it"

    with reader.lock():  # free at once: a second run right after would get it
        pass
    again = invoke("download", {**settings, "data.tickers": ["SYN000", "SYN001"]}, "--quiet")
    assert again.exit_code == 0, again.output

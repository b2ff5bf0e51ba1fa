"""A call made in a forked child: its value comes back, a failed child costs nothing but the
time to make the call here, and no child outlives its block."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sys
import threading
import time

import psutil
import pytest

from pipeline.execution import forked
from pipeline.execution.forked import in_forked_child

PARENT = os.getpid()


def only_in_child(failure: str) -> int:
    """This process's pid; in a child, `failure` first."""
    if os.getpid() != PARENT:
        if failure == "raises":
            raise ValueError("boom in the child")
        if failure == "exits":
            os._exit(3)
        if failure == "is killed":
            os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def children() -> set[int]:
    """This process's child processes still running."""
    running = set()
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                running.add(child.pid)
    return running


@pytest.fixture
def earlier() -> set[int]:
    """Processes earlier tests left running (a fork server, Dask's): not these tests'."""
    return children()


@pytest.fixture(autouse=True)
def forkable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier tests (Dask's) may leave idle threads in this process: forking it is safe for
    these tests all the same. The test of threads sees the real check."""
    if request.node.name != "test_with_another_thread_running_nothing_forks":
        monkeypatch.setattr(forked, "fork_is_safe", lambda: True)


def test_the_call_is_made_in_a_child_and_its_value_comes_back_whole(earlier: set[int]) -> None:
    payload = os.urandom(5 * 2**20)  # more than a pipe holds at once
    with in_forked_child(lambda: (os.getpid(), payload)) as call:
        assert call.forked
        pid, value = call.result()
    assert pid != PARENT and value == payload
    assert children() == earlier


@pytest.mark.parametrize("failure", ["raises", "exits", "is killed"])
def test_a_failed_child_has_the_call_made_here(failure: str, earlier: set[int]) -> None:
    with in_forked_child(lambda: only_in_child(failure)) as call:
        assert call.forked
        assert call.result() == PARENT
    assert children() == earlier


def test_an_error_of_the_call_itself_is_raised_here() -> None:
    def broken() -> int:
        raise ZeroDivisionError("the call's own bug")

    with in_forked_child(broken) as call, pytest.raises(ZeroDivisionError, match="own bug"):
        call.result()


def test_with_another_thread_running_nothing_forks() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with in_forked_child(os.getpid) as call:
            assert not call.forked
            assert call.result() == PARENT
    finally:
        stop.set()
        thread.join()


def test_the_child_never_outlives_its_block(earlier: set[int]) -> None:
    def slow() -> int:
        time.sleep(0 if os.getpid() == PARENT else 60)
        return os.getpid()

    with pytest.raises(KeyboardInterrupt), in_forked_child(slow) as call:
        assert call.forked and len(children() - earlier) == 1
        raise KeyboardInterrupt  # Ctrl-C while the child draws
    assert children() == earlier


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_the_heap_s_free_pages_go_back_to_the_system_before_a_fork() -> None:
    """Freed blocks below one still in use stay resident until trimmed; a fork would map them
    again in the child."""
    process = psutil.Process()
    blocks = [bytearray(48 * 1024) for _ in range(2000)]  # under glibc's mmap threshold: heap
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    pinned = blocks[-1]  # keeps the heap's top in use, so free() cannot shrink it
    del blocks
    held = process.memory_info().rss
    forked.release_free_heap()
    released = held - process.memory_info().rss
    assert released > 50 * 2**20, f"only {released / 2**20:.0f} MB went back"
    assert pinned[0] == ord("x")


def test_without_glibc_releasing_the_heap_does_nothing(monkeypatch) -> None:
    def no_libc(name):
        raise OSError("no such library")

    monkeypatch.setattr(forked.ctypes, "CDLL", no_libc)
    forked.release_free_heap()  # returns, raises nothing

"""A call made in a forked child process while this one goes on: the report's charts.

Why: after the last ticker a run's remaining work (portfolio statistics, tables, manifest,
pages) ran on one core while the other idled, and the charts were half of it (matplotlib: half
a second to a second for 500 tickers). They need only what the run already holds, so a fork of
this process starts with all of it in memory and matplotlib imported, and only the result
(the PNG bytes) comes back through a pipe. multiprocessing's pools would pickle the inputs
(hundreds of megabytes of daily rows) and keep workers; this is one fork and one pipe.

The fork is made only on Linux and while this process has a single thread (a fork inherits no
lock that another thread held). Otherwise, and whenever the child fails in any way (raises,
dies, cannot start), the call is made here instead: the result is the same either way.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

from pipeline.execution.worker import become_worker

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ForkedCall(Generic[T]):
    """`call()` running in a child process; `result` waits for its value."""

    def __init__(self, call: Callable[[], T], name: str = "forked call") -> None:
        self._call = call
        self._name = name
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def forked(self) -> bool:
        """Whether a child process is making the call."""
        return self._process is not None

    def start(self) -> None:
        if not fork_is_safe():
            return
        release_free_heap()
        context = mp.get_context("fork")
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(target=_call_and_send, args=(child_end, self._call), daemon=True)
        try:
            process.start()
        except OSError as exc:
            logger.info("%s made in this process: cannot fork (%s)", self._name, exc)
            parent_end.close()
            return
        finally:
            child_end.close()
        self._process, self._conn = process, parent_end

    def result(self) -> T:
        """The child's value; the call made here when there is no child or it failed."""
        sent: tuple[T] | None = None
        if self._conn is not None:
            with suppress(EOFError, OSError):
                sent = self._conn.recv()
            self.close()
            if sent is None:
                logger.info("%s made in this process: the child process failed", self._name)
        return sent[0] if sent is not None else self._call()

    def close(self) -> None:
        """Stop the child if it still runs; safe twice."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process = None


@contextmanager
def in_forked_child(call: Callable[[], T], name: str = "forked call") -> Iterator[ForkedCall[T]]:
    """`call` started in a child process for the block; the child never outlives the block."""
    pending = ForkedCall(call, name)
    pending.start()
    try:
        yield pending
    finally:
        pending.close()


def release_free_heap() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), if there is glibc.

    Why before a fork: the child maps every resident page of this process, and the memory a run
    freed (each ticker's unpickled result, once its rows are in the daily frame) stays resident
    in glibc's heap until trimmed. At 505 tickers the run's process held about 80 MB of such
    pages at the fork (345 -> 267 MB), and the report stage's peak over both processes fell from
    728 to 576 MB (RSS summed; PSS 516 -> 401 MB). Python has no call for it; ctypes reaches
    it, in under 10 ms here.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return
    trim(ctypes.c_size_t(0))


def fork_is_safe() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _call_and_send(conn: Connection, call: Callable[[], object]) -> None:
    become_worker()  # Ctrl-C is the parent's to handle, and the child dies with the parent
    try:
        value = (call(),)
    except Exception:  # the parent makes the call again and reports what goes wrong
        value = None
    conn.send(value)
    conn.close()

"""What every worker process has in common, whichever executor started it.

- `run_guarded`: the task over one job, with the job's own settings when it carries them; an
  exception fails that ticker, never the worker or the rest of its chunk.
- `worker_context`: the start method (a fork server where there is one) and what it preloads.
- `become_worker`: what a worker does first: leave Ctrl-C to its parent, and die with it.
- `keep_main_out_of_workers`: a script's `__main__` is never re-run by a worker.

Why a parent-death signal: a parent killed without a chance to clean up (SIGKILL, the OOM
killer) cannot stop its workers, and a worker busy in a fit only notices a closed pipe when it
next talks to its parent. On Linux the kernel sends the worker SIGKILL the moment its parent
dies (prctl(PR_SET_PDEATHSIG), through ctypes: no library offers it); elsewhere a worker checks
its parent between tasks (`parent_is_gone`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import importlib.machinery
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.context import BaseContext

from pipeline.backtest.result import TickerResult
from pipeline.config import BacktestSettings
from pipeline.execution.jobs import TickerJob

Task = Callable[[TickerJob, BacktestSettings], TickerResult]

# The module a fork server preloads: it imports the backtest code (scikit-learn) once, and makes
# the fork server itself die with the process that started it.
FORKSERVER_PRELOAD = "pipeline.execution.forkserver_setup"

_PR_SET_PDEATHSIG = 1


def run_guarded(task: Task, job: TickerJob, settings: BacktestSettings) -> TickerResult:
    """`task` on `job` with the job's own settings if it has them, else `settings`."""
    own = job.settings if job.settings is not None else settings
    try:
        return task(job, own)
    except Exception as exc:  # a bug in one ticker's task must not take the worker down
        return TickerResult(job.ticker, "failed", f"{type(exc).__name__}: {exc}")


def start_method() -> str:
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def worker_context(method: str | None = None) -> BaseContext:
    """The start method every executor's processes use.

    Why a fork server: the download stage ran threads in this process, and forking a process
    that has threads can deadlock a child on a lock another thread held at the fork. The fork
    server is a fresh single-threaded process that has imported the backtest code once, so
    workers are cheap forks of it that start with scikit-learn loaded.
    """
    context = mp.get_context(method or start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([FORKSERVER_PRELOAD])
    return context


def direct_fork_context() -> BaseContext | None:
    """Forking this very process, when that is safe: on Linux, while it has one thread only.

    A fork of a single-threaded process cannot inherit a lock some other thread held, and it
    starts with everything this process imported (scikit-learn included): no fork server to
    start, no imports to wait for. The pool starts its first workers this way before the data
    stage starts threads; later replacements go through the fork server.
    """
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return None
    if mp.parent_process() is not None:  # a worker of someone else's pool: keep it simple
        return None
    return mp.get_context("fork")


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_is_gone(parent_pid: int) -> bool:
    """True once the process that started this one has died (this one was re-parented)."""
    return os.getppid() != parent_pid


def become_worker() -> int:
    """A worker's first steps; returns its parent's pid, for `parent_is_gone`.

    Ctrl-C reaches the whole process group and SIGTERM may too: the parent alone decides how to
    stop (it kills its workers), so a worker ignores SIGINT and dies quietly on SIGTERM.
    """
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    die_with_parent()
    if parent_is_gone(parent):  # the parent died before the signal was armed
        os._exit(1)
    _release_fork_server()
    return parent


def _release_fork_server() -> None:
    """Close this worker's copy of the fork server's "alive" pipe.

    The fork server stops when every holder of that pipe is gone, and it hands a copy to each
    process it forks. A worker that keeps it keeps the fork server alive after the main process
    died; without it, the fork server stops with the main process and the parent-death signal
    then stops the workers.
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if mp.current_process().name == "MainProcess" or server.get_inherited_fds() is None:
        return
    fd = server._forkserver_alive_fd
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def keep_main_out_of_workers() -> None:
    """Make sure no worker re-runs the caller's main module.

    multiprocessing re-imports a script's `__main__` in every child it starts (by its path; a
    module run with -m, by its name), so a script that calls `run_backtest` without an
    `if __name__ == "__main__":` guard would start the run again in each worker, and a script
    read from stdin cannot be re-imported at all. Workers need nothing from `__main__` (the
    task is `run_job`), so the main module is given a spec named `__main__`, which children
    skip. A notebook's main module has no file and is left as it is.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        return
    if getattr(main, "__file__", None) is None:
        return
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

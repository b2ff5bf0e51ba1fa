"""Leaving the process once a command is done, without the interpreter's teardown.

Why by hand: after the last file of a run is written, Python's finalization frees every object
the run still holds and unloads each imported module (pandas, pyarrow, matplotlib, scikit-learn),
0.3-0.5 s of one core that nobody waits for but the shell (benchmarks/RESULTS.md): 3-7% of a
nightly run. What finalization does that anyone can see is kept, in its order: waiting for
threads that are not daemons, the exit handlers (`atexit`: logging's flush and close,
multiprocessing's clean-up of its children, whatever a library or a caller registered), and
flushing standard output and error. Then `os._exit` with the command's code.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextlib import suppress
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Exit with `code` as a normal exit would, minus freeing memory and unloading modules.

    Where the exit handlers cannot be run from here (an interpreter other than CPython), the
    usual `sys.exit`.
    """
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    _join_other_threads()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # a closed or broken pipe: nothing more can be said there
            stream.flush()
    os._exit(code)


def _join_other_threads() -> None:
    """Wait for the threads that are not daemons, as the interpreter does before exiting."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread.is_alive():
            thread.join()

"""Leaving the process once a command is done, without the interpreter's teardown.

Why by hand: after the last file of a run is written, Python's finalization frees every object
the run still holds and unloads each imported module (pandas, pyarrow, matplotlib, scikit-learn),
0.3-0.5 s of one core that nobody waits for but the shell (benchmarks/RESULTS.md): 3-7% of a
nightly run. What finalization does that anyone can see is kept, in its order: the threads' shutdown
(executors told to stop, then every thread that is not a daemon waited for), the exit handlers
(`atexit`: logging's flush and close, multiprocessing's clean-up of its children, whatever a
library or a caller registered), and flushing standard output and error. Then `os._exit` with
the command's code. The first two are the very functions CPython's finalization calls
(`threading._shutdown`, `atexit._run_exitfuncs`); where either is missing, the usual exit.
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
    shut_threads_down = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if shut_threads_down is None or run_exit_handlers is None or not in_main_thread:
        sys.exit(code)
    shut_threads_down()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # a closed or broken pipe: nothing more can be said there
            stream.flush()
    os._exit(code)

"""SIGTERM and SIGHUP handled as Ctrl-C is.

systemd, `timeout`, schedulers and container runtimes stop a process with SIGTERM, and a closed
terminal sends SIGHUP. By default either ends the process at once: no `finally` block runs, so
the workers keep computing, the history line is never written and the cache lock is released
only by the kernel. `terminate_as_interrupt` turns them into `Interrupted`, a KeyboardInterrupt,
so every clean-up path that Ctrl-C takes runs for them too, and the command line exits with
128 + the signal's number, as a shell reports a process the signal ended.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_number(interrupt: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: Ctrl-C's SIGINT unless it says otherwise."""
    return getattr(interrupt, "signum", signal.SIGINT)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGHUP raises `Interrupted` in the main thread;
    later ones are ignored while the clean-up runs. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)

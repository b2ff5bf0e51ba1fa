"""Leaving without the interpreter's teardown: what a normal exit does that anyone can see still
happens (threads finish, exit handlers run, output is flushed, the code is the command's)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Buffered output, as a scheduled job's is (PYTHONUNBUFFERED would hide a missing flush).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )


def test_threads_finish_exit_handlers_run_and_output_is_flushed_before_the_exit(tmp_path):
    done = run_python(
        """
        import atexit, threading, time
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path
        from pipeline.exiting import exit_now

        def late_write():
            time.sleep(0.3)
            Path("thread.txt").write_text("written")

        threading.Thread(target=late_write).start()
        idle = ThreadPoolExecutor(2)  # never shut down: the threads' shutdown stops it
        idle.submit(time.sleep, 0.1)
        atexit.register(lambda: print("handler ran after", Path("thread.txt").read_text()))
        print("x" * 1_000_000, end="")  # more than a pipe's buffer, still in sys.stdout's
        exit_now(3)
        """,
        tmp_path,
    )

    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("x" * 1_000_000)
    assert done.stdout.endswith("handler ran after written\n")
    assert (tmp_path / "thread.txt").read_text() == "written"


def test_the_teardown_is_skipped(tmp_path):
    """Module globals are not freed one by one: a finalizer of a global never runs (with
    sys.exit it would, at the teardown)."""
    done = run_python(
        """
        import sys
        from pipeline.exiting import exit_now

        class Noisy:
            def __del__(self):
                sys.stderr.write("torn down\\n")

        kept = Noisy()
        exit_now(0)
        """,
        tmp_path,
    )
    normal = run_python(
        """
        import sys

        class Noisy:
            def __del__(self):
                sys.stderr.write("torn down\\n")

        kept = Noisy()
        sys.exit(0)
        """,
        tmp_path,
    )

    assert done.returncode == 0 and "torn down" not in done.stderr
    assert normal.returncode == 0 and "torn down" in normal.stderr  # the check can fail


def pipeline(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_command_keeps_its_exit_codes_and_messages(tmp_path):
    helped = pipeline("--help")
    misused = pipeline("run", "--no-such-option")
    missing = pipeline("run", str(tmp_path / "absent.toml"))

    assert helped.returncode == 0 and "Usage" in helped.stdout and "run" in helped.stdout
    assert misused.returncode == 2 and "--no-such-option" in misused.stderr
    assert missing.returncode == 2 and "absent.toml" in missing.stderr


def test_an_exit_with_a_message_still_prints_it(tmp_path):
    """`main` leaves a SystemExit whose code is text to Python: message on stderr, code 1."""
    done = run_python(
        """
        import pipeline.cli as cli

        def app():
            raise SystemExit("pipeline: a message")

        cli.app = app
        cli.main()
        """,
        tmp_path,
    )

    assert done.returncode == 1
    assert done.stderr.strip() == "pipeline: a message"

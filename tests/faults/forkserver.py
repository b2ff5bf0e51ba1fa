"""A fork server of `python -m pipeline ...` runs, for tests that start dozens of runs to kill them.

    python -m tests.faults.forkserver         # in the repository root; then, on stdin:
    {"argv": ["run", "configs/demo.toml", ...], "log": "/tmp/x/run.log"}   -> {"pid": 1234}
    reap                                                                    -> {"returncode": -9}

Each request forks a child that runs `python -m pipeline <argv>` as the interpreter would (the
package's `__main__` through runpy), with stdout and stderr in `log`. The server reaps the child
only when told to, so its pid cannot be reused while the test may still signal it. It saves each
run the interpreter's start and its imports (seconds on a busy machine), which are not under test;
the imports are made once here, before any thread exists.
"""

from __future__ import annotations

import json
import os
import runpy
import sys

import pipeline.cli
import pipeline.report.build
import pipeline.runner
from pipeline.config import DEFAULT_CONFIG_PATH, load_config

PRELOADED = (pipeline.cli, pipeline.runner, pipeline.report.build)  # imported once, for all


def run_child(argv: list[str], log: str) -> None:
    """In the forked child: run the command, then leave without the server's exit handlers."""
    code = 1
    try:
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        sys.argv = ["pipeline", *argv]
        runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    child = None
    for line in sys.stdin:
        if line.strip() == "reap":
            assert child is not None, "reap before any run"
            _, status = os.waitpid(child, 0)
            child = None
            print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
            continue
        request = json.loads(line)
        child = os.fork()
        if child == 0:
            run_child(request["argv"], request["log"])
        print(json.dumps({"pid": child}), flush=True)


if __name__ == "__main__":
    load_config(DEFAULT_CONFIG_PATH)  # the model check imports scikit-learn
    serve()

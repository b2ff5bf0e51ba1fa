"""The notebook API from a plain script with no `if __name__ == "__main__":` guard, from a script
piped into `python -`, and from an interactive session (a notebook's main module has no file):
workers never re-run the caller's main module, so the run happens once and every ticker is ok.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

N_TICKERS = 6


def the_readme_lines(tmp_path: Path, executor: str) -> str:
    """The README's two lines, made small; then what the run gave, and one marker line."""
    overrides = [
        f"data.cache_dir={json.dumps((tmp_path / 'cache').as_posix())}",
        f"data.synthetic.n_tickers={N_TICKERS}",
        "data.synthetic.n_days=400",
        "backtest.train_days=150",
        f"execution.executor={executor}",
        "execution.workers=2",
    ]
    return "\n".join(
        [
            "from pipeline import run_backtest",
            f"result = run_backtest('configs/demo.toml', {overrides!r})",
            "print('RESULT', list(result.summary['status']), flush=True)",
        ]
    )


def run_as(mode: str, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if mode == "script":
        script = tmp_path / "analysis.py"
        script.write_text(code + "\n")
        command, stdin = [sys.executable, str(script)], None
    elif mode == "stdin":
        command, stdin = [sys.executable, "-"], code + "\n"
    else:  # an interactive session: the code runs in a main module that has no file
        command, stdin = [sys.executable, "-c", code], None
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("executor", ["pool", "dask"])
@pytest.mark.parametrize("mode", ["script", "stdin", "interactive"])
def test_the_api_runs_once_from_any_main_module(tmp_path: Path, mode: str, executor: str) -> None:
    finished = run_as(mode, the_readme_lines(tmp_path, executor), tmp_path)
    assert finished.returncode == 0, finished.stderr
    results = [line for line in finished.stdout.splitlines() if line.startswith("RESULT")]
    assert len(results) == 1, finished.stdout  # a worker that re-ran the script prints again
    statuses = ast.literal_eval(results[0].removeprefix("RESULT "))
    assert len(statuses) == N_TICKERS and "failed" not in statuses, finished.stderr
    assert "ok" in statuses
    assert "CacheLockedError" not in finished.stderr, finished.stderr
    assert "Traceback" not in finished.stderr, finished.stderr

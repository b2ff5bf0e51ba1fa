"""Helpers of the fault-injection tests: small price files, runs configured by `--set`
overrides on the demo config, a scripted fake of yfinance, and what a cache directory holds."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.runner import RunResult, run_backtest
from pipeline.safe_io import TEMP_SUFFIX
from tests.conftest import REPO_ROOT

BASE_CONFIG = REPO_ROOT / "configs" / "demo.toml"
START, END = date(2019, 1, 2), date(2019, 12, 31)
DAYS = pd.bdate_range(START, END)
# A scripted answer: the request hangs until the test releases it.
HANG = object()


def random_walk(seed: int, n: int = len(DAYS), start: float = 50.0) -> np.ndarray:
    """A price path with 1% daily moves: no jump anywhere near the suspicious-jump threshold."""
    steps = np.random.default_rng(seed).normal(0.0, 0.01, n)
    return start * np.exp(np.cumsum(steps))


def write_prices(
    directory: Path,
    ticker: str,
    prices: Sequence[object] | None = None,
    dates: Sequence[object] | None = None,
    seed: int = 0,
) -> Path:
    """`<directory>/<ticker>.csv` with columns date, adj_close, each value written as given."""
    dates = list(DAYS.strftime("%Y-%m-%d")) if dates is None else list(dates)
    prices = list(random_walk(seed, len(dates))) if prices is None else list(prices)
    rows = (f"{day},{price}" for day, price in zip(dates, prices, strict=True))
    lines = ["date,adj_close", *rows]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{ticker}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_value(value: object) -> str:
    """`value` as a TOML literal for `--set`; a JSON string is a valid TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def as_overrides(settings: Mapping[str, object]) -> list[str]:
    return [f"{key}={toml_value(value)}" for key, value in settings.items()]


def base_settings(tmp_path: Path, extra: Mapping[str, object] = {}) -> dict[str, object]:
    """The demo config made small: cache and reports under tmp_path, in-sample, serial."""
    return {
        "data.cache_dir": tmp_path / "cache",
        "report.out_dir": tmp_path / "reports",
        "data.start": START,
        "data.end": END,
        "backtest.mode": "in_sample",
        "execution.executor": "serial",
        **extra,
    }


def csv_settings(tmp_path: Path, tickers: Sequence[str]) -> dict[str, object]:
    """A csv universe read from tmp_path/prices."""
    extra = {"data.source": "csv", "data.path": tmp_path / "prices", "data.tickers": tickers}
    return base_settings(tmp_path, extra)


def run_in_process(settings: Mapping[str, object], run_dir: Path | None = None) -> RunResult:
    return run_backtest(BASE_CONFIG, as_overrides(settings), run_dir=run_dir)


def set_options(settings: Mapping[str, object]) -> list[str]:
    return [part for override in as_overrides(settings) for part in ("--set", override)]


def invoke(command: str, settings: Mapping[str, object], *extra: str) -> Result:
    """`pipeline COMMAND demo.toml --set ...` in this process, as a user types it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return CliRunner().invoke(app, [command, str(BASE_CONFIG), *set_options(settings), *extra])
    finally:
        # The CLI logs to CliRunner's stream, closed once the command returns.
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
        root.setLevel(level)


def pipeline_command(settings: Mapping[str, object], *extra: str) -> list[str]:
    """`python -m pipeline run ...` for a subprocess started in the repository root."""
    command = [sys.executable, "-m", "pipeline", "run", str(BASE_CONFIG)]
    return [*command, *set_options(settings), *extra]


def temp_files(root: Path) -> list[Path]:
    """Every temporary file of an atomic write under `root`."""
    return sorted(root.rglob(f"*{TEMP_SUFFIX}")) if root.exists() else []


def read_summary(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "summary.parquet")


def manifest_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


def yahoo_frame(seed: int = 0) -> pd.DataFrame:
    """One ticker's daily history for the test year, shaped as `Ticker.history` returns it."""
    adjusted = random_walk(seed)
    index = pd.DatetimeIndex(DAYS, name="Date").tz_localize("America/New_York")
    return pd.DataFrame(
        {
            "Open": adjusted,
            "High": adjusted * 1.01,
            "Low": adjusted * 0.99,
            "Close": adjusted * 1.02,
            "Adj Close": adjusted,
            "Volume": np.full(len(index), 1000, dtype="int64"),
        },
        index=index,
    )


class ScriptedYahoo:
    """`yfinance.Ticker(symbol).history(...)` answered from a per-symbol script.

    Each call takes the next answer and the last one repeats: a frame, an exception to raise,
    or HANG, which blocks until `release()` and then raises TimeoutError. As yfinance does, an
    exception other than a rate limit becomes an empty frame unless the caller switched
    `hide_exceptions` off. `calls` records (symbol, monotonic time) of every request.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[object]] = {}
        self.calls: list[tuple[str, float]] = []
        self.in_flight = 0
        self._released = threading.Event()
        self._lock = threading.Lock()

    def script(self, symbol: str, *answers: object) -> None:
        self.scripts[symbol] = list(answers)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(yfinance, "Ticker", self.ticker)
        monkeypatch.setitem(yfinance.config.debug.data, "hide_exceptions", True)

    def ticker(self, symbol: str) -> _ScriptedTicker:
        return _ScriptedTicker(self, symbol)

    def calls_of(self, symbol: str) -> int:
        return sum(1 for called, _ in self.calls if called == symbol)

    def release(self, timeout: float = 5.0) -> None:
        """Let hung requests return, and wait until they have."""
        self._released.set()
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def hang(self) -> TimeoutError:
        with self._lock:
            self.in_flight += 1
        self._released.wait(30)
        with self._lock:
            self.in_flight -= 1
        return TimeoutError("the hung request was released")

    def next_answer(self, symbol: str) -> object:
        with self._lock:
            self.calls.append((symbol, time.monotonic()))
            script = self.scripts.get(symbol) or [yfinance.exceptions.YFTzMissingError(symbol)]
            return script.pop(0) if len(script) > 1 else script[0]


class _ScriptedTicker:
    def __init__(self, fake: ScriptedYahoo, symbol: str) -> None:
        self.fake = fake
        self.symbol = symbol

    def history(self, **kwargs: Any) -> pd.DataFrame:
        answer = self.fake.next_answer(self.symbol)
        if answer is HANG:
            answer = self.fake.hang()
        if isinstance(answer, pd.DataFrame):
            return answer.copy()
        assert isinstance(answer, BaseException), answer
        rate_limited = isinstance(answer, yfinance.exceptions.YFRateLimitError)
        if rate_limited or not yfinance.config.debug.hide_exceptions:
            raise answer
        return pd.DataFrame()


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedYahoo]:
    fake = ScriptedYahoo()
    fake.install(monkeypatch)
    yield fake
    fake.release()

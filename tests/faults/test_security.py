"""Names from outside never become paths: a ticker that could leave a directory is refused with
one line and exit 2 before anything is written, a provider's reply cannot name a file, and a csv
directory's symlinks are the user's own business. Files are created with the user's umask."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipeline.data.cache import CacheMeta, PriceCache
from tests.conftest import REPO_ROOT
from tests.faults.conftest import (
    END,
    START,
    ScriptedYahoo,
    base_settings,
    csv_settings,
    invoke,
    pipeline_command,
    run_in_process,
    write_prices,
    yahoo_frame,
)

BAD_SYMBOLS = [
    "../../etc/passwd",
    "..",
    ".",
    "a/b",
    "/etc/passwd",
    "..\\..\\windows",
    "KO/../../x",
    "A\x00B",
    "A\nB",
    "",
]


@pytest.mark.parametrize("command", ["run", "download"])
@pytest.mark.parametrize("symbol", BAD_SYMBOLS, ids=repr)
def test_a_ticker_that_could_leave_a_directory_exits_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, symbol: str
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = {
        "data.source": "csv",
        "data.path": "prices",
        "data.tickers": ["KO", symbol],
        "data.cache_dir": "cache",
        "report.out_dir": "reports",
    }
    result = invoke(command, settings)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"data.tickers: {symbol!r} is not a valid ticker symbol" in lines[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_bad_line_in_a_tickers_file_exits_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tickers.txt").write_text("KO\n../../etc/passwd\n")
    settings = {
        "data.source": "csv",
        "data.path": "prices",
        "data.tickers_file": "tickers.txt",
        "data.cache_dir": "cache",
        "report.out_dir": "reports",
    }
    result = invoke("run", settings)
    assert result.exit_code == 2, result.output
    assert "'../../etc/passwd' is not a valid ticker symbol" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tickers.txt"]


def test_a_symlinked_price_file_is_read_like_any_other(tmp_path: Path) -> None:
    """The csv directory is the user's: a link to a file kept elsewhere is theirs to make."""
    real = write_prices(tmp_path / "elsewhere", "REAL", seed=3)
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "KO.csv").symlink_to(real)
    result = run_in_process(csv_settings(tmp_path, ["KO"]))
    assert result.failed_tickers == [], result.summary
    cached = PriceCache(tmp_path / "cache").read("csv", "KO")
    assert cached is not None and cached.meta.rows == len(pd.read_csv(real))


def multi_ticker_reply(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """What `yf.download(group_by="ticker")` returns: columns (Ticker, Price)."""
    return pd.concat(frames, axis=1, names=["Ticker", "Price"])


def test_symbols_in_a_reply_are_never_used_as_paths(tmp_path: Path, yahoo: ScriptedYahoo) -> None:
    """The frame belongs to the symbol asked for; other symbols in a reply are ignored."""
    intruder = "../../../escaped"
    yahoo.script("KO", multi_ticker_reply({intruder: yahoo_frame(1), "KO": yahoo_frame(0)}))
    yahoo.script("XOM", multi_ticker_reply({intruder: yahoo_frame(2)}))
    settings = base_settings(
        tmp_path,
        {
            "data.source": "yfinance",
            "data.tickers": ["KO", "XOM"],
            "data.download.requests_per_second": 1000.0,
        },
    )
    result = run_in_process(settings)

    assert result.summary["status"].tolist() == ["ok", "failed"]
    reason = result.summary.loc[1, "reason"]
    assert "Yahoo's frame has no columns for 'XOM', only for: ../../../escaped" in reason
    written = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    # Beside the prices, only KO's stored backtest result, under its settings key.
    stored = {path for path in written if path.startswith("cache/results")}
    stored_pattern = r"cache/results(/yfinance(/[0-9a-f]{16}(/KO\.parquet)?)?)?"
    assert all(re.fullmatch(stored_pattern, path) for path in stored), stored
    assert any(path.endswith("/KO.parquet") for path in stored)
    assert written - stored == {
        "cache",
        "cache/.lock",
        "cache/yfinance",
        "cache/yfinance/KO.parquet",
    }
    cached = PriceCache(tmp_path / "cache").read("yfinance", "KO")
    assert cached is not None
    expected = yahoo_frame(0)["Adj Close"].to_numpy()
    assert (cached.frame["adj_close"].to_numpy() == expected).all()


def modes(root: Path) -> dict[str, int]:
    return {
        path.relative_to(root).as_posix(): stat.S_IMODE(path.lstat().st_mode)
        for path in root.rglob("*")
        if not path.is_symlink()
    }


@pytest.mark.slow
def test_cache_and_run_files_follow_the_umask(tmp_path: Path) -> None:
    for seed, ticker in enumerate(["KO", "XOM"]):
        write_prices(tmp_path / "prices", ticker, seed=seed)
    command = pipeline_command(csv_settings(tmp_path, ["KO", "XOM"]), "--quiet")
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, umask=0o022)
    assert finished.returncode == 0, finished.stderr

    created = {
        f"{top}/{name}": mode
        for top in ("cache", "reports")
        for name, mode in modes(tmp_path / top).items()
    }
    assert any(name.endswith("KO.parquet") for name in created)
    assert any(name.endswith("report.html") for name in created)
    assert any(name.endswith("manifest.json") for name in created)
    wrong = {
        name: oct(mode)
        for name, mode in created.items()
        if mode != (0o755 if (tmp_path / name).is_dir() else 0o644)
    }
    assert not wrong


def test_a_cache_file_follows_a_stricter_umask(tmp_path: Path) -> None:
    """0o027 gives 0o640: the mode comes from the umask, not from a constant."""
    frame = pd.DataFrame(
        {"adj_close": [10.0, 10.5]},
        index=pd.DatetimeIndex(["2019-01-02", "2019-01-03"], name="date"),
    )
    meta = CacheMeta(
        ticker="KO",
        source="csv",
        source_identity="csv:test",
        first_date=START,
        last_date=START.replace(day=3),
        rows=2,
        fetched_at=pd.Timestamp("2020-01-01", tz="UTC").to_pydatetime(),
        covered_start=START,
        covered_through=END,
    )
    previous = os.umask(0o027)
    try:
        path = PriceCache(tmp_path).write("csv", "KO", frame, meta)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640

"""data.quality: warn (keep the prices, flag them), skip the ticker, or repair what is safe."""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import run_backtest
from pipeline.config import load_config

BLOCK = slice(300, 312)  # 12 sessions quoted 100x
DATES = pd.bdate_range("2016-01-04", periods=700)
FIRST, LAST = DATES[300].date(), DATES[311].date()


def write(directory: Path, ticker: str, prices: np.ndarray, dates: pd.DatetimeIndex) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"timestamp": dates.strftime("%Y-%m-%d"), "adjusted_close": prices})
    frame.to_csv(directory / f"{ticker}.csv", index=False)


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quality")
    dates = DATES
    clean = 30.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.012, len(dates))))
    pence = clean.copy()
    pence[BLOCK] *= 100.0
    write(root / "files", "CLEAN", clean, dates)
    write(root / "files", "PENCE", pence, dates)
    return root


def run(
    universe: Path, policy: str | None, tmp_path: Path, run_dir: Path | None = None
) -> tuple[pd.DataFrame, dict]:
    data = {
        "source": "csv",
        "path": (universe / "files").as_posix(),
        "tickers": ["CLEAN", "PENCE"],
        "start": date(2016, 1, 1),
        "end": date(2018, 12, 31),
        "cache_dir": (tmp_path / "cache").as_posix(),
    }
    if policy is not None:
        data["quality"] = policy
    raw = {
        "data": data,
        "backtest": {"mode": "walk_forward", "train_days": 200},
        "execution": {"executor": "serial"},
    }
    result = run_backtest(raw, run_dir=run_dir)
    return result.summary.set_index("ticker"), result.manifest


def test_the_default_policy_is_warn() -> None:
    config = load_config({"data": {"source": "synthetic", "start": date(2020, 1, 1)}})
    assert config.data.quality == "warn"


def test_warn_keeps_the_prices_and_flags_them(universe: Path, tmp_path: Path) -> None:
    summary, manifest = run(universe, None, tmp_path)

    assert summary["status"].tolist() == ["ok", "ok"]
    (note,) = manifest["data_warnings"]["PENCE"]
    assert note.startswith(f"unit error: prices {FIRST}..{LAST} (12 sessions) are 100x")
    assert "CLEAN" not in manifest["data_warnings"]
    record = manifest["data_quality"]
    assert record == {
        "policy": "warn",
        "tickers_flagged": 1,
        "findings": {"unit": 1},
        "skipped": [],
        "repaired": {},
    }
    # the prices were kept: the backtest saw the 100x block
    assert summary.loc["PENCE", "buy_hold"] == pytest.approx(summary.loc["CLEAN", "buy_hold"])
    assert summary.loc["PENCE", "cum_return"] != pytest.approx(summary.loc["CLEAN", "cum_return"])


def test_skip_skips_the_ticker_with_the_reason(universe: Path, tmp_path: Path) -> None:
    summary, manifest = run(universe, "skip", tmp_path)

    assert summary.loc["CLEAN", "status"] == "ok"
    assert summary.loc["PENCE", "status"] == "skipped"
    assert summary.loc["PENCE", "reason"] == (f"download: data quality: unit error {FIRST}..{LAST}")
    assert manifest["data_quality"]["skipped"] == ["PENCE"]
    assert manifest["counts"] == {"ok": 1, "skipped": 1, "failed": 0}
    assert manifest["data_warnings"]["PENCE"][0].startswith("unit error: ")


def test_repair_backtests_the_rescaled_prices(universe: Path, tmp_path: Path) -> None:
    summary, manifest = run(universe, "repair", tmp_path)

    assert summary["status"].tolist() == ["ok", "ok"]
    # repaired, the prices are the clean ones: the same backtest to the last digit
    for column in ("n_days", "accuracy", "cum_return", "buy_hold", "sharpe"):
        assert summary.loc["PENCE", column] == pytest.approx(summary.loc["CLEAN", column])
    assert manifest["fingerprints"]["PENCE"]["rows"] == manifest["fingerprints"]["CLEAN"]["rows"]
    assert manifest["data_quality"]["repaired"] == {
        "PENCE": [[FIRST.isoformat(), LAST.isoformat(), pytest.approx(0.01)]]
    }
    notes = manifest["data_warnings"]["PENCE"]
    assert notes[-1] == f"repaired: adjusted closes {FIRST}..{LAST} multiplied by 0.01"


def test_an_unknown_policy_is_a_config_error() -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.quality"):
        load_config({"data": {"source": "synthetic", "start": date(2020, 1, 1), "quality": "fix"}})


@pytest.mark.slow
def test_both_reports_say_what_the_policy_did(universe: Path, tmp_path: Path) -> None:
    run(universe, "repair", tmp_path, run_dir=tmp_path / "run")
    for page in ("report.md", "report.html"):
        text = html.unescape((tmp_path / "run" / page).read_text())
        section = text[text.rindex("Data-quality warnings") :]
        assert 'data.quality = "repair"' in section, page
        assert "1 ticker(s) with findings (1 unit); 1 repair(s) in PENCE" in section, page
        assert FIRST.isoformat() in section and LAST.isoformat() in section, page

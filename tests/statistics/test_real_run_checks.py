"""A run on real prices checked as an outside reader would: the portfolio's daily returns
recomputed from daily.parquet by METHOD.md, and PSR / DSR recomputed from the runs' own daily
returns and the number of trials, by the formulas written out here (scipy's normal only)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from pipeline.config import load_config
from pipeline.runner import run_pipeline

pytestmark = pytest.mark.slow

EULER_GAMMA = 0.5772156649
TICKERS = ["AAPL", "KO", "XOM", "JPM"]


def book_by_method(daily: pd.DataFrame, cost_bps: float = 0.0) -> pd.Series:
    """Per date: ln(1 + mean over that day's tickers of exp(s) - 1), s net of costs first."""
    net = []
    for _, rows in daily.groupby("ticker", observed=True, sort=False):
        positions = rows["position"].to_numpy(float)
        changes = np.abs(np.diff(positions, prepend=0.0))
        net.append(rows["strategy_log_return"].to_numpy(float) - cost_bps / 1e4 * changes)
    frame = pd.DataFrame({"date": daily["date"], "s": np.concatenate(net)})
    means = frame.groupby("date")["s"].apply(lambda s: sum(math.expm1(x) for x in s) / len(s))
    return np.log1p(means)


def psr(returns: np.ndarray, threshold: float) -> float:
    n = len(returns)
    mean = returns.mean()
    sd = returns.std(ddof=1)
    sr = mean / sd
    centred = returns - mean
    m2 = (centred**2).mean()
    skew = (centred**3).mean() / m2**1.5
    kurt = (centred**4).mean() / m2**2
    return norm.cdf((sr - threshold) * math.sqrt(n - 1)
                    / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))  # fmt: skip


def test_portfolio_psr_and_dsr_recomputed_from_the_run_files(sp500_sample, tmp_path):
    (tmp_path / "tickers.txt").write_text("\n".join(TICKERS) + "\n")
    common = [f'data.path="{sp500_sample.as_posix()}"',
              f'data.tickers_file="{(tmp_path / "tickers.txt").as_posix()}"',
              f'data.cache_dir="{(tmp_path / "cache").as_posix()}"',
              f'report.out_dir="{(tmp_path / "reports").as_posix()}"',
              "data.start=2010-01-01", "data.end=2016-12-31", "report.bootstrap_samples=200",
              "execution.executor=serial"]  # fmt: skip
    books, manifests = [], []
    for number, lags in enumerate([3, 6]):
        config = load_config("configs/sp500-sample.toml", [*common, f"features.lags={lags}"])
        run_pipeline(config, tmp_path / f"run{number}", show_progress=False)
        directory = tmp_path / f"run{number}"
        daily = pd.read_parquet(directory / "daily.parquet")
        manifests.append(json.loads((directory / "manifest.json").read_text()))
        books.append((daily, book_by_method(daily).to_numpy()))
    stats = manifests[1]["statistics"]
    daily, book = books[1]
    assert stats["n_days"] == len(book) and stats["n_trials"] == 2
    annual = book.mean() / book.std(ddof=1) * math.sqrt(252)
    assert stats["portfolio_sharpe"] == pytest.approx(annual, rel=1e-9)
    assert stats["portfolio_sharpe_lo"] <= stats["portfolio_sharpe"] <= stats["portfolio_sharpe_hi"]
    assert stats["psr"] == pytest.approx(psr(book, 0.0), rel=1e-7, abs=1e-12)
    sharpes = [b.mean() / b.std(ddof=1) for _, b in books]  # the two trials, non-annualised
    n = len(sharpes)
    expected_max = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n) + EULER_GAMMA * norm.ppf(
        1 - 1 / (n * math.e)
    )
    sr0 = math.sqrt(np.var(sharpes, ddof=1)) * expected_max
    assert stats["dsr"] == pytest.approx(psr(book, sr0), rel=1e-7, abs=1e-12)
    # with costs: each ticker's net log return first, then the same average
    net = book_by_method(daily, 5.0).to_numpy()
    net_annual = net.mean() / net.std(ddof=1) * math.sqrt(252)
    assert stats["portfolio_sharpe_net"] == pytest.approx(net_annual, rel=1e-9)

"""SyntheticSource: deterministic, on a fixed business-day calendar, with the stylised facts of
daily stock returns that the later stages rely on."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kurtosis

from pipeline.config import SyntheticConfig, synthetic_symbols
from pipeline.data.sources.synthetic import SYNTHETIC_LAST_DAY, SyntheticSource
from pipeline.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
WIDE = (date(1990, 1, 1), date(2030, 12, 31))
TICKERS = synthetic_symbols(40)


def source(seed: int = 0, n_days: int = 2520) -> SyntheticSource:
    return SyntheticSource(SyntheticConfig(seed=seed, n_days=n_days))


def log_returns(prices: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(prices["adj_close"].to_numpy()))


def digest(prices: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(prices, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def test_same_seed_same_prices() -> None:
    first, second = source(seed=3), source(seed=3)
    for ticker in ["SYN000", "SYN017", "KO"]:
        pd.testing.assert_frame_equal(first.fetch(ticker, *WIDE), second.fetch(ticker, *WIDE))


@pytest.mark.slow
def test_same_prices_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from datetime import date\n"
        "from pipeline.config import SyntheticConfig\n"
        "from pipeline.data.sources.synthetic import SyntheticSource\n"
        "from tests.data.test_sources_synthetic import digest\n"
        "prices = SyntheticSource(SyntheticConfig(seed=5)).fetch("
        "'SYN004', date(1990, 1, 1), date(2030, 12, 31))\n"
        "print(digest(prices))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == digest(source(seed=5).fetch("SYN004", *WIDE))


def test_different_seeds_and_tickers_differ() -> None:
    a = source(seed=0).fetch("SYN000", *WIDE)["adj_close"]
    b = source(seed=1).fetch("SYN000", *WIDE)["adj_close"]
    c = source(seed=0).fetch("SYN001", *WIDE)["adj_close"]
    assert not a.equals(b) and not a.equals(c)


def test_identity_names_what_the_prices_depend_on() -> None:
    assert source(seed=4, n_days=300).identity().startswith("synthetic:seed=4,n_days=300")
    assert source(seed=0).identity() != source(seed=1).identity()
    assert source().name == "synthetic"


def test_history_is_the_business_days_ending_on_the_fixed_last_day() -> None:
    full = [source().fetch(ticker, *WIDE) for ticker in TICKERS]
    longest = max(full, key=len)
    expected = pd.bdate_range(end=SYNTHETIC_LAST_DAY, periods=2520)
    assert list(longest.index) == list(expected)
    for prices in full:
        assert (prices.index.day_of_week < 5).all()
        assert prices.index[-1] == pd.Timestamp(SYNTHETIC_LAST_DAY)


def test_some_tickers_are_listed_later() -> None:
    lengths = {len(source().fetch(ticker, *WIDE)) for ticker in TICKERS}
    assert max(lengths) == 2520
    assert len(lengths) > 3
    assert min(lengths) >= 2520 // 4


def test_a_range_before_the_listing_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"no synthetic prices for 'SYN000' from 1990-01-01"):
        source().fetch("SYN000", date(1990, 1, 1), date(1999, 12, 31))


@settings(max_examples=30, deadline=None)
@given(
    ticker=st.sampled_from(TICKERS[:10]),
    first=st.integers(0, 400),
    days=st.integers(0, 400),
)
def test_fetching_a_window_equals_slicing_a_wider_fetch(ticker: str, first: int, days: int) -> None:
    synthetic = source(n_days=400)
    wide = synthetic.fetch(ticker, *WIDE)
    start = date(2020, 6, 1) + timedelta(days=first)
    end = start + timedelta(days=days)
    expected = wide.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    if expected.empty:
        with pytest.raises(DataError):
            synthetic.fetch(ticker, start, end)
    else:
        pd.testing.assert_frame_equal(synthetic.fetch(ticker, start, end), expected)


def test_returns_have_fat_tails() -> None:
    for ticker in TICKERS[:20]:
        assert kurtosis(log_returns(source().fetch(ticker, *WIDE)), fisher=False) > 3.5, ticker


def test_volatility_clusters() -> None:
    correlations = []
    for ticker in TICKERS[:20]:
        size = np.abs(log_returns(source().fetch(ticker, *WIDE)))
        correlations.append(np.corrcoef(size[1:], size[:-1])[0, 1])
    assert np.mean(correlations) > 0.05


def test_returns_have_a_little_lag_one_autocorrelation() -> None:
    # Independent returns would give |correlation| of about 0.016 on average over 2,520 days.
    correlations = []
    for ticker in TICKERS:
        returns = log_returns(source().fetch(ticker, *WIDE))
        correlations.append(np.corrcoef(returns[1:], returns[:-1])[0, 1])
    assert 0.04 < np.mean(np.abs(correlations)) < 0.15
    assert min(correlations) < 0 < max(correlations)


def test_some_days_are_unchanged() -> None:
    for ticker in TICKERS[:20]:
        unchanged = np.mean(log_returns(source().fetch(ticker, *WIDE)) == 0.0)
        assert 0.005 < unchanged < 0.1, ticker


def test_bars_are_consistent_and_dividends_adjust_the_past() -> None:
    for ticker in TICKERS[:10]:
        prices = source().fetch(ticker, *WIDE)
        assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
        assert (prices["high"] >= prices[["open", "close"]].max(axis=1)).all()
        assert (prices["low"] > 0).all() and (prices["volume"] > 0).all()
        assert (prices["adj_close"] <= prices["close"] * (1 + 1e-12)).all()
        assert prices["adj_close"].iloc[-1] == pytest.approx(prices["close"].iloc[-1])
        assert (prices["close"] == prices["close"].round(2)).all()

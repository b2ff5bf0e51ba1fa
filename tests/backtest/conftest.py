"""Shared fixtures of the backtest tests: settings, synthetic and real prices, stub models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from pipeline.backtest import models
from pipeline.config import BacktestConfig, BacktestSettings, FeaturesConfig, ModelConfig

SAMPLE_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sp500-sample"


def build_settings(
    lags: int = 6, model: dict[str, Any] | None = None, **backtest: Any
) -> BacktestSettings:
    """Settings with `backtest` keys (mode, train_days, ...) and `model` keys overridden."""
    return BacktestSettings(
        features=FeaturesConfig(lags=lags),
        model=ModelConfig(**(model or {})),
        backtest=BacktestConfig(**backtest),
    )


def random_walk(n_prices: int, seed: int = 0, zero_share: float = 0.0) -> pd.Series:
    """Noisy business-day prices; `zero_share` of the days leave the price unchanged."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.015, n_prices - 1)
    steps[rng.random(n_prices - 1) < zero_share] = 0.0
    prices = 50.0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))
    dates = pd.bdate_range("2010-01-04", periods=n_prices, name="date")
    return pd.Series(prices, index=dates, name="adj_close")


@pytest.fixture
def make_settings() -> Callable[..., BacktestSettings]:
    return build_settings


@pytest.fixture
def walk() -> Callable[..., pd.Series]:
    return random_walk


@pytest.fixture(scope="session")
def sample_prices() -> Callable[[str, str, str], pd.Series]:
    """Adjusted closes of one real ticker between two dates, read from the shared sample."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(
            f"the shared price sample is absent (looked for {SAMPLE_DIR.name} in ../shared)"
        )

    def read(ticker: str, start: str, end: str) -> pd.Series:
        frame = pd.read_csv(SAMPLE_DIR / f"{ticker}.csv", usecols=["timestamp", "adjusted_close"])
        prices = frame.set_index(pd.DatetimeIndex(frame["timestamp"], name="date"))
        return prices["adjusted_close"].loc[start:end]

    return read


class ConstantStub(ClassifierMixin, BaseEstimator):
    """Predicts `label` for every row, whatever it was fit on."""

    def __init__(self, label: int = 1) -> None:
        self.label = label

    def fit(
        self, features: np.ndarray, targets: np.ndarray, sample_weight: Any = None
    ) -> ConstantStub:
        self.classes_ = np.unique(targets)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(len(features), self.label, dtype=np.int8)


class MomentumStub(ClassifierMixin, BaseEstimator):
    """Predicts the sign of the latest return (the lag-1 feature): hand-checkable positions."""

    def fit(
        self, features: np.ndarray, targets: np.ndarray, sample_weight: Any = None
    ) -> MomentumStub:
        self.classes_ = np.unique(targets)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features)[:, 0].astype(np.int8)


class FailingStub(ClassifierMixin, BaseEstimator):
    """Raises in fit, as a broken estimator would."""

    def fit(self, features: np.ndarray, targets: np.ndarray, sample_weight: Any = None) -> None:
        raise RuntimeError("solver blew up")


@pytest.fixture
def stub_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers the stub estimators as model kinds "constant", "momentum" and "failing"."""
    spec = models.EstimatorSpec
    monkeypatch.setitem(
        models._REGISTRY, "momentum", spec(MomentumStub, {}, weighted_fit_exact=True)
    )
    monkeypatch.setitem(
        models._REGISTRY, "constant", spec(ConstantStub, {}, weighted_fit_exact=True)
    )
    monkeypatch.setitem(models._REGISTRY, "failing", spec(FailingStub, {}, weighted_fit_exact=True))

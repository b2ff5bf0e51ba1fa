"""The work on one ticker's prices that no model or backtest setting changes, done once for
every configuration of a sweep that runs on them.

Cleaning depends on the prices only and the design matrix (features, targets, next-day returns)
on the prices and `features.lags` only, so configurations that differ in the model or the
backtest settings share both. The shared arrays are made read-only: a configuration that tried
to change them in place would fail loudly instead of changing another configuration's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.backtest.cleaning import CleanPrices, clean_prices
from pipeline.backtest.features import Design, build_design
from pipeline.errors import DataError


@dataclass
class SharedPrices:
    """One ticker's prices, cleaned once, with one design matrix per number of lags."""

    prices: pd.Series
    _cleaned: CleanPrices | DataError | None = None
    _designs: dict[int, Design] = field(default_factory=dict)

    def cleaned(self) -> CleanPrices:
        """`clean_prices(prices)`, computed on first use; raises its DataError every time."""
        if self._cleaned is None:
            try:
                self._cleaned = clean_prices(self.prices)
            except DataError as exc:
                self._cleaned = exc
        if isinstance(self._cleaned, DataError):
            raise self._cleaned
        return self._cleaned

    def design(self, lags: int) -> Design:
        """`build_design` of the cleaned prices with `lags`, computed once per `lags`."""
        if lags not in self._designs:
            self._designs[lags] = _read_only(build_design(self.cleaned().prices, lags))
        return self._designs[lags]


def _read_only(design: Design) -> Design:
    for value in (design.features, design.targets, design.next_returns, design.signal_features):
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return design

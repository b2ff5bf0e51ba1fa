"""Probabilistic and deflated Sharpe ratios (Bailey & Lopez de Prado 2012, 2014; METHOD.md,
"Selection bias").

SR is the non-annualised Sharpe ratio of T daily returns (ddof=1), g3 their skewness and g4
their non-excess kurtosis (the plain moment estimators, scipy's defaults).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# The normal distribution from scipy.special: scipy.stats costs a run half a second of imports.
from scipy.special import ndtr, ndtri

EULER_GAMMA = 0.5772156649


@dataclass(frozen=True, slots=True)
class ReturnMoments:
    """What PSR needs of a daily return series: SR (per day), T, skewness, kurtosis."""

    sharpe: float
    n_days: int
    skewness: float
    kurtosis: float


def return_moments(returns: ArrayLike) -> ReturnMoments:
    """Moments of a daily return series; a constant series has SR 0, skewness 0, kurtosis 3."""
    values = np.asarray(returns, dtype=np.float64)
    if len(values) < 2 or np.ptp(values) == 0:
        return ReturnMoments(0.0, len(values), 0.0, 3.0)
    return ReturnMoments(
        sharpe=float(np.mean(values) / np.std(values, ddof=1)),
        n_days=len(values),
        **_shape_moments(values),
    )


def _shape_moments(values: np.ndarray) -> dict[str, float]:
    """Skewness m3 / m2^1.5 and non-excess kurtosis m4 / m2^2 from the central moments m_k
    (the biased estimators, scipy.stats' defaults), written out to keep scipy.stats off the
    run's imports."""
    centred = values - values.mean()
    squares = centred * centred
    m2 = squares.mean()
    return {
        "skewness": float((squares * centred).mean() / m2**1.5),
        "kurtosis": float((squares * squares).mean() / (m2 * m2)),
    }


def probabilistic_sharpe(moments: ReturnMoments, benchmark: float = 0.0) -> float:
    """PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)).

    `benchmark` SR* is non-annualised. NaN for fewer than 2 days or non-finite moments.
    """
    sr, g3, g4 = moments.sharpe, moments.skewness, moments.kurtosis
    if moments.n_days < 2 or not all(map(math.isfinite, (sr, g3, g4, benchmark))):
        return math.nan
    # g4 >= 1 + g3^2 for any sample, so the quadratic is >= 0; rounding may touch 0.
    spread = max(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr, 1e-300)
    return float(ndtr((sr - benchmark) * math.sqrt(moments.n_days - 1) / math.sqrt(spread)))


def expected_max_sharpe(trial_sharpes: Sequence[float]) -> float:
    """SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))).

    V is the sample variance (ddof=1) of the N trials' non-annualised Sharpe ratios. 0 for one
    trial (DSR = PSR(0)) or no spread among them.
    """
    values = np.asarray([s for s in trial_sharpes if math.isfinite(s)], dtype=np.float64)
    n = len(values)
    if n < 2:
        return 0.0
    variance = float(np.var(values, ddof=1))
    quantiles = (1 - EULER_GAMMA) * ndtri(1 - 1 / n) + EULER_GAMMA * ndtri(1 - 1 / (n * math.e))
    return math.sqrt(variance) * float(quantiles)


def deflated_sharpe(moments: ReturnMoments, trial_sharpes: Sequence[float]) -> float:
    """DSR = PSR(SR0), SR0 from the trials' non-annualised Sharpe ratios (this one included)."""
    return probabilistic_sharpe(moments, expected_max_sharpe(trial_sharpes))

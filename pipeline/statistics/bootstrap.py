"""Stationary-bootstrap percentile intervals of daily statistics (METHOD.md, "Uncertainty").

Politis & Romano's stationary bootstrap resamples whole days in blocks of geometric length
(mean b) starting at uniform positions, wrapping around the end. The mean block length b is
Politis & White's (corrected by Patton, Politis & White), computed as `arch` computes it.

Why a resampler of our own beside arch's `StationaryBootstrap`: arch builds every resample's
index path (T values) and calls the statistic once per resample, several times slower than
here, and the intervals must add at most 10% to a walk-forward run
(benchmarks/bench_statistics.py). The statistics needed here (mean, mean of squares, share of
correct calls) are sums over the resampled days, and the sum over a block of a circular series
is a difference of two prefix sums of the series written twice; so one resample costs
O(number of blocks), not O(T), and one set of blocks serves every statistic of the series: a
day's columns travel together as one row per gather. tests/statistics checks its
distribution against arch's, exactly on a series whose sums name the days drawn.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.backtest.metrics import APPROX_BDAYS_PER_YEAR

# A resample whose variance is below this share of its mean square is constant up to rounding:
# its Sharpe ratio is 0, as metrics.sharpe_ratio says for constant returns.
CONSTANT_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


NO_INTERVAL = Interval(math.nan, math.nan)


def ticker_seed(seed: int, name: str) -> np.random.SeedSequence:
    """A seed per series that does not depend on which worker runs it or in which order."""
    return np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])


def optimal_block_length(values: ArrayLike) -> float:
    """Mean block length of the stationary bootstrap for `values`, in [1, T] days.

    1 (whole days drawn independently) when the estimate does not exist: fewer than 3 days,
    constant values, or a series so regular that its autocorrelations divide by zero.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 3 or np.ptp(values) == 0:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        length = float(_politis_white_length(values))
    return min(max(length, 1.0), float(len(values))) if math.isfinite(length) else 1.0


def _politis_white_length(x: NDArray[np.float64]) -> np.float64:
    """Politis & White's (2004) stationary-bootstrap block length with the correction of
    Patton, Politis & White (2009), tuned as `arch.bootstrap.optimal_block_length` is.

    Why not arch's: importing arch loads its volatility models and statsmodels, a second of
    every run's start (and of every worker's) for a dozen lines of arithmetic.
    tests/statistics/test_bootstrap.py checks this against arch's on random series.

    With n days, autocovariances g(k) = sum_t e_t e_(t-k) / n of the demeaned series and the
    flat-top kernel h(x) = min(1, 2 (1 - |x|)) over lags |k| <= m:
    G = sum_k h(k/m) |k| g(k), s2 = sum_k h(k/m) g(k), b = (2 G^2 / (2 s2^2) n)^(1/3), at most
    ceil(min(3 sqrt(n), n / 3)). m is twice the first lag m0 (at least 1) after which k_n =
    max(5, floor(log10 n)) autocorrelations in a row lie inside +-2 sqrt(log10(n) / n), and at
    most m_max = ceil(sqrt(n)) + k_n; m_max when there is no such lag.
    """
    n = len(x)
    e = x - x.mean()
    k_n = max(5, int(np.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + k_n
    if m_max > n:  # more lags than days (n <= 7): no estimate, as arch raises there
        return np.float64(math.nan)
    lags = np.arange(m_max + 1)
    cross = np.array([e[lag:] @ e[: n - lag] for lag in lags])
    squares = np.concatenate([[0.0], np.cumsum(e * e)])  # squares[j]: sum of e_t^2, t < j
    # arch's correlation of lag k scales by the squares of e_(k+1).. and of e_0..e_(n-k-2).
    later = squares[n] - squares[np.minimum(lags + 1, n)]
    earlier = squares[np.maximum(n - lags - 1, 0)]
    correlation = np.abs(cross) / np.sqrt(later * earlier)
    quiet = correlation < 2 * math.sqrt(math.log10(n) / n)  # NaN counts as not quiet
    # Runs of k_n quiet lags starting at lag s, for s = 0 .. m_max - k_n.
    runs = np.lib.stride_tricks.sliding_window_view(quiet[:m_max], k_n).all(axis=1)
    first = np.flatnonzero(runs)
    m = min(2 * max(int(first[0]), 1), m_max) if len(first) else m_max
    k = lags[1 : m + 1]
    flat_top = np.where(k / m <= 0.5, 1.0, 2.0 * (1.0 - k / m))
    autocovariance = cross / n
    big_g = np.sum(2.0 * flat_top * k * autocovariance[1 : m + 1])
    long_run = autocovariance[0] + np.sum(2.0 * flat_top * autocovariance[1 : m + 1])
    length = (2.0 * big_g**2 / (2.0 * long_run**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return min(length, np.float64(math.ceil(min(3.0 * math.sqrt(n), n / 3.0))))


# Resamples drawn and summed together: keeps the gathered values in the CPU cache.
CHUNK_SAMPLES = 50
# Columns gathered together: numpy copies rows of 1, 2 or 4 float64 with one fixed-size move
# each, and rows of 3 (the ticker's returns, squares and hits) over twice as slowly as of 4.
_ROW_WIDTHS = (1, 2, 4)


class _Scratch:
    """Arrays reused from one chunk of resamples to the next, by name.

    Why by hand: a chunk's temporaries are megabytes, and malloc returns blocks that large to
    the system when they are freed, so each fresh one was paid again in page faults: 4x the
    arithmetic of a 20-year series (benchmarks/bench_statistics.py). numpy has no pool for
    them; `out=` into these views keeps every value and every draw the same.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, np.dtype], NDArray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> NDArray:
        key = (name, np.dtype(dtype))
        size = math.prod(shape)
        flat = self._arrays.get(key)
        if flat is None or flat.size < size:
            flat = self._arrays[key] = np.empty(size, dtype=dtype)
        return flat[:size].reshape(shape)


def block_sums(
    series: NDArray[np.float64], block_length: float, n_samples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Sums over `n_samples` stationary-bootstrap resamples of each column of `series` (T, k).

    Returns (n_samples, k). Each resample has exactly T days: blocks of geometric length with
    mean `block_length`, starting at uniform days, wrapping around; the last block is cut at T.
    With a mean block length of 1 every block is one day: the days are drawn independently and
    gathered directly (one gather per day instead of two prefix sums per block).
    """
    series = np.asarray(series, dtype=np.float64)
    n_days, width = series.shape
    one_day_blocks = block_length <= 1.0
    rows = _padded_rows(series if one_day_blocks else _circular_prefix_sums(series))
    totals = np.empty((n_samples, rows.shape[1]))
    scratch = _Scratch()
    for first in range(0, n_samples, CHUNK_SAMPLES):
        count = min(CHUNK_SAMPLES, n_samples - first)
        chunk = totals[first : first + count]
        if one_day_blocks:
            days = rng.integers(0, n_days, size=(count, n_days), dtype=np.int32)
            chunk[:] = _summed_rows(rows, days, scratch)
            continue
        starts, stops = _block_bounds(n_days, block_length, count, rng, scratch)
        np.subtract(
            _summed_rows(rows, stops, scratch), _summed_rows(rows, starts, scratch), out=chunk
        )
    return totals[:, :width]


def _circular_prefix_sums(series: NDArray[np.float64]) -> NDArray[np.float64]:
    """(2T + 1, k) prefix sums of the series written twice, from 0: the sum over days
    [s, s + n) of the circular series, for s < T and n <= T, is row s + n less row s."""
    twice = np.concatenate([series, series])
    return np.concatenate([np.zeros((1, series.shape[1])), np.cumsum(twice, axis=0)])


def _padded_rows(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """`values` with zero columns added up to the next of _ROW_WIDTHS, or a multiple of 4."""
    width = values.shape[1]
    padded = next((w for w in _ROW_WIDTHS if w >= width), -(-width // 4) * 4)
    if padded == width:
        return np.ascontiguousarray(values)
    out = np.zeros((values.shape[0], padded))
    out[:, :width] = values
    return out


def _summed_rows(
    rows: NDArray[np.float64], indices: NDArray[np.int32], scratch: _Scratch
) -> NDArray[np.float64]:
    """Per row of `indices` (count, m): the column sums of `rows` at those indices, (count, k).

    Summed as a product with ones: numpy's sum over the middle axis of (count, m, k) walks it
    with a stride and was 10x slower than the matrix product here.
    """
    count, per_sample = indices.shape
    gathered = scratch.get("gathered", (count, per_sample, rows.shape[1]), np.float64)
    # mode="clip": every index is in range, and "raise" would buffer `out`.
    np.take(rows, indices, axis=0, mode="clip", out=gathered)
    return np.matmul(np.ones((1, per_sample)), gathered)[:, 0, :]


def _block_bounds(
    n_days: int, block_length: float, count: int, rng: np.random.Generator, scratch: _Scratch
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """(starts, stops) of the blocks of `count` resamples, rows of equal width; a block past
    the T-th day has stop == start (it adds nothing). Both are views into `scratch`."""
    p_new = 1.0 / block_length
    expected = n_days * p_new
    spread = math.sqrt(expected)
    width = int(expected + 3 * spread + 16)
    starts, ends = _blocks(n_days, p_new, (count, width), rng, scratch)
    np.cumsum(ends, axis=1, dtype=np.int32, out=ends)
    while np.any(ends[:, -1] < n_days):  # too few blocks for some resample: draw more
        extra = (count, int(4 * spread + 16))
        more_starts, more = _blocks(n_days, p_new, extra, rng, _Scratch())
        more = np.cumsum(more, axis=1, dtype=np.int32)
        ends = np.concatenate([ends, ends[:, -1:] + more], axis=1)
        starts = np.concatenate([starts, more_starts], axis=1)
    # Blocks crossing the T-th day are cut there; blocks after it become empty.
    np.minimum(ends, n_days, out=ends)
    stops = scratch.get("lengths", ends.shape, np.int32)  # the lengths, then the stops
    stops[:, 0] = ends[:, 0]
    np.subtract(ends[:, 1:], ends[:, :-1], out=stops[:, 1:])
    return starts, np.add(starts, stops, out=stops)


def _blocks(
    n_days: int, p_new: float, shape: tuple[int, int], rng: np.random.Generator, scratch: _Scratch
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """(starts, lengths) of `shape` blocks: starts uniform on 0..T-1, lengths geometric on
    1, 2, ... with P(L > k) = (1 - p)^k, capped at T; views into `scratch`.

    One float64 uniform U per block gives both: the start is floor(U T), and the fraction
    F = U T - floor(U T) is uniform on [0, 1) and independent of the start (U has 53 bits, T
    fewer than 32), so L = floor(ln(1 - F) / ln(1 - p)) + 1 is geometric:
    P(L > k) = P(1 - F <= (1 - p)^k) = (1 - p)^k. One draw and a float32 logarithm per block
    cost half of an integer and a float32 exponential from numpy's Generator.
    """
    scaled = rng.random(shape, out=scratch.get("uniform", shape, np.float64))
    scaled *= n_days
    starts = scratch.get("starts", shape, np.int32)
    np.copyto(starts, scaled, casting="unsafe")  # truncates: floor of a non-negative value
    lengths = scratch.get("geometric", shape, np.int32)
    if p_new >= 1.0:
        lengths.fill(1)
        return starts, lengths
    scaled -= starts  # the fraction F
    survival = scratch.get("survival", shape, np.float32)
    np.subtract(1.0, scaled, out=survival, casting="same_kind")  # 1 - F in (0, 1]
    np.log(survival, out=survival)
    survival *= np.float32(1.0 / math.log1p(-p_new))
    np.minimum(survival, np.float32(n_days - 1), out=survival)
    np.copyto(lengths, survival, casting="unsafe")  # truncates, as astype(np.int32) does
    lengths += 1
    return starts, lengths


def sharpe_from_sums(
    total: NDArray[np.float64], total_squares: NDArray[np.float64], n_days: int
) -> NDArray[np.float64]:
    """Annualised Sharpe ratios (ddof=1) from sums and sums of squares of `n_days` returns."""
    mean = total / n_days
    variance = np.maximum(total_squares - total * mean, 0.0) / (n_days - 1)
    constant = variance <= CONSTANT_TOLERANCE * (total_squares / n_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean / np.sqrt(variance) * math.sqrt(APPROX_BDAYS_PER_YEAR)
    return np.where(constant, 0.0, ratio)


def percentile_interval(values: NDArray[np.float64], confidence: float) -> Interval:
    """The central `confidence` share of `values` (linear interpolation)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(float(low), float(high))


@dataclass(frozen=True, slots=True)
class TickerIntervals:
    sharpe: Interval
    accuracy: Interval
    block_length: float


def ticker_intervals(
    log_returns: ArrayLike,
    correct: ArrayLike,
    *,
    n_samples: int,
    confidence: float,
    seed: np.random.SeedSequence,
) -> TickerIntervals:
    """Intervals of one strategy's Sharpe ratio and accuracy, resampling whole days.

    `log_returns` are the strategy's daily log returns, `correct` 1 where the day's call was
    right (resampled with its day). The block length is estimated on the log returns. NaN
    intervals when there are fewer than 2 days, a non-finite return, or `n_samples` is 0.
    """
    returns = np.asarray(log_returns, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if n_samples <= 0 or len(returns) < 2 or not np.all(np.isfinite(returns)):
        return TickerIntervals(NO_INTERVAL, NO_INTERVAL, math.nan)
    block_length = optimal_block_length(returns)
    series = np.column_stack([returns, returns * returns, hits])
    sums = block_sums(series, block_length, n_samples, np.random.default_rng(seed))
    n_days = len(returns)
    sharpes = sharpe_from_sums(sums[:, 0], sums[:, 1], n_days)
    return TickerIntervals(
        sharpe=percentile_interval(sharpes, confidence),
        accuracy=percentile_interval(sums[:, 2] / n_days, confidence),
        block_length=block_length,
    )


def sharpe_interval(
    log_returns: ArrayLike,
    *,
    n_samples: int,
    confidence: float,
    seed: np.random.SeedSequence,
) -> Interval:
    """Interval of the annualised Sharpe ratio of one daily log-return series."""
    returns = np.asarray(log_returns, dtype=np.float64)
    if n_samples <= 0 or len(returns) < 2 or not np.all(np.isfinite(returns)):
        return NO_INTERVAL
    block_length = optimal_block_length(returns)
    series = np.column_stack([returns, returns * returns])
    sums = block_sums(series, block_length, n_samples, np.random.default_rng(seed))
    sharpes = sharpe_from_sums(sums[:, 0], sums[:, 1], len(returns))
    return percentile_interval(sharpes, confidence)

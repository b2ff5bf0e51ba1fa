"""Stationary-bootstrap percentile intervals of daily statistics (METHOD.md, "Uncertainty").

Politis & Romano's stationary bootstrap resamples whole days in blocks of geometric length
(mean b) starting at uniform positions, wrapping around the end. The mean block length b is
Politis & White's (corrected by Patton, Politis & White), from `arch`.

Why a resampler of our own beside arch's `StationaryBootstrap`: arch builds every resample's
index path (T values) and calls the statistic once per resample, several times slower than
here, and the intervals must add at most 10% to a walk-forward run
(benchmarks/bench_statistics.py). The statistics needed here (mean, mean of squares, share of
correct calls) are sums over the resampled days, and the sum over a block of a circular series
is a difference of two prefix sums of the series written twice; so one resample costs
O(number of blocks), not O(T), one set of blocks serves every statistic of the series, and
two columns travel as one complex number per gather. tests/statistics checks its
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
    constant values, or a series so regular that arch's autocorrelations divide by zero.
    """
    from arch.bootstrap import optimal_block_length as arch_block_length

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 3 or np.ptp(values) == 0:
        return 1.0
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            length = float(arch_block_length(values)["stationary"].iloc[0])
    except (ValueError, FloatingPointError, ZeroDivisionError):
        return 1.0
    return min(max(length, 1.0), float(len(values))) if math.isfinite(length) else 1.0


# Resamples drawn and summed together: keeps the gathered values in the CPU cache (2x faster).
CHUNK_SAMPLES = 50


class _Scratch:
    """Arrays reused from one chunk of resamples to the next, by name.

    Why by hand: a chunk's temporaries are megabytes, and malloc returns blocks that large to
    the system when they are freed, so each fresh one was paid again in page faults: 4x the
    arithmetic of a 20-year series (benchmarks/bench_statistics.py). numpy has no pool for
    them; `out=` into these views keeps every value and every draw the same.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, np.dtype], NDArray] = {}

    def get(self, name: str, shape: tuple[int, int], dtype: type) -> NDArray:
        key = (name, np.dtype(dtype))
        size = shape[0] * shape[1]
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
    columns = _paired_columns(series)
    one_day_blocks = block_length <= 1.0
    if not one_day_blocks:
        columns = [np.concatenate([[0.0], np.cumsum(np.concatenate([c, c]))]) for c in columns]
    totals = np.empty((n_samples, len(columns)), dtype=columns[0].dtype)
    scratch = _Scratch()
    for first in range(0, n_samples, CHUNK_SAMPLES):
        count = min(CHUNK_SAMPLES, n_samples - first)
        rows = slice(first, first + count)
        if one_day_blocks:
            days = rng.integers(0, n_days, size=(count, n_days), dtype=np.int32)
            for number, column in enumerate(columns):
                gathered = scratch.get("gathered", days.shape, column.dtype)
                # mode="clip": every index is in range, and "raise" would buffer `out`.
                np.take(column, days, mode="clip", out=gathered)
                totals[rows, number] = gathered.sum(axis=1)
            continue
        starts, stops = _block_bounds(n_days, block_length, count, rng, scratch)
        for number, prefix in enumerate(columns):
            at_stops = scratch.get("at_stops", stops.shape, prefix.dtype)
            at_starts = scratch.get("at_starts", starts.shape, prefix.dtype)
            np.take(prefix, stops, mode="clip", out=at_stops)
            np.take(prefix, starts, mode="clip", out=at_starts)
            totals[rows, number] = np.subtract(at_stops, at_starts, out=at_stops).sum(axis=1)
    return _unpaired(totals, width)


def _paired_columns(series: NDArray[np.float64]) -> list[NDArray]:
    """Columns two by two as complex numbers (real, imaginary): one gather fetches both, and
    gathers are most of the resampler's time. An odd last column stays real."""
    width = series.shape[1]
    columns: list[NDArray] = [
        series[:, first] + 1j * series[:, first + 1] for first in range(0, width - 1, 2)
    ]
    if width % 2:
        columns.append(np.ascontiguousarray(series[:, -1]))
    return columns


def _unpaired(totals: NDArray, width: int) -> NDArray[np.float64]:
    """The (n_samples, k) real sums from `_paired_columns`' layout."""
    found = np.empty((totals.shape[0], width))
    for column in range(width):
        pair = totals[:, column // 2]
        found[:, column] = pair.imag if column % 2 else pair.real
    return found


def _block_bounds(
    n_days: int, block_length: float, count: int, rng: np.random.Generator, scratch: _Scratch
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """(starts, stops) of the blocks of `count` resamples, rows of equal width; a block past
    the T-th day has stop == start (it adds nothing). `stops` is a view into `scratch`."""
    p_new = 1.0 / block_length
    expected = n_days * p_new
    spread = math.sqrt(expected)
    width = int(expected + 3 * spread + 16)
    ends = _geometric(p_new, (count, width), n_days, rng, scratch)
    np.cumsum(ends, axis=1, dtype=np.int32, out=ends)
    while np.any(ends[:, -1] < n_days):  # too few blocks for some resample: draw more
        extra = (count, int(4 * spread + 16))
        more = np.cumsum(_geometric(p_new, extra, n_days, rng, _Scratch()), axis=1, dtype=np.int32)
        ends = np.concatenate([ends, ends[:, -1:] + more], axis=1)
    # Blocks crossing the T-th day are cut there; blocks after it become empty.
    np.minimum(ends, n_days, out=ends)
    stops = scratch.get("lengths", ends.shape, np.int32)  # the lengths, then the stops
    stops[:, 0] = ends[:, 0]
    np.subtract(ends[:, 1:], ends[:, :-1], out=stops[:, 1:])
    starts = rng.integers(0, n_days, size=ends.shape, dtype=np.int32)
    return starts, np.add(starts, stops, out=stops)


def _geometric(
    p_new: float, shape: tuple[int, int], n_days: int, rng: np.random.Generator, scratch: _Scratch
) -> NDArray[np.int32]:
    """Geometric lengths on 1, 2, ... with P(L > k) = (1 - p)^k, capped at `n_days`; a view
    into `scratch`.

    From float32 exponentials: several times faster than Generator.geometric, and a length
    over T days is cut to T anyway.
    """
    lengths = scratch.get("geometric", shape, np.int32)
    if p_new >= 1.0:
        lengths.fill(1)
        return lengths
    # floor(E / -ln(1 - p)) + 1 for E ~ Exp(1) is geometric: P(L > k) = P(E >= -k ln(1 - p)).
    scale = np.float32(-1.0 / math.log1p(-p_new))
    draws = rng.standard_exponential(
        dtype=np.float32, out=scratch.get("exponentials", shape, np.float32)
    )
    draws *= scale
    np.minimum(draws, np.float32(n_days), out=draws)
    np.copyto(lengths, draws, casting="unsafe")  # truncates, as astype(np.int32) does
    lengths += 1
    return lengths


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

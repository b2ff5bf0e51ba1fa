"""Probability of backtest overfitting by combinatorially symmetric cross-validation
(Bailey, Borwein, Lopez de Prado & Zhu 2015; METHOD.md).

M is (T, N): the daily returns of N configurations on the days all of them have one. Its rows
are cut into S contiguous blocks of equal size (the remainder dropped from the start); each
choice of S/2 blocks is in-sample, the rest out-of-sample.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

DEFAULT_BLOCKS = 16


@dataclass(frozen=True)
class PboResult:
    """pbo = share of combinations with logit <= 0; logits one per combination."""

    pbo: float
    logits: NDArray[np.float64]
    n_blocks: int
    n_configs: int


def block_moments(matrix: NDArray[np.float64], n_blocks: int) -> tuple[NDArray, NDArray, int]:
    """Per block (S, N): sums and sums of squares; and the rows per block."""
    n_rows = matrix.shape[0] // n_blocks * n_blocks
    kept = matrix[matrix.shape[0] - n_rows :]
    size = n_rows // n_blocks
    shaped = kept.reshape(n_blocks, size, matrix.shape[1])
    return shaped.sum(axis=1), (shaped * shaped).sum(axis=1), size


def sharpe_of_sums(sums: NDArray, squares: NDArray, n_rows: int) -> NDArray:
    """Per-day Sharpe ratios (ddof=1) from sums; 0 where the returns are constant."""
    mean = sums / n_rows
    variance = np.maximum(squares - sums * mean, 0.0) / (n_rows - 1)
    constant = variance <= 1e-12 * np.maximum(squares / n_rows, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(constant, 0.0, mean / np.sqrt(variance))


def probability_of_overfitting(returns: ArrayLike, n_blocks: int = DEFAULT_BLOCKS) -> PboResult:
    """PBO of the configurations whose daily returns are the columns of `returns` (T, N).

    Needs N >= 2, S even >= 2 and at least 2 rows per block; ValueError otherwise.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError(f"PBO needs a (days, configurations) matrix with >= 2 configurations; "
                         f"got shape {matrix.shape}")  # fmt: skip
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"The number of blocks S must be even and >= 2. Got {n_blocks}.")
    if matrix.shape[0] < 2 * n_blocks:
        raise ValueError(f"PBO with S={n_blocks} blocks needs >= {2 * n_blocks} common days; "
                         f"got {matrix.shape[0]}")  # fmt: skip
    sums, squares, size = block_moments(matrix, n_blocks)
    chosen = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    in_sample = np.zeros((len(chosen), n_blocks))
    np.put_along_axis(in_sample, chosen, 1.0, axis=1)
    out_sample = 1.0 - in_sample
    half = size * n_blocks // 2
    sr_in = sharpe_of_sums(in_sample @ sums, in_sample @ squares, half)
    sr_out = sharpe_of_sums(out_sample @ sums, out_sample @ squares, half)
    best = np.argmax(sr_in, axis=1)
    ranks = rankdata(sr_out, axis=1)[np.arange(len(chosen)), best]
    n_configs = matrix.shape[1]
    share = ranks / (n_configs + 1)
    logits = np.log(share / (1 - share))
    return PboResult(float(np.mean(logits <= 0)), logits, n_blocks, n_configs)

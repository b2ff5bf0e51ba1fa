"""PBO by CSCV: near 0.5 without skill, near 0 with a planted edge, and by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.statistics.pbo import probability_of_overfitting


def test_no_skill_gives_pbo_near_one_half():
    rng = np.random.default_rng(7)
    values = [
        probability_of_overfitting(rng.normal(0, 0.01, size=(800, 10)), 16).pbo
        for _ in range(6)
    ]
    assert 0.3 <= float(np.mean(values)) <= 0.7


def test_a_planted_edge_gives_pbo_near_zero():
    rng = np.random.default_rng(8)
    returns = rng.normal(0, 0.01, size=(1600, 10))
    returns[:, 3] += 0.004  # a Sharpe ratio of 0.4 a day: it wins in and out of sample
    result = probability_of_overfitting(returns, 16)
    assert result.pbo <= 0.05
    assert result.n_blocks == 16 and result.n_configs == 10
    assert len(result.logits) == 12870  # C(16, 8)


def _reference_pbo(returns: np.ndarray, n_blocks: int) -> float:
    """CSCV written out loop by loop, from the paper's steps."""
    t = returns.shape[0] // n_blocks * n_blocks
    blocks = np.array_split(returns[returns.shape[0] - t :], n_blocks)
    below = total = 0
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        train = np.vstack([blocks[i] for i in chosen])
        test = np.vstack([blocks[i] for i in range(n_blocks) if i not in chosen])
        sr_train = train.mean(0) / train.std(0, ddof=1)
        sr_test = test.mean(0) / test.std(0, ddof=1)
        best = int(np.argmax(sr_train))
        rank = 1 + int(np.sum(sr_test < sr_test[best]))  # no ties in continuous data
        w = rank / (returns.shape[1] + 1)
        below += np.log(w / (1 - w)) <= 0
        total += 1
    return below / total


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_a_loop_by_loop_reference(seed):
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0002, 0.01, size=(203, 5))  # 203 rows: 3 dropped from the start
    returns[:, 1] += rng.normal(0, 0.002, size=203)
    assert probability_of_overfitting(returns, 8).pbo == pytest.approx(
        _reference_pbo(returns, 8)
    )


@pytest.mark.parametrize(
    ("shape", "blocks", "match"),
    [
        pytest.param((100, 1), 4, "2 configurations", id="one-config"),
        pytest.param((100, 3), 5, "even", id="odd-blocks"),
        pytest.param((10, 3), 16, "common days", id="too-few-days"),
    ],
)
def test_bad_inputs_raise(shape, blocks, match):
    with pytest.raises(ValueError, match=match):
        probability_of_overfitting(np.zeros(shape), blocks)

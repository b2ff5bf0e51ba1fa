"""The plain-words verdicts and the baselines' portfolios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.report.aggregates import baseline_portfolios, portfolio_returns
from pipeline.statistics.verdict import run_verdict, sweep_verdict

SKILLED = {
    "portfolio_sharpe": 1.5, "portfolio_sharpe_lo": 0.8, "portfolio_sharpe_hi": 2.2,
    "psr": 0.999, "dsr": 0.97, "n_trials": 4, "best_baseline": "long",
    "best_baseline_sharpe": 0.6,
}  # fmt: skip


def test_skill_needs_dsr_and_the_baseline():
    assert run_verdict(SKILLED)["evidence"] is True
    assert "Evidence of skill" in run_verdict(SKILLED)["headline"]
    weak = run_verdict({**SKILLED, "dsr": 0.6})
    assert (
        weak["evidence"] is False and "DSR 0.60 is below 0.95 after 4 trial(s)" in weak["headline"]
    )
    beaten = run_verdict({**SKILLED, "best_baseline_sharpe": 1.8})
    assert beaten["evidence"] is False and "best baseline (long" in beaten["headline"]
    assert run_verdict(SKILLED, in_sample=True)["evidence"] is False


def test_costs_decide_when_given():
    net = {**SKILLED, "dsr_net": 0.3, "portfolio_sharpe_net": 0.2, "n_trials_net": 4,
           "best_baseline_net": "long", "best_baseline_sharpe_net": 0.59}  # fmt: skip
    verdict = run_verdict(net)
    assert verdict["evidence"] is False and "after costs" in verdict["headline"]
    assert "before costs" in run_verdict(SKILLED)["headline"]


@pytest.mark.parametrize(
    ("dsr", "pbo", "evidence", "words"),
    [
        pytest.param(0.97, 0.1, True, "Evidence of skill", id="skill"),
        pytest.param(0.97, 0.7, False, "Likely overfit", id="overfit"),
        pytest.param(0.5, 0.2, False, "No evidence", id="weak"),
        pytest.param(0.97, None, True, "could not be computed", id="no-pbo"),
    ],
)
def test_sweep_verdict(dsr, pbo, evidence, words):
    verdict = sweep_verdict({"dsr": dsr, "config_hash": "abc"}, pbo, 12)
    assert verdict["evidence"] is evidence and words in verdict["headline"]


def test_baseline_portfolios_by_hand():
    dates = pd.bdate_range("2021-03-01", periods=2)
    daily = pd.DataFrame({
        "ticker": ["A", "A", "B", "B"], "date": [*dates, *dates], "position": [1, 1, -1, -1],
        "asset_log_return": [0.01, -0.02, 0.03, 0.01],
        "strategy_log_return": [0.01, -0.02, -0.03, -0.01],
        "majority_position": [1, 1, -1, 1], "momentum_position": [-1, 1, 1, 1],
    })  # fmt: skip
    found = baseline_portfolios(daily)
    book = lambda *r: math.log(np.mean(np.exp(r)))  # noqa: E731
    assert found["long"]["strategy"].tolist() == pytest.approx(
        [book(0.01, 0.03), book(-0.02, 0.01)]
    )
    assert found["majority"]["strategy"].tolist() == pytest.approx(
        [book(0.01, -0.03), book(-0.02, 0.01)]
    )
    assert found["momentum"]["strategy"].tolist() == pytest.approx(
        [book(-0.01, 0.03), book(-0.02, 0.01)]
    )
    assert found["reversal"]["strategy"].tolist() == pytest.approx(
        [book(0.01, -0.03), book(0.02, -0.01)]
    )
    pd.testing.assert_series_equal(found["long"]["buy_hold"], portfolio_returns(daily)["buy_hold"])
    assert baseline_portfolios(daily.drop(columns=["majority_position"])) == {}


@pytest.mark.parametrize("cost_bps", [0.0, 5.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_baseline_portfolio_is_the_model_portfolio_of_its_positions(seed, cost_bps):
    """A baseline's portfolio is the one `portfolio_returns` gives a model that held the
    baseline's positions: bit for bit, on rows out of order, with NaN returns and costs."""
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in ("A", "B", "C", "D"):
        n = int(rng.integers(5, 40))
        dates = pd.bdate_range("2021-01-01", periods=60)[rng.integers(0, 20) :][:n]
        asset = rng.normal(0, 0.02, len(dates))
        asset[rng.random(len(dates)) < 0.05] = np.nan
        frames.append(pd.DataFrame({
            "ticker": ticker, "date": dates, "asset_log_return": asset,
            "majority_position": rng.choice([-1, 1], len(dates)).astype("int8"),
            "momentum_position": rng.choice([-1, 0, 1], len(dates)).astype("int8"),
        }))  # fmt: skip
    daily = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)
    daily["position"] = np.int8(1)
    daily["strategy_log_return"] = daily["asset_log_return"]
    found = baseline_portfolios(daily, cost_bps)
    held = {
        "long": np.ones(len(daily)),
        "majority": daily["majority_position"].to_numpy(dtype="float64"),
        "momentum": daily["momentum_position"].to_numpy(dtype="float64"),
        "reversal": -daily["momentum_position"].to_numpy(dtype="float64"),
    }
    for name, positions in held.items():
        as_model = daily.assign(
            position=positions, strategy_log_return=positions * daily["asset_log_return"]
        )
        pd.testing.assert_frame_equal(found[name], portfolio_returns(as_model, cost_bps))

"""Tests of pipeline.backtest.metrics: a hand-worked example, tables of edge cases, invariances,
properties, and equivalences with scipy's own tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import binomtest, false_discovery_control

from pipeline.backtest.metrics import (
    APPROX_BDAYS_PER_YEAR,
    accuracy,
    accuracy_p_value,
    benjamini_hochberg,
    cum_return,
    exposure,
    hit_rate,
    majority_rate,
    max_drawdown,
    net_log_returns,
    sharpe_ratio,
    strategy_log_returns,
    summarise,
    turnover,
)

NAN = math.nan

# ---------------------------------------------------------------------------------------------
# A hand-worked example: five evaluation rows t = 0..4.
#   positions pos_t      = [ 1,     1,    -1,     0,    1   ]
#   asset r_{t+1}        = [ 0.01, -0.02, -0.03,  0.04, 0.02]
#   targets sign r_{t+1} = [ 1,    -1,    -1,     1,    1   ]
# strategy s = pos * r   = [ 0.01, -0.02,  0.03,  0,    0.02], sum 0.04
#   cum_return = e^0.04 = 1.0408107741923882;  buy_hold = e^(0.01-0.02-0.03+0.04+0.02) = e^0.02
# |pos_t - pos_{t-1}| from flat = [1, 0, 2, 1, 1] (entry, hold, long->short, cover, re-enter)
#   cost at 10 bps = 0.001 per unit: [0.001, 0, 0.002, 0.001, 0.001], sum 0.005
#   cum_return_net = e^(0.04 - 0.005) = e^0.035;  turnover = 5 / 5 = 1.0
# sharpe: mean s = 0.008; deviations 0.002, -0.028, 0.022, -0.008, 0.012;
#   squares sum 4+784+484+64+144 = 1480e-6; var (ddof 1) = 370e-6
#   sharpe = 0.008 / sqrt(370e-6) * sqrt(252) = 6.6022109...
# max_drawdown: log equity cumsum s = [0.01, -0.01, 0.02, 0.02, 0.04];
#   peaks (start 0 included) [0.01, 0.01, 0.02, 0.02, 0.04]; deepest gap -0.02 on row 1
#   max_drawdown = 1 - e^-0.02 = 0.0198013...
# accuracy: hits on rows 0, 2, 4 -> 3 / 5 = 0.6
# hit_rate: rows with a position are 0, 1, 2, 4; hits 0, 2, 4 -> 3 / 4 = 0.75
# exposure: 4 of 5 rows hold a position -> 0.8
# majority_rate: targets hold three +1 and two -1 -> 3 / 5 = 0.6
# p_value: P(X >= 3), X ~ Bin(5, 0.6) = 10*.6^3*.4^2 + 5*.6^4*.4 + .6^5
#   = 0.3456 + 0.2592 + 0.07776 = 0.68256
# ---------------------------------------------------------------------------------------------
POSITIONS = [1, 1, -1, 0, 1]
ASSET_LOG_RETURNS = [0.01, -0.02, -0.03, 0.04, 0.02]
TARGETS = [1, -1, -1, 1, 1]
COST_BPS = 10.0

EXPECTED_SUMMARY = {
    "n_days": 5,
    "accuracy": 0.6,
    "cum_return": math.exp(0.04),
    "cum_return_net": math.exp(0.035),
    "buy_hold": math.exp(0.02),
    "sharpe": 0.008 / math.sqrt(370e-6) * math.sqrt(252),
    "max_drawdown": 1 - math.exp(-0.02),
    "hit_rate": 0.75,
    "turnover": 1.0,
    "exposure": 0.8,
    "majority_rate": 0.6,
    "p_value": 0.68256,
}


def test_hand_example_strategy_log_returns() -> None:
    actual = strategy_log_returns(POSITIONS, ASSET_LOG_RETURNS)
    np.testing.assert_allclose(actual, [0.01, -0.02, 0.03, 0.0, 0.02], rtol=0, atol=1e-15)


def test_hand_example_net_log_returns_charge_entry_and_reversal() -> None:
    actual = net_log_returns(POSITIONS, ASSET_LOG_RETURNS, COST_BPS)
    np.testing.assert_allclose(actual, [0.009, -0.02, 0.028, -0.001, 0.019], rtol=0, atol=1e-15)


def test_hand_example_summary() -> None:
    actual = summarise(POSITIONS, TARGETS, ASSET_LOG_RETURNS, COST_BPS)
    assert actual == pytest.approx(EXPECTED_SUMMARY, rel=1e-12)
    assert EXPECTED_SUMMARY["sharpe"] == pytest.approx(6.6022109, rel=1e-7)


def test_hand_example_each_metric_on_its_own() -> None:
    strategy = strategy_log_returns(POSITIONS, ASSET_LOG_RETURNS)
    assert cum_return(strategy) == pytest.approx(1.0408107741923882, rel=1e-14)
    assert sharpe_ratio(strategy) == pytest.approx(6.6022109318916185, rel=1e-12)
    assert max_drawdown(strategy) == pytest.approx(0.0198013266932447, rel=1e-12)
    assert accuracy(POSITIONS, TARGETS) == 0.6
    assert hit_rate(POSITIONS, TARGETS) == 0.75
    assert turnover(POSITIONS) == 1.0
    assert exposure(POSITIONS) == 0.8
    assert majority_rate(TARGETS) == 0.6


# ---------------------------------------------------------------------------------------------
# Tables of cases. NaN rows: a NaN log return propagates rather than being dropped.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("log_returns", "expected"),
    [
        pytest.param([], 1.0, id="empty"),
        pytest.param([0.05], math.exp(0.05), id="one_value"),
        pytest.param([0.0, 0.0, 0.0], 1.0, id="all_zero"),
        pytest.param([0.01] * 4, math.exp(0.04), id="constant"),
        pytest.param([0.1, -0.1], 1.0, id="round_trip"),
        pytest.param([0.01, NAN], NAN, id="nan"),
    ],
)
def test_cum_return_cases(log_returns: list[float], expected: float) -> None:
    assert cum_return(log_returns) == pytest.approx(expected, rel=1e-14, nan_ok=True)


@pytest.mark.parametrize(
    ("log_returns", "expected"),
    [
        pytest.param([], 0.0, id="empty"),
        pytest.param([0.01], 0.0, id="one_value"),
        pytest.param([0.0, 0.0, 0.0], 0.0, id="all_zero"),
        # np.std([0.1, 0.1, 0.1], ddof=1) is 1.7e-17, which would give a Sharpe of ~1e17.
        pytest.param([0.1, 0.1, 0.1], 0.0, id="constant"),
        # Unequal values whose std underflows to 0 (5e-324 is the smallest subnormal): not inf.
        pytest.param([5e-324, 0.0, 0.0, 0.0], 0.0, id="subnormal_spread"),
        # mean 0.02, std sqrt(2e-4): 0.02 / sqrt(2e-4) * sqrt(252) = sqrt(2 * 252)
        pytest.param([0.01, 0.03], math.sqrt(504), id="two_values"),
        pytest.param([-0.01, -0.03], -math.sqrt(504), id="two_losses"),
        pytest.param([0.01, NAN, 0.02], NAN, id="nan"),
    ],
)
def test_sharpe_ratio_cases(log_returns: list[float], expected: float) -> None:
    assert sharpe_ratio(log_returns) == pytest.approx(expected, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize(
    ("log_returns", "expected"),
    [
        pytest.param([], 0.0, id="empty"),
        pytest.param([0.05], 0.0, id="one_gain"),
        # The starting equity of 1 is a peak: a first-day loss is a drawdown.
        pytest.param([-0.05], 1 - math.exp(-0.05), id="one_loss"),
        pytest.param([0.0, 0.0, 0.0], 0.0, id="all_zero"),
        pytest.param([0.01] * 4, 0.0, id="constant_gain"),
        pytest.param([-0.01] * 4, 1 - math.exp(-0.04), id="constant_loss"),
        # peak at log 0.1, trough at -0.1, new high at 0.2: the fall is 0.2 in log terms
        pytest.param([0.1, -0.2, 0.3], 1 - math.exp(-0.2), id="fall_and_recovery"),
        # the second, deeper fall (0.3 from the peak at 0.5) beats the first (0.1)
        pytest.param([0.1, -0.1, 0.5, -0.3], 1 - math.exp(-0.3), id="two_falls"),
        pytest.param([0.01, NAN], NAN, id="nan"),
    ],
)
def test_max_drawdown_cases(log_returns: list[float], expected: float) -> None:
    assert max_drawdown(log_returns) == pytest.approx(expected, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize(
    ("predictions", "targets", "expected_accuracy", "expected_hit_rate"),
    [
        pytest.param([], [], NAN, NAN, id="empty"),
        pytest.param([1], [1], 1.0, 1.0, id="one_right"),
        pytest.param([1], [-1], 0.0, 0.0, id="one_wrong"),
        pytest.param([0, 0, 0], [1, -1, 0], 1 / 3, NAN, id="all_flat"),
        pytest.param([-1, -1, -1], [-1, 1, -1], 2 / 3, 2 / 3, id="constant_short"),
    ],
)
def test_accuracy_and_hit_rate_cases(
    predictions: list[int], targets: list[int], expected_accuracy: float, expected_hit_rate: float
) -> None:
    assert accuracy(predictions, targets) == pytest.approx(expected_accuracy, nan_ok=True)
    assert hit_rate(predictions, targets) == pytest.approx(expected_hit_rate, nan_ok=True)


def test_hit_rate_ignores_flat_days() -> None:
    # Rows 1-2 are flat and "right" (0 == 0); row 3 is flat and wrong. Only rows 0 and 4 hold a
    # position: one hit, one miss. Counting flat days would give 3 / 5 (or 1 / 3 with a miss).
    predictions = [1, 0, 0, 0, -1]
    targets = [1, 0, 0, 1, 1]
    assert hit_rate(predictions, targets) == 0.5
    assert accuracy(predictions, targets) == 0.6


@pytest.mark.parametrize(
    ("positions", "expected_turnover", "expected_exposure"),
    [
        pytest.param([], NAN, NAN, id="empty"),
        pytest.param([-1], 1.0, 1.0, id="one_value"),
        pytest.param([0, 0, 0, 0], 0.0, 0.0, id="all_zero"),
        pytest.param([1, 1, 1, 1], 0.25, 1.0, id="constant_long"),  # only the entry trades
        pytest.param([1, -1, 1], 5 / 3, 1.0, id="flip_flop"),  # 1 + 2 + 2 over 3 days
        pytest.param([0, 1, 0, -1], 3 / 4, 0.5, id="in_and_out"),
    ],
)
def test_turnover_and_exposure_cases(
    positions: list[int], expected_turnover: float, expected_exposure: float
) -> None:
    assert turnover(positions) == pytest.approx(expected_turnover, nan_ok=True)
    assert exposure(positions) == pytest.approx(expected_exposure, nan_ok=True)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        pytest.param([], NAN, id="empty"),
        pytest.param([-1], 1.0, id="one_value"),
        pytest.param([0, 0, 0], 1.0, id="all_zero"),
        pytest.param([1, -1, 1, 0, 1, -1], 0.5, id="three_classes"),
        pytest.param([-1, -1, 1], 2 / 3, id="down_majority"),
    ],
)
def test_majority_rate_cases(targets: list[int], expected: float) -> None:
    assert majority_rate(targets) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("positions", "asset_log_returns", "cost_bps", "expected"),
    [
        pytest.param([], [], 10.0, [], id="empty"),
        # entering from flat costs 25 bps = 0.0025 on the first row
        pytest.param([1], [0.01], 25.0, [0.0075], id="one_value_pays_entry"),
        pytest.param([0, 0], [0.01, -0.02], 25.0, [0.0, 0.0], id="all_flat_pays_nothing"),
        pytest.param([1, 1], [0.01, 0.01], 0.0, [0.01, 0.01], id="no_cost"),
        pytest.param([-1, 1], [0.0, 0.0], 10.0, [-0.001, -0.002], id="reversal_pays_twice"),
    ],
)
def test_net_log_returns_cases(
    positions: list[int], asset_log_returns: list[float], cost_bps: float, expected: list[float]
) -> None:
    actual = net_log_returns(positions, asset_log_returns, cost_bps)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Summary shape, plain types, the empty case and errors.
# ---------------------------------------------------------------------------------------------
def test_summarise_gives_plain_python_numbers_under_the_summary_keys() -> None:
    summary = summarise(np.array(POSITIONS), np.array(TARGETS), np.array(ASSET_LOG_RETURNS), 10)
    assert list(summary) == list(EXPECTED_SUMMARY)
    assert type(summary["n_days"]) is int
    assert all(type(value) is float for key, value in summary.items() if key != "n_days")
    assert json.loads(json.dumps(summary)) == summary


def test_summarise_without_rows_gives_documented_values() -> None:
    summary = summarise([], [], [], COST_BPS)
    assert summary == pytest.approx(
        {
            "n_days": 0,
            "accuracy": NAN,
            "cum_return": 1.0,
            "cum_return_net": 1.0,
            "buy_hold": 1.0,
            "sharpe": 0.0,
            "max_drawdown": 0.0,
            "hit_rate": NAN,
            "turnover": NAN,
            "exposure": NAN,
            "majority_rate": NAN,
            "p_value": 1.0,
        },
        nan_ok=True,
    )
    assert type(summary["n_days"]) is int


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: summarise([1, 1], [1], [0.1, 0.2], 0.0),
            r"'targets'.*\(2 rows\). Got 1",
            id="targets",
        ),
        pytest.param(
            lambda: strategy_log_returns([1], [0.1, 0.2]),
            r"'asset_log_returns'.*Got 2",
            id="returns",
        ),
        pytest.param(lambda: accuracy([[1]], [[1]]), r"'predictions'.*one-dimensional", id="2d"),
        pytest.param(lambda: net_log_returns([1], [0.1], -1.0), r"'cost_bps'.*Got -1.0", id="cost"),
        pytest.param(
            lambda: net_log_returns([1], [0.1], NAN), r"'cost_bps'.*Got nan", id="nan_cost"
        ),
        pytest.param(lambda: accuracy_p_value(6, 5, 0.5), r"'n_correct'.*Got 6", id="n_correct"),
        pytest.param(lambda: accuracy_p_value(2, 5, 1.5), r"'null_rate'.*Got 1.5", id="null_rate"),
        pytest.param(lambda: benjamini_hochberg([0.1, 1.2]), r"'p_values'.*1.2", id="p_values"),
    ],
)
def test_bad_arguments_raise_a_message_naming_them(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_inputs_are_not_mutated() -> None:
    positions = np.array(POSITIONS, dtype=float)
    returns = np.array(ASSET_LOG_RETURNS)
    p_values = np.array([0.3, 0.01, NAN])
    summarise(positions, np.array(TARGETS), returns, COST_BPS)
    benjamini_hochberg(p_values)
    np.testing.assert_array_equal(positions, POSITIONS)
    np.testing.assert_array_equal(returns, ASSET_LOG_RETURNS)
    np.testing.assert_array_equal(p_values, [0.3, 0.01, NAN])


# ---------------------------------------------------------------------------------------------
# Invariances.
# ---------------------------------------------------------------------------------------------
# |r| <= 0.1 over <= 100 days bounds a drawdown at 1 - e^-20; past 1 - e^-37 it rounds to 1.0.
log_returns_lists = st.lists(
    st.floats(-0.1, 0.1, allow_nan=False, allow_subnormal=False), min_size=0, max_size=100
)
position_lists = st.lists(st.sampled_from([-1, 0, 1]), min_size=0, max_size=100)


@given(log_returns_lists)
def test_always_long_earns_buy_and_hold_and_always_short_its_inverse(asset: list[float]) -> None:
    buy_hold = cum_return(asset)
    long_only = strategy_log_returns(np.ones(len(asset)), asset)
    short_only = strategy_log_returns(-np.ones(len(asset)), asset)
    assert cum_return(long_only) == buy_hold
    assert cum_return(short_only) == pytest.approx(1 / buy_hold, rel=1e-12)


@given(log_returns_lists, st.integers(1, 50))
def test_max_drawdown_ignores_a_flat_period_before_and_stays_in_unit_interval(
    log_returns: list[float], n_flat: int
) -> None:
    drawdown = max_drawdown(log_returns)
    assert max_drawdown([0.0] * n_flat + log_returns) == drawdown
    assert 0.0 <= drawdown < 1.0


def test_max_drawdown_does_not_ignore_a_losing_period_before() -> None:
    # Guards the test above: prepending anything that is not flat does change the drawdown.
    assert max_drawdown([-0.1, 0.05]) != max_drawdown([0.05])


@given(log_returns_lists, st.floats(1e-3, 1e3))
def test_sharpe_ratio_is_unchanged_by_scaling_returns(
    log_returns: list[float], scale: float
) -> None:
    assume(len(log_returns) >= 2 and np.ptp(log_returns) > 1e-3)
    scaled = np.asarray(log_returns) * scale
    assert sharpe_ratio(scaled) == pytest.approx(sharpe_ratio(log_returns), rel=1e-9, abs=1e-9)


def test_sharpe_ratio_uses_sample_std_and_252_days() -> None:
    log_returns = np.array([0.02, -0.01, 0.005, 0.03])
    expected = log_returns.mean() / log_returns.std(ddof=1) * math.sqrt(APPROX_BDAYS_PER_YEAR)
    assert APPROX_BDAYS_PER_YEAR == 252
    assert sharpe_ratio(log_returns) == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------------------------------------
# Properties of costs (alignment of the cost with the position change that causes it).
# ---------------------------------------------------------------------------------------------
@st.composite
def aligned_rows(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    positions = draw(position_lists)
    returns = draw(
        st.lists(
            st.floats(-0.2, 0.2, allow_nan=False), min_size=len(positions), max_size=len(positions)
        )
    )
    return positions, returns


@given(aligned_rows(), st.floats(1e-3, 500.0))
def test_costs_never_raise_the_return(rows: tuple[list[int], list[float]], cost_bps: float) -> None:
    positions, asset = rows
    net = cum_return(net_log_returns(positions, asset, cost_bps))
    gross = cum_return(strategy_log_returns(positions, asset))
    assert net <= gross
    if any(positions):  # entering from flat always costs something
        assert net < gross


@given(aligned_rows(), st.floats(0.0, 500.0))
def test_total_cost_is_cost_rate_times_turnover_times_days(
    rows: tuple[list[int], list[float]], cost_bps: float
) -> None:
    positions, asset = rows
    assume(positions)
    paid = strategy_log_returns(positions, asset) - net_log_returns(positions, asset, cost_bps)
    expected = cost_bps / 1e4 * turnover(positions) * len(positions)
    assert paid.sum() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert paid[0] == pytest.approx(cost_bps / 1e4 * abs(positions[0]), abs=1e-15)


# ---------------------------------------------------------------------------------------------
# The binomial p-value, against scipy's own test.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_correct", "n_days", "null_rate"),
    [
        pytest.param(3, 5, 0.6, id="hand_example"),
        pytest.param(60, 100, 0.5, id="coin"),
        pytest.param(0, 10, 0.3, id="none_right"),
        pytest.param(10, 10, 0.5, id="all_right"),
        pytest.param(2650, 5000, 0.52, id="twenty_years"),
        pytest.param(1, 4, 1.0, id="certain_null"),
    ],
)
def test_accuracy_p_value_matches_scipy_binomtest(
    n_correct: int, n_days: int, null_rate: float
) -> None:
    expected = binomtest(n_correct, n_days, null_rate, alternative="greater").pvalue
    assert accuracy_p_value(n_correct, n_days, null_rate) == pytest.approx(expected, rel=1e-10)


def test_accuracy_p_value_without_days_is_one() -> None:
    assert accuracy_p_value(0, 0, 0.5) == 1.0


def test_accuracy_p_value_hand_values() -> None:
    assert accuracy_p_value(3, 5, 0.6) == pytest.approx(0.68256, rel=1e-12)
    assert accuracy_p_value(5, 5, 0.5) == pytest.approx(1 / 32, rel=1e-12)  # P(X >= 5), not > 5


# ---------------------------------------------------------------------------------------------
# Benjamini-Hochberg.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([0.2], [0.2], id="one_value"),
        # sorted 0.01, 0.03, 0.04, 0.2 -> * 4 / rank: 0.04, 0.06, 0.0533, 0.2 -> running min
        # from the top: 0.04, 0.0533, 0.0533, 0.2, put back in input order
        pytest.param([0.01, 0.04, 0.03, 0.2], [0.04, 0.16 / 3, 0.16 / 3, 0.2], id="hand_four"),
        # NaN is not a test: m = 2, so 0.01 * 2 / 1 = 0.02 (m = 3 would give 0.03)
        pytest.param([0.01, NAN, 0.04], [0.02, NAN, 0.04], id="nan_not_counted"),
        pytest.param([NAN, NAN], [NAN, NAN], id="all_nan"),
        pytest.param([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], id="constant"),
    ],
)
def test_benjamini_hochberg_cases(p_values: list[float], expected: list[float]) -> None:
    q_values = benjamini_hochberg(p_values)
    assert isinstance(q_values, np.ndarray)
    np.testing.assert_allclose(q_values, expected, rtol=1e-12)


p_value_lists = st.lists(st.one_of(st.floats(0.0, 1.0), st.just(NAN)), min_size=0, max_size=60)


@given(p_value_lists)
def test_benjamini_hochberg_properties(p_values: list[float]) -> None:
    p = np.asarray(p_values, dtype=float)
    q = benjamini_hochberg(p)
    tested = ~np.isnan(p)
    np.testing.assert_array_equal(np.isnan(q), ~tested)
    p, q = p[tested], q[tested]
    assert np.all(q >= p)
    assert np.all(q <= 1.0)
    in_p_order = q[np.argsort(p, kind="stable")]
    assert np.all(np.diff(in_p_order) >= 0)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_benjamini_hochberg_matches_scipy(p_values: list[float]) -> None:
    expected = false_discovery_control(p_values, method="bh")
    np.testing.assert_allclose(benjamini_hochberg(p_values), expected, rtol=1e-12, atol=0)

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.backtest.features import build_design
from pipeline.backtest.fitting import (
    ConstantModel,
    FastLearner,
    PlainLearner,
    RunningCounts,
    all_patterns,
    group_rows,
    make_learner,
    pattern_codes,
    table_predictions,
)
from pipeline.backtest.task import backtest_ticker
from pipeline.config import ModelConfig

# The article's five and fifteen more with a full 2009-2018 history in the shared sample.
TWENTY_TICKERS = (
    "KO", "XOM", "AAPL", "IBM", "MCD", "AAL", "AAP", "ADSK", "ANTM", "AOS",
    "APA", "APH", "AVB", "BIIB", "CE", "CF", "CHRW", "CI", "CLX", "MSFT",
)  # fmt: skip


def test_group_rows_finds_distinct_pairs_and_patterns() -> None:
    features = np.array([[1, -1], [0, 1], [1, -1], [1, -1], [0, 1]], dtype=np.int8)
    targets = np.array([1, 1, 1, -1, 1], dtype=np.int8)
    rows = group_rows(features, targets)
    assert len(rows.pair_targets) == 3  # ([1,-1],1), ([0,1],1), ([1,-1],-1)
    assert len(rows.patterns) == 2
    np.testing.assert_array_equal(rows.pair_features[rows.pair_of_row], features)
    np.testing.assert_array_equal(rows.pair_targets[rows.pair_of_row], targets)
    np.testing.assert_array_equal(rows.patterns[rows.pattern_of_row], features)


@given(
    ids=st.lists(st.integers(0, 4), min_size=1, max_size=40),
    moves=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=8),
)
@settings(max_examples=60, deadline=None)
def test_running_counts_equal_a_fresh_count(ids: list[int], moves: list[tuple[int, int]]) -> None:
    ids_array = np.array(ids)
    counts = RunningCounts(ids_array, n_ids=5)
    start = stop = 0
    for grow_start, grow_stop in moves:
        stop = min(stop + grow_stop, len(ids))
        start = min(start + grow_start, stop)
        got = counts.slide_to(start, stop)
        np.testing.assert_array_equal(got, np.bincount(ids_array[start:stop], minlength=5))


def test_running_counts_refuse_to_move_back() -> None:
    counts = RunningCounts(np.zeros(10, dtype=np.intp), n_ids=1)
    counts.slide_to(3, 8)
    with pytest.raises(ValueError, match=r"only move forward: from \[3, 8\) to \[2, 9\)"):
        counts.slide_to(2, 9)


@pytest.mark.parametrize(
    ("fast_path", "params", "expected"),
    [
        (True, {}, FastLearner),
        (False, {}, PlainLearner),
        (True, {"class_weight": "balanced"}, PlainLearner),
    ],
    ids=["fast", "fast-off", "not-exact"],
)
def test_make_learner_uses_the_fast_path_only_where_exact(
    fast_path: bool, params: dict, expected: type
) -> None:
    model = ModelConfig(fast_path=fast_path, params=params)
    features, targets = np.zeros((4, 2), dtype=np.int8), np.array([1, -1, 1, -1], dtype=np.int8)
    assert type(make_learner(model, features, targets)) is expected


def test_forest_never_takes_the_fast_path() -> None:
    model = ModelConfig(kind="random_forest", fast_path=True)
    features, targets = np.zeros((4, 2), dtype=np.int8), np.array([1, -1, 1, -1], dtype=np.int8)
    assert type(make_learner(model, features, targets)) is PlainLearner


@pytest.mark.parametrize("learner", [FastLearner, PlainLearner], ids=["fast", "plain"])
def test_a_one_class_block_predicts_that_class(learner: type) -> None:
    features = np.array([[1, 0], [0, 1], [1, 1], [-1, -1], [1, -1]], dtype=np.int8)
    targets = np.array([-1, -1, -1, 1, 1], dtype=np.int8)
    positions, one_class = learner(ModelConfig(), features, targets).fit_predict(
        slice(0, 3), slice(3, 5)
    )
    assert one_class
    assert positions.tolist() == [-1, -1]
    assert positions.dtype == np.int8


def test_constant_model_predicts_its_label() -> None:
    assert ConstantModel(0).predict(np.zeros((3, 4))).tolist() == [0, 0, 0]


def _positions(prices, backtest_settings) -> np.ndarray:
    result = backtest_ticker("T", prices, backtest_settings)
    assert result.status == "ok", result.reason
    return result.daily["position"].to_numpy()


@pytest.fixture(scope="module")
def real_prices(sample_prices) -> dict:
    return {ticker: sample_prices(ticker, "2009-01-01", "2018-12-31") for ticker in TWENTY_TICKERS}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tol", "min_agreement"),
    [(1e-6, 1.0), (None, 1.0), (1e-3, 0.995)],
    ids=["tol-1e-6-identical", "default-identical", "sklearn-tol-1e-3-99.5pct"],
)
def test_fast_path_matches_the_plain_fit_on_twenty_real_tickers(
    tol: float | None, min_agreement: float, real_prices: dict, make_settings
) -> None:
    params = {} if tol is None else {"tol": tol}
    agreement = {}
    for ticker, prices in real_prices.items():
        fast = _positions(prices, make_settings(mode="in_sample", model={"params": params}))
        plain = _positions(
            prices, make_settings(mode="in_sample", model={"params": params, "fast_path": False})
        )
        agreement[ticker] = np.mean(fast == plain)
    worst = min(agreement, key=agreement.__getitem__)
    assert agreement[worst] >= min_agreement, f"{worst}: {agreement[worst]:.4%} of days agree"


@pytest.mark.parametrize(
    ("mode", "window", "seed"),
    [
        ("in_sample", "expanding", 0),
        ("holdout", "expanding", 1),
        ("walk_forward", "expanding", 2),
        ("walk_forward", "rolling", 3),
    ],
    ids=["in_sample", "holdout", "walk_forward-expanding", "walk_forward-rolling"],
)
def test_fast_path_matches_the_plain_fit_with_many_flat_days(
    mode: str, window: str, seed: int, walk, make_settings
) -> None:
    prices = walk(700, seed=seed, zero_share=0.35)
    common = {"mode": mode, "window": window, "train_days": 250, "retrain_every": 63}
    fast = _positions(prices, make_settings(model={"params": {"tol": 1e-6}}, **common))
    plain = _positions(
        prices, make_settings(model={"params": {"tol": 1e-6}, "fast_path": False}, **common)
    )
    assert 0 in build_design(prices, 6).targets
    np.testing.assert_array_equal(fast, plain)


@pytest.mark.slow
@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_fast_path_matches_the_plain_fit_walking_forward_on_real_prices(
    window: str, sample_prices, make_settings
) -> None:
    prices = sample_prices("KO", "2013-01-01", "2018-12-31")
    common = {"mode": "walk_forward", "window": window, "train_days": 252, "retrain_every": 63}
    model = {"params": {"tol": 1e-6}}
    fast = _positions(prices, make_settings(model=model, **common))
    plain = _positions(prices, make_settings(model={**model, "fast_path": False}, **common))
    np.testing.assert_array_equal(fast, plain)


@given(lags=st.integers(1, 7))
@settings(max_examples=20, deadline=None)
def test_pattern_codes_number_every_sign_pattern_once(lags: int) -> None:
    patterns = all_patterns(lags)
    assert patterns.shape == (3**lags, lags) and patterns.dtype == np.int8
    np.testing.assert_array_equal(pattern_codes(patterns), np.arange(3**lags))
    assert len(np.unique(patterns, axis=0)) == 3**lags


@given(
    seed=st.integers(0, 10_000),
    lags=st.integers(1, 5),
    n_train=st.integers(8, 120),
    n_predict=st.integers(1, 60),
    kind=st.sampled_from(["svc", "logistic_regression", "linear_svc", "random_forest"]),
    learner=st.sampled_from([FastLearner, PlainLearner]),
)
@settings(max_examples=60, deadline=None)
def test_a_pattern_table_predicts_what_the_fitted_model_predicts(
    seed: int, lags: int, n_train: int, n_predict: int, kind: str, learner: type
) -> None:
    """Rows predicted from the last fit's table equal its own predictions of those rows, for
    every estimator and either learner: what lets a later run skip that fit."""
    rng = np.random.default_rng(seed)
    features = rng.integers(-1, 2, size=(n_train + n_predict, lags)).astype(np.int8)
    targets = rng.choice(np.array([-1, 1], dtype=np.int8), size=n_train + n_predict)
    fitter = learner(ModelConfig(kind=kind), features, targets)
    predict = slice(n_train, n_train + n_predict)
    positions, _ = fitter.fit_predict(slice(0, n_train), predict)
    table = fitter.pattern_table()
    assert table.shape == (3**lags,) and table.dtype == np.int8
    np.testing.assert_array_equal(table_predictions(table, features[predict]), positions)


def test_a_pattern_table_needs_a_fit_first() -> None:
    features = np.zeros((4, 2), dtype=np.int8)
    fitter = FastLearner(ModelConfig(), features, np.array([1, -1, 1, -1], dtype=np.int8))
    with pytest.raises(RuntimeError):
        fitter.pattern_table()

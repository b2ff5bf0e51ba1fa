from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC, LinearSVC

from pipeline.backtest.features import build_design
from pipeline.backtest.fitting import FastLearner, PlainLearner
from pipeline.backtest.models import (
    RANDOM_SEED,
    EstimatorSpec,
    check_model_params,
    known_model_kinds,
    make_estimator,
    weighted_fit_is_exact,
)
from pipeline.config import ModelConfig, load_config
from pipeline.errors import ConfigError
from tests.conftest import REPO_ROOT


def test_the_four_kinds_are_known() -> None:
    assert {"svc", "linear_svc", "logistic_regression", "random_forest"} <= known_model_kinds()


@pytest.mark.parametrize(
    ("kind", "cls", "expected"),
    [
        ("svc", SVC, {"gamma": "auto", "tol": 1e-6, "C": 1.0, "kernel": "rbf"}),
        ("linear_svc", LinearSVC, {"random_state": RANDOM_SEED}),
        ("logistic_regression", LogisticRegression, {"random_state": RANDOM_SEED}),
        ("random_forest", RandomForestClassifier, {"random_state": RANDOM_SEED}),
    ],
    ids=["svc", "linear_svc", "logistic_regression", "random_forest"],
)
def test_defaults_match_the_method_and_random_ones_are_seeded(
    kind: str, cls: type, expected: dict[str, Any]
) -> None:
    estimator = make_estimator(kind, {})
    assert type(estimator) is cls
    assert expected.items() <= estimator.get_params().items()


def test_user_params_override_the_defaults() -> None:
    estimator = make_estimator("svc", {"gamma": 0.5, "C": 2.0})
    assert (estimator.gamma, estimator.C) == (0.5, 2.0)


@pytest.mark.parametrize(
    "params",
    [{}, {"C": 2.0}, {"gamma": "auto"}, {"gamma": 0.5}, {"tol": 1e-3}],
    ids=["none", "C-only", "gamma-only", "other-gamma", "other-tol"],
)
def test_method_defaults_hold_for_every_key_a_config_leaves_out(params: dict[str, Any]) -> None:
    # A config giving model.params for one key keeps METHOD.md's value of the others.
    estimator = make_estimator("svc", params)
    expected = {"gamma": "auto", "tol": 1e-6, "C": 1.0, **params}
    assert {key: estimator.get_params()[key] for key in expected} == expected


def test_a_config_without_model_params_gets_the_method_svc() -> None:
    config = load_config(
        {"data": {"source": "synthetic", "start": "2020-01-01", "end": "2020-12-31"}}
    )
    estimator = make_estimator(config.model.kind, config.model.params)
    assert (estimator.gamma, estimator.tol) == ("auto", 1e-6)


def test_a_bad_param_name_is_a_config_error_naming_it() -> None:
    raw = {"data": {"source": "synthetic", "start": "2015-01-01"}, "model": {"params": {"gama": 1}}}
    with pytest.raises(ConfigError, match=r"model.params: 'gama' is not a parameter of SVC.*gamma"):
        load_config(raw)


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("svc", {"C": -1}, r"The 'C' parameter of SVC must be"),
        ("svc", {"kernal": "rbf"}, r"'kernal' is not a parameter of SVC"),
        ("random_forest", {"n_estimators": 0}, r"'n_estimators' parameter of RandomForest"),
    ],
    ids=["bad-value", "bad-name", "bad-forest-value"],
)
def test_check_model_params_names_the_bad_param(
    kind: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_model_params(kind, params)


def test_check_model_params_accepts_good_params() -> None:
    check_model_params("svc", {"C": 2.0, "tol": 1e-6})


@pytest.mark.parametrize(
    ("kind", "params", "exact"),
    [
        ("svc", {}, True),
        ("svc", {"class_weight": "balanced"}, False),
        ("svc", {"class_weight": {-1: 2.0, 1: 1.0}}, True),
        ("linear_svc", {}, True),
        ("linear_svc", {"class_weight": "balanced"}, True),
        ("logistic_regression", {}, True),
        ("random_forest", {}, False),
    ],
    ids=[
        "svc",
        "svc-balanced",
        "svc-dict-weights",
        "linear_svc",
        "linear_svc-balanced",
        "logistic",
        "forest",
    ],
)
def test_which_estimators_are_declared_exact(
    kind: str, params: dict[str, Any], exact: bool
) -> None:
    assert weighted_fit_is_exact(kind, params) is exact


# Each claim checked: the weighted fit of distinct rows against the fit of every row, on real
# prices, with the solver's tolerance tightened.
CLAIMS = [
    ("svc", {"tol": 1e-6}, True),
    ("svc", {"tol": 1e-6, "class_weight": "balanced"}, False),
    ("linear_svc", {"tol": 1e-6}, True),
    ("linear_svc", {"tol": 1e-6, "class_weight": "balanced"}, True),
    ("logistic_regression", {"tol": 1e-8}, True),
    ("logistic_regression", {"tol": 1e-8, "class_weight": "balanced"}, True),
    ("random_forest", {}, False),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "params", "exact"),
    CLAIMS,
    ids=[
        "svc",
        "svc-balanced",
        "linear_svc",
        "linear_svc-balanced",
        "logistic",
        "logistic-balanced",
        "forest",
    ],
)
def test_weighted_fit_agrees_with_the_plain_fit_exactly_where_declared(
    kind: str, params: dict[str, Any], exact: bool, sample_prices
) -> None:
    model = ModelConfig(kind=kind, params=params)
    assert weighted_fit_is_exact(kind, params) is exact
    agreement = []
    for ticker in ("KO", "XOM", "IBM"):
        design = build_design(sample_prices(ticker, "2013-01-01", "2018-12-31"), lags=6)
        rows = slice(0, design.n_rows)
        fast, _ = FastLearner(model, design.features, design.targets).fit_predict(rows, rows)
        plain, _ = PlainLearner(model, design.features, design.targets).fit_predict(rows, rows)
        agreement.append(np.mean(fast == plain))
    if exact:
        assert agreement == [1.0, 1.0, 1.0]
    else:
        assert min(agreement) < 0.99


def test_reading_a_config_and_planning_a_run_do_not_import_scikit_learn() -> None:
    """A run whose every ticker reuses its stored results never fits, so it must not pay for
    scikit-learn's imports; the first estimator built imports its class."""
    script = textwrap.dedent(
        """
        import sys
        import pipeline.cli, pipeline.runner, pipeline.execution.jobs
        from pipeline.config import load_config
        from pipeline.backtest.models import make_estimator
        for kind in ("svc", "logistic_regression"):
            load_config({"data": {"source": "synthetic", "tickers": ["AAA"],
                                  "start": "2020-01-01", "end": "2021-01-01"},
                         "model": {"kind": kind}})
        assert not any(name.split(".")[0] == "sklearn" for name in sys.modules), "imported"
        print(type(make_estimator("svc", {})).__module__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("sklearn.svm")


def test_a_registry_entry_names_its_class_by_import_path_or_holds_it() -> None:
    assert EstimatorSpec("sklearn.svm.SVC", {}, weighted_fit_exact=True).factory is SVC
    assert EstimatorSpec(LinearSVC, {}, weighted_fit_exact=True).factory is LinearSVC


# --- deferring the estimator's import (the pool's fitting worker) --------------------------

FAKE_MODULE = "tests.execution.fake_estimator"


def test_inside_the_deferring_block_an_unloaded_estimator_raises_instead_of_importing() -> None:
    from pipeline.backtest import models

    spec = models.EstimatorSpec(f"{FAKE_MODULE}.FakeEstimator", {}, weighted_fit_exact=True)
    loaded = models.EstimatorSpec("collections.OrderedDict", {}, weighted_fit_exact=True)
    sys.modules.pop(FAKE_MODULE, None)
    try:
        with models.deferring_estimator_imports():
            assert loaded.factory is OrderedDict  # its module is loaded: nothing to defer
            with models.deferring_estimator_imports():
                pass
            with pytest.raises(models.EstimatorImportDeferred):
                _ = spec.factory  # still deferring after the inner block ended
            assert FAKE_MODULE not in sys.modules
        assert spec.factory.__name__ == "FakeEstimator"  # outside: imported as usual
        with models.deferring_estimator_imports():
            assert spec.factory.__name__ == "FakeEstimator"
    finally:
        sys.modules.pop(FAKE_MODULE, None)


def test_the_deferral_passes_through_the_handlers_of_a_ticker_s_task() -> None:
    """A BaseException: the task's `except Exception` (one failed ticker) lets it through."""
    from pipeline.backtest import models

    assert not issubclass(models.EstimatorImportDeferred, Exception)
    assert issubclass(models.EstimatorImportDeferred, BaseException)


def test_defer_if_not_imported_raises_only_while_deferring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.backtest import models

    models.defer_if_not_imported("svc")  # not deferring: nothing happens
    monkeypatch.setattr(models, "estimator_is_imported", lambda kind: False)
    models.defer_if_not_imported("svc")
    with models.deferring_estimator_imports(), pytest.raises(models.EstimatorImportDeferred):
        models.defer_if_not_imported("svc")
    monkeypatch.setattr(models, "estimator_is_imported", lambda kind: True)
    with models.deferring_estimator_imports():
        models.defer_if_not_imported("svc")

"""Estimators by name: the SVC of METHOD.md by default, a few other classifiers beside it.

Each entry also states whether the fast path (fit each distinct row once, weighted by its count;
METHOD.md, "Exactness of a weighted fit") solves the same problem as fitting every row. That
holds where the estimator minimises a sum of per-row losses scaled by `sample_weight` with a
deterministic solver; tests/backtest/test_models.py checks each claim against the plain fit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

RANDOM_SEED = 0
# The model of METHOD.md: `SVC(gamma="auto", tol=1e-6)`; the keys of `model.params` override these.
SVC_DEFAULTS: Mapping[str, Any] = {"gamma": "auto", "tol": 1e-6}


@dataclass(frozen=True, slots=True)
class EstimatorSpec:
    """How to build one kind of estimator.

    `estimator` is the class or its import path. scikit-learn's are paths, imported when an
    estimator is first built rather than when a config is read: a run whose every ticker
    reuses its stored results (and `pipeline --help`) never pays their second of imports.
    `defaults` are overridden by the user's params. `weighted_fit_exact` says whether the fast
    path is exact for it; `inexact_params` lists parameter values that break that (e.g. SVC
    counts classes for class_weight="balanced" without looking at sample_weight).
    """

    estimator: str | Callable[..., ClassifierMixin]
    defaults: Mapping[str, Any]
    weighted_fit_exact: bool
    inexact_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def factory(self) -> Callable[..., ClassifierMixin]:
        if not isinstance(self.estimator, str):
            return self.estimator
        module, name = self.estimator.rsplit(".", 1)
        if _deferring and module not in sys.modules:
            raise EstimatorImportDeferred(module)
        return getattr(importlib.import_module(module), name)


class EstimatorImportDeferred(BaseException):
    """Raised inside `deferring_estimator_imports` where building an estimator would import
    its module: the work that needs the model is left to a process that has it loaded.

    A BaseException, as KeyboardInterrupt is, so that it passes through the task's handlers,
    which turn any Exception into one failed ticker: this is no failure of the ticker.
    """


# Whether this process defers estimator imports now (the pool's workers are single-threaded).
_deferring = False


@contextmanager
def deferring_estimator_imports() -> Iterator[None]:
    """Within the block, an estimator whose module is not imported yet raises
    EstimatorImportDeferred instead of importing it (0.9 s of scikit-learn and scipy.stats)."""
    global _deferring
    previous, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = previous


_REGISTRY: dict[str, EstimatorSpec] = {
    # libsvm scales C per row by sample_weight; the duplicate rows of a pair share one slack.
    # METHOD.md's SVC: at scikit-learn's tol=1e-3 near-tie votes flip between the plain fit
    # and the fast path; at 1e-6 they agree.
    "svc": EstimatorSpec(
        "sklearn.svm.SVC",
        SVC_DEFAULTS,
        weighted_fit_exact=True,
        inexact_params={"class_weight": "balanced"},
    ),
    # liblinear: a strictly convex primal whose loss terms are scaled by sample_weight, and
    # class_weight="balanced" is computed from the weights.
    "linear_svc": EstimatorSpec(
        "sklearn.svm.LinearSVC", {"random_state": RANDOM_SEED}, weighted_fit_exact=True
    ),
    # The same holds for the L2-penalised log loss of LogisticRegression.
    "logistic_regression": EstimatorSpec(
        "sklearn.linear_model.LogisticRegression",
        {"random_state": RANDOM_SEED},
        weighted_fit_exact=True,
    ),
    # Bootstrap samples draw rows, so one row of weight 40 is not forty rows: not exact.
    "random_forest": EstimatorSpec(
        "sklearn.ensemble.RandomForestClassifier",
        {"random_state": RANDOM_SEED, "n_jobs": 1},
        weighted_fit_exact=False,
    ),
}

# A toy problem on which a bad parameter value fails the way it would on real data.
_TOY_FEATURES = np.array([[-1, 1], [1, -1], [1, 1], [-1, -1]], dtype=np.int8)
_TOY_TARGETS = np.array([-1, 1, 1, -1], dtype=np.int8)


def import_estimators() -> None:
    """Import every estimator's module now (a fork server, whose workers all fit)."""
    for spec in _REGISTRY.values():
        _ = spec.factory


def estimator_is_imported(kind: str) -> bool:
    """Whether building an estimator of `kind` imports nothing more."""
    estimator = _REGISTRY[kind].estimator
    return not isinstance(estimator, str) or estimator.rsplit(".", 1)[0] in sys.modules


def defer_if_not_imported(kind: str) -> None:
    """Inside `deferring_estimator_imports`, raise EstimatorImportDeferred now when building an
    estimator of `kind` would import its module: before a step that leaves a trace (moving a
    stored result aside), in work that needs a model whatever it finds."""
    if _deferring and not estimator_is_imported(kind):
        raise EstimatorImportDeferred(_REGISTRY[kind].estimator)


def known_model_kinds() -> frozenset[str]:
    return frozenset(_REGISTRY)


def make_estimator(kind: str, params: Mapping[str, Any]) -> ClassifierMixin:
    """A fresh, unfitted estimator of `kind` with `params` applied over its defaults.

    Raises ConfigError naming the parameter when `params` has a name the estimator lacks.
    """
    try:
        _check_param_names(kind, params)
    except ValueError as exc:
        raise ConfigError(f"model.params: {exc}") from None
    return _REGISTRY[kind].factory(**estimator_params(kind, params))


def estimator_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters an estimator of `kind` is built with: its defaults, then `params`."""
    return {**_REGISTRY[kind].defaults, **params}


def check_model_params(kind: str, params: Mapping[str, Any]) -> None:
    """Raise ValueError when `params` has a name or a value the estimator of `kind` rejects.

    Meant for config validation, before any data is touched: the names are checked against the
    estimator's own, the values by fitting it once on a four-row toy problem. No params: the
    registry's defaults, nothing to check.
    """
    if not params:
        return
    _check_param_names(kind, params)
    spec = _REGISTRY[kind]
    estimator = spec.factory(**{**spec.defaults, **params})
    try:
        estimator.fit(_TOY_FEATURES, _TOY_TARGETS)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    except Exception:  # not a parameter problem; the task reports it per ticker
        return


def weighted_fit_is_exact(kind: str, params: Mapping[str, Any]) -> bool:
    """Whether the fast path gives the plain fit's model for `kind` with `params` (up to solver
    tolerance)."""
    spec = _REGISTRY[kind]
    breaks = any(params.get(name) == value for name, value in spec.inexact_params.items())
    return spec.weighted_fit_exact and not breaks


def _check_param_names(kind: str, params: Mapping[str, Any]) -> None:
    valid = _param_names(kind)
    unknown = sorted(set(params) - valid)
    if unknown:
        name = _REGISTRY[kind].factory.__name__
        raise ValueError(
            f"{unknown[0]!r} is not a parameter of {name} (model.kind = {kind!r}); "
            f"valid: {', '.join(sorted(valid))}"
        )


@cache
def _param_names(kind: str) -> frozenset[str]:
    """The parameter names of `kind`'s estimator. Once per process: scikit-learn reads them
    from the constructor's signature, about a millisecond, and every ticker's task checks."""
    return frozenset(_REGISTRY[kind].factory().get_params(deep=False))

"""Estimators by name: the SVC of METHOD.md by default, a few other classifiers beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC, LinearSVC

from pipeline.config import ModelConfig

RANDOM_SEED = 0

# name -> (estimator class, defaults that user params override)
_REGISTRY: dict[str, tuple[Callable[..., ClassifierMixin], dict[str, Any]]] = {
    "svc": (SVC, {"gamma": "auto"}),
    "linear_svc": (LinearSVC, {"random_state": RANDOM_SEED}),
    "logistic_regression": (LogisticRegression, {"random_state": RANDOM_SEED}),
    "random_forest": (RandomForestClassifier, {"random_state": RANDOM_SEED, "n_jobs": 1}),
}


def known_model_kinds() -> frozenset[str]:
    return frozenset(_REGISTRY)


def make_estimator(model: ModelConfig) -> ClassifierMixin:
    """A fresh, unfitted estimator for `model.kind` with `model.params` applied."""
    factory, defaults = _REGISTRY[model.kind]
    return factory(**{**defaults, **model.params})

"""Runaway work refused at config time: non-finite model parameters, nonsense timeouts; and the
"auto" task timeout derived from the measured work."""

from __future__ import annotations

import math

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.execution.tuning import (
    AUTO_TIMEOUT_FACTOR,
    AUTO_TIMEOUT_FLOOR_SECONDS,
    AUTO_TIMEOUT_UNMEASURED_SECONDS,
    resolve_task_timeout,
)

RAW = {"data": {"source": "synthetic", "start": "2015-01-01", "end": "2020-01-01"}}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.params={C=inf}", "model.params.C"),
        ("model.params={C=-inf}", "model.params.C"),
        ("model.params={C=nan}", "model.params.C"),
        ("model.params={C=1e400}", "model.params.C"),  # TOML reads it as inf
        ("model.params={gamma='auto', C=1.0, class_weight={1=inf}}", "model.params.class_weight.1"),
        ("model.kind=logistic_regression", None),
    ],
    ids=["inf", "minus-inf", "nan", "overflow", "nested", "another-model"],
)
def test_non_finite_model_params_are_refused_naming_the_key(override: str, key: str | None) -> None:
    overrides = [override, "model.params={tol=inf}"] if key is None else [override]
    with pytest.raises(ConfigError) as caught:
        load_config(RAW, overrides)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{key or 'model.params.tol'}: must be a finite number" in message


def test_finite_params_pass() -> None:
    config = load_config(RAW, ["model.params={C=2.5, gamma='auto'}"])
    assert config.model.params["C"] == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "'soon'"])
def test_a_bad_task_timeout_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"execution\.task_timeout_seconds"):
        load_config(RAW, [f"execution.task_timeout_seconds={value}"])


@pytest.mark.parametrize(("value", "expected"), [("'auto'", "auto"), ("'off'", "off"), ("2", 2.0)])
def test_task_timeout_values(value: str, expected: object) -> None:
    config = load_config(RAW, [f"execution.task_timeout_seconds={value}"])
    assert config.execution.task_timeout_seconds == expected


def test_the_task_timeout_defaults_to_auto() -> None:
    assert load_config(RAW).execution.task_timeout_seconds == "auto"


def test_auto_timeout_is_derived_from_the_measured_tasks() -> None:
    assert resolve_task_timeout("auto", None) == AUTO_TIMEOUT_UNMEASURED_SECONDS
    assert resolve_task_timeout("auto", 0.01) == AUTO_TIMEOUT_FLOOR_SECONDS
    assert resolve_task_timeout("auto", 10.0) == pytest.approx(10.0 * AUTO_TIMEOUT_FACTOR)
    assert resolve_task_timeout("off", 10.0) is None
    assert resolve_task_timeout(None, 10.0) is None
    assert resolve_task_timeout(3.0, 10.0) == 3.0
    assert math.isfinite(AUTO_TIMEOUT_UNMEASURED_SECONDS)

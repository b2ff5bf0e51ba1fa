"""`pipeline report` and `pipeline compare` on a damaged run directory: every file truncated,
emptied, replaced by garbage, the wrong JSON type, missing keys or null fields. Each is one line
on stderr and exit 2 (or, where the damage costs nothing the command needs, a normal answer),
never a traceback."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from pipeline.cli import app
from tests.report.conftest import sample_results, write_run

RUN_FILES = ("summary.parquet", "daily.parquet", "signals.parquet")
GARBAGE = random.Random(0).randbytes(4096)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("good") / "run", sample_results())


@pytest.fixture
def victim(good_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "victim"
    shutil.copytree(good_run, copy)
    return copy


def _truncate(path: Path) -> None:
    data = path.read_bytes() if path.exists() else GARBAGE
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(GARBAGE)


def _json_in_parquet(path: Path) -> None:
    path.write_text('{"ticker": "KO"}')


def _other_table(path: Path) -> None:
    pd.DataFrame({"x": [1, 2]}).to_parquet(path)


def _null_tickers(path: Path) -> None:
    frame = pd.read_parquet(path) if path.exists() else pd.DataFrame({"ticker": ["A"]})
    frame["ticker"] = None
    frame.to_parquet(path)


def _directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


PARQUET_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "garbage": _garbage,
    "json": _json_in_parquet,
    "other-table": _other_table,
    "null-tickers": _null_tickers,
    "directory": _directory,
}


def _manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


def _rewrite(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        manifest = json.loads(path.read_text())
        result = change(manifest)
        path.write_text(json.dumps(manifest if result is None else result))

    return damage


def _set(dotted: str, value: Any) -> Callable[[Path], None]:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        node = manifest
        for part in parents:
            node = node[part]
        node[last] = value

    return _rewrite(change)


MANIFEST_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "garbage": _garbage,
    "not-utf8": lambda path: path.write_bytes(b'{"config": "\xff\xfe"}'),
    "invalid-json": lambda path: path.write_text('{"config": {'),
    "deeply-nested": lambda path: path.write_text("[" * 100_000 + "]" * 100_000),
    "list": lambda path: path.write_text("[1, 2]"),
    "string": lambda path: path.write_text('"manifest"'),
    "number": lambda path: path.write_text("3"),
    "null": lambda path: path.write_text("null"),
    "empty-object": lambda path: path.write_text("{}"),
    "all-null": _rewrite(lambda m: {key: None for key in m}),
    "config-null": _set("config", None),
    "config-list": _set("config", []),
    "backtest-null": _set("config.backtest", None),
    "mode-null": _set("config.backtest.mode", None),
    "cost-string": _set("config.backtest.cost_bps", "lots"),
    "aggregates-list": _set("aggregates", [1]),
    "aggregates-empty": _set("aggregates", {}),
    "portfolio-null": _set("aggregates.portfolio_strategy", None),
    "distributions-null": _set("aggregates.distributions", None),
    "counts-null": _set("counts", None),
    "counts-strings": _set("counts", {"ok": "many"}),
    "fingerprints-null": _set("fingerprints", None),
    "fingerprint-null": _set("fingerprints", {"AAA": None}),
    "warnings-null": _set("data_warnings", {"AAA": None}),
    "timings-strings": _set("timings", {"download": "slow"}),
    "versions-null": _set("versions", None),
}

# Damage that the brief names, and that must be refused outright.
MUST_REFUSE = {"truncated", "empty", "garbage", "invalid-json", "list", "all-null", "config-null"}


def report(run_dir: Path) -> list[Result]:
    return [CliRunner().invoke(app, ["report", str(run_dir)])]


def compare(run_dir: Path, good: Path) -> list[Result]:
    return [
        CliRunner().invoke(app, ["compare", str(good), str(run_dir)]),
        CliRunner().invoke(app, ["compare", str(run_dir), str(good)]),
    ]


def assert_one_line_or_answer(result: Result, must_refuse: bool) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), result.output[-500:]
    if must_refuse:
        assert result.exit_code == 2
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pipeline: "), result.stderr[-500:]
        assert len(lines[0]) < 600


def cases(kinds: Any, names: tuple[str, ...] = ("manifest.json",)) -> list[Any]:
    """(name, kind, command) for every damage; `report` of damage it survives draws a whole
    report (a second or more each), so those run in the slow lane."""
    return [
        pytest.param(
            name, kind, command,
            id=f"{name.split('.')[0]}-{kind}-{command}",
            marks=[pytest.mark.slow] if command == "report" and kind not in MUST_REFUSE else [],
        )
        for name in names
        for kind in kinds
        for command in ("report", "compare")
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "kind", "command"), cases(PARQUET_DAMAGE, RUN_FILES))
def test_a_damaged_table_is_one_line(
    victim: Path, good_run: Path, name: str, kind: str, command: str
) -> None:
    if name == "signals.parquet" and kind == "null-tickers":
        pytest.skip("signals rows without a ticker are the report's to show")
    PARQUET_DAMAGE[kind](victim / name)
    results = report(victim) if command == "report" else compare(victim, good_run)
    must = name != "signals.parquet" and kind in {*MUST_REFUSE, "other-table"}
    for result in results:
        assert_one_line_or_answer(result, must_refuse=must)
        if result.exit_code:
            assert str(victim) in result.stderr


@pytest.mark.parametrize(("name", "kind", "command"), cases(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_one_line(
    victim: Path, good_run: Path, name: str, kind: str, command: str
) -> None:
    MANIFEST_DAMAGE[kind](victim / "manifest.json")
    results = report(victim) if command == "report" else compare(victim, good_run)
    for result in results:
        assert_one_line_or_answer(result, must_refuse=kind in MUST_REFUSE)
        if result.exit_code:
            assert str(victim) in result.stderr or "manifest" in result.stderr


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_json_in_any_manifest_field_is_one_line_at_most(
    good_run: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any JSON value put in place of any field, at any depth, of the manifest: compare
    answers or says in one line what is damaged."""
    victim = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(good_run, victim)
    manifest = _manifest(victim)
    paths = [[key] for key in manifest] + [
        [key, sub] for key, value in manifest.items() if isinstance(value, dict) for sub in value
    ]
    path = data.draw(st.sampled_from(paths))
    node = manifest
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = data.draw(JSON)
    (victim / "manifest.json").write_text(json.dumps(manifest))
    for result in compare(victim, good_run):
        assert_one_line_or_answer(result, must_refuse=False)

"""compare_runs on two hand-built runs with known differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.backtest.result import TickerResult
from pipeline.errors import RunDirectoryError
from pipeline.report import compare_runs, format_comparison
from pipeline.report.compare import ConfigChange, config_changes
from tests.report.conftest import OK_ROWS, daily_frame, ok_result, sample_results, write_run

FINGERPRINTS_A = {
    "AAA": {"first_date": "2021-01-04", "last_date": "2021-03-03", "rows": 41, "sha256": "a1"},
    "BBB": {"first_date": "2021-01-04", "last_date": "2021-03-03", "rows": 41, "sha256": "b1"},
}
FINGERPRINTS_B = {
    "AAA": FINGERPRINTS_A["AAA"],
    "BBB": {**FINGERPRINTS_A["BBB"], "rows": 42, "sha256": "b2"},  # prices revised
}


def run_b_results() -> list[TickerResult]:
    """Run A's tickers with: AAA's accuracy 0.60 -> 0.62, BBB's last evaluation day moved,
    CCC newly failing, DDD (failed in A) now ok, EEE added."""
    aaa = {**OK_ROWS["AAA"], "accuracy": 0.62}
    bbb = {**OK_ROWS["BBB"], "last_day": "2021-03-04", "n_days": 4}
    daily = daily_frame(0, [1, 1, 1], [0.01, 0.01, 0.01])
    return [
        ok_result("AAA", aaa, daily_frame(0, [1, -1, 1], [0.01, 0.02, -0.01])),
        ok_result("BBB", bbb, daily_frame(0, [1, 1, 0], [-0.02, 0.03, 0.01])),
        TickerResult("CCC", "failed", "the model raised ValueError: boom"),
        ok_result("DDD", OK_ROWS["CCC"], daily),
        ok_result("EEE", OK_ROWS["CCC"], daily),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    run_a = write_run(root / "a", sample_results(), cost_bps=10.0, fingerprints=FINGERPRINTS_A)
    run_b = write_run(
        root / "b",
        run_b_results(),
        cost_bps=20.0,
        overrides=["execution.workers=2"],
        fingerprints=FINGERPRINTS_B,
    )
    return run_a, run_b


@pytest.fixture(scope="module")
def comparison(runs):
    return compare_runs(*runs)


def test_tickers_added_dropped_and_status_moves(comparison):
    assert comparison.tickers_added == ("EEE",)
    assert comparison.tickers_dropped == ()
    assert [(s.ticker, s.before, s.after) for s in comparison.newly_failing] == [
        ("CCC", "ok", "failed")
    ]
    assert comparison.newly_failing[0].reason == "the model raised ValueError: boom"
    assert [(s.ticker, s.before, s.after) for s in comparison.newly_ok] == [("DDD", "failed", "ok")]
    assert comparison.other_status_changes == ()


def test_metric_changes(comparison):
    assert comparison.changed_tickers == ("AAA",)
    frame = comparison.metric_changes.set_index("ticker")
    assert list(frame.index) == ["AAA", "BBB"]  # ok in both runs, largest change first
    assert frame.loc["AAA", "accuracy_a"] == pytest.approx(0.60)
    assert frame.loc["AAA", "accuracy_b"] == pytest.approx(0.62)
    assert frame.loc["AAA", "accuracy_change"] == pytest.approx(0.02)
    assert frame.loc["AAA", "cum_return_change"] == 0.0
    assert not frame.loc["BBB", "changed"]


def test_config_changes(comparison):
    assert comparison.config_changed
    assert comparison.config_hash_a != comparison.config_hash_b
    assert {(c.key, c.before, c.after, c.affects_results) for c in comparison.config_changes} == {
        ("backtest.cost_bps", 10.0, 20.0, True),
        ("execution.workers", "auto", 2, False),
    }


def test_data_changes(comparison):
    assert comparison.fingerprints_compared
    assert {(d.ticker, d.field, d.before, d.after) for d in comparison.data_changes} == {
        ("BBB", "last_day", "2021-03-03", "2021-03-04"),
        ("BBB", "n_days", 3, 4),
        ("BBB", "fingerprint.rows", 41, 42),
        ("BBB", "fingerprint.sha256", "b1", "b2"),
    }


def test_headline_figures(comparison):
    headline = {item.label: item for item in comparison.headline}
    assert (headline["tickers ok"].before, headline["tickers ok"].after) == (3, 4)
    assert (headline["tickers failed"].before, headline["tickers failed"].after) == (1, 1)


def test_text_answers_what_changed(comparison):
    text = format_comparison(comparison)
    verdict = text.splitlines()[4]
    assert verdict.startswith("Changed: 1 ticker newly failing; results changed for 1 ticker")
    for expected in (
        "CCC: ok -> failed  (the model raised ValueError: boom)",
        "DDD: failed -> ok",
        "Tickers: 1 added (EEE), 0 dropped",
        "backtest.cost_bps  10.0 -> 20.0",
        "execution.workers  auto -> 2   (does not affect results)",
        "last_day: 2021-03-03 -> 2021-03-04  (BBB)",
        "Prices: changed for 1 ticker",
        "fingerprint.sha256: b1 -> b2  (BBB)",
        "60.00% -> 62.00% (+2.00 pp)",
    ):
        assert expected in text, expected


def test_same_run_twice_changes_nothing(runs):
    comparison = compare_runs(runs[0], runs[0])
    assert comparison.nothing_changed
    assert comparison.changed_tickers == ()
    text = format_comparison(comparison)
    assert "Nothing changed: same config, same data, same results for every ticker." in text
    assert "Prices: unchanged" in text


def test_without_fingerprints_prices_are_not_compared(make_run):
    run_a, run_b = make_run("a"), make_run("b")
    comparison = compare_runs(run_a, run_b)
    assert not comparison.fingerprints_compared
    assert comparison.nothing_changed
    assert "Prices: not compared" in format_comparison(comparison)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param({"x": {"y": 1}}, {"x": {"y": 1}}, [], id="same"),
        pytest.param({"x": {"y": 1}}, {"x": {"y": 2}}, [ConfigChange("x.y", 1, 2)], id="nested"),
        pytest.param({"x": 1}, {"x": 1, "z": 3}, [ConfigChange("z", None, 3)], id="added-key"),
        pytest.param(
            {"t": ["A", "B"]},
            {"t": ["B", "A"]},
            [ConfigChange("t", ["A", "B"], ["B", "A"])],
            id="list-order",
        ),
    ],
)
def test_config_changes_cases(a, b, expected):
    assert config_changes(a, b) == expected


def _tamper_aggregates(run_dir: Path, sharpe: float) -> None:
    """Write a portfolio Sharpe into the manifest that no recomputation would give."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["aggregates"]["portfolio_strategy"]["sharpe"] = sharpe
    path.write_text(json.dumps(manifest))


def test_headline_figures_are_the_manifests_not_recomputed(make_run) -> None:
    run_a, run_b = make_run("a"), make_run("b")
    _tamper_aggregates(run_a, 12.5)
    _tamper_aggregates(run_b, -7.25)
    headline = {change.label: change for change in compare_runs(run_a, run_b).headline}
    sharpe = headline["portfolio Sharpe"]
    assert (sharpe.before, sharpe.after) == (12.5, -7.25)


def test_a_manifest_without_aggregates_is_named_not_recomputed(make_run) -> None:
    run_a, run_b = make_run("a"), make_run("b")
    path = run_b / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["aggregates"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(RunDirectoryError, match="no aggregates") as raised:
        compare_runs(run_a, run_b)
    assert str(path) in str(raised.value), "the error does not say which run"


def test_a_report_of_a_run_without_aggregates_names_its_manifest(make_run) -> None:
    from pipeline.report.build import build_report

    run = make_run("a")
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["aggregates"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(RunDirectoryError, match="no aggregates") as raised:
        build_report(run)
    assert str(path) in str(raised.value)

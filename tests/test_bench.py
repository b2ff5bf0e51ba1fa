"""`pipeline bench`: every variant runs the same task and returns the same results."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipeline.backtest.result import TickerResult
from pipeline.benchmarking import (
    BenchResult,
    format_bench_table,
    run_article_bench,
    write_bench_outputs,
)
from pipeline.benchmarking.agreement import position_agreement, results_identical
from pipeline.benchmarking.article import (
    FITS,
    BenchTiming,
    bench_rows,
    paired_speedup,
    parallel_efficiency,
    speedup,
)
from pipeline.benchmarking.variants import (
    VARIANTS,
    Plan,
    run_process_per_ticker,
    run_sequential,
)
from pipeline.benchmarking.workload import (
    Workload,
    cached_workload,
    forkserver_context,
    spread_sample,
)
from pipeline.config import Config, load_config
from tests.conftest import synthetic_raw_config


def tiny_config(cache_dir: Path, n_tickers: int = 3) -> Config:
    """A few synthetic tickers, about a year each, in_sample: fast under every variant."""
    raw = synthetic_raw_config(
        cache_dir,
        n_tickers=n_tickers,
        n_days=300,
        start=date(2020, 1, 1),
        backtest={"mode": "in_sample"},
        execution={"workers": 2},
    )
    return load_config(raw)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> BenchResult:
    return run_article_bench(tiny_config(tmp_path_factory.mktemp("cache")), repeats=1)


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[tuple[Workload, Config]]:
    config = tiny_config(tmp_path / "cache")
    with cached_workload(config) as loaded:
        yield loaded, config


@pytest.mark.slow
def test_the_bench_runs_every_variant_under_both_fits(bench: BenchResult) -> None:
    measured = {(timing.variant, timing.fit) for timing in bench.timings}
    assert measured == {(variant.name, fit) for variant in VARIANTS for fit in FITS}
    assert all(len(timing.seconds) == 1 and timing.seconds[0] > 0 for timing in bench.timings)
    assert bench.tickers == ("SYN000", "SYN001", "SYN002")


@pytest.mark.slow
def test_every_variant_returns_the_sequential_results_exactly(bench: BenchResult) -> None:
    assert bench.identical, bench.mismatches
    assert bench.fast_vs_plain["tickers"] == 3


@pytest.mark.slow
def test_the_pools_use_the_configured_workers(bench: BenchResult) -> None:
    workers = {(t.variant, t.fit): t.workers for t in bench.timings}
    assert workers[("sequential", "fast")] == 1
    assert workers[("process_per_ticker", "fast")] == 3  # one process per ticker
    assert workers[("pool_map", "fast")] == workers[("crash_proof_pool", "fast")] == 2
    assert bench.start_method in {"forkserver", "spawn"}


@pytest.mark.slow
def test_process_per_ticker_returns_every_result(workload: tuple[Workload, Config]) -> None:
    # The article's processes wrote into a global dict, which stayed empty in the parent
    # (METHOD.md, bug 3); here every ticker's result must come back through the queue.
    loaded, config = workload
    plan = Plan(forkserver_context(), workers=2, chunksize=1)
    settings = config.backtest_settings
    run = run_process_per_ticker(loaded.jobs, settings, plan)
    assert [result.ticker for result in run.results] == list(loaded.tickers)
    assert {result.status for result in run.results} == {"ok"}
    assert results_identical(run_sequential(loaded.jobs, settings, plan).results, run.results)


def ok_result(ticker: str, accuracy: float, positions: list[int]) -> TickerResult:
    daily = pd.DataFrame({"position": positions, "asset_log_return": [0.01] * len(positions)})
    return TickerResult(ticker, "ok", metrics={"accuracy": accuracy}, daily=daily)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ([ok_result("KO", 0.5, [1, -1])], True),
        ([], False),  # a variant that lost its results, like the article's global dict
        ([ok_result("KO", 0.5000001, [1, -1])], False),
        ([ok_result("KO", 0.5, [1, 1])], False),
        ([ok_result("XOM", 0.5, [1, -1])], False),
        ([TickerResult("KO", "failed", "boom")], False),
    ],
    ids=["same", "empty", "metric-differs", "daily-differs", "other-ticker", "failed"],
)
def test_results_identical(actual: list[TickerResult], expected: bool) -> None:
    assert results_identical([ok_result("KO", 0.5, [1, -1])], actual) is expected


def test_results_identical_treats_missing_values_as_equal() -> None:
    nan = [ok_result("KO", math.nan, [0])]
    assert results_identical(nan, [ok_result("KO", math.nan, [0])])


def test_position_agreement_counts_days_across_tickers() -> None:
    plain = [ok_result("KO", 0.5, [1, -1, 0, 1]), ok_result("XOM", 0.5, [1, 1])]
    fast = [ok_result("KO", 0.5, [1, -1, 1, 1]), ok_result("XOM", 0.5, [-1, 1])]
    assert position_agreement(plain, fast) == pytest.approx(4 / 6)
    assert position_agreement(plain, plain) == 1.0
    assert math.isnan(
        position_agreement([TickerResult("KO", "failed")], [TickerResult("KO", "failed")])
    )


@pytest.mark.parametrize(
    ("serial", "seconds", "workers", "cpus", "gain", "efficiency"),
    [
        (10.0, 10.0, 1, 2, 1.0, 1.0),
        (10.0, 5.0, 2, 2, 2.0, 1.0),
        (10.0, 5.5, 2, 2, 10 / 5.5, 10 / 5.5 / 2),
        (10.0, 5.0, 5, 2, 2.0, 1.0),  # five processes on two cores count as two
        (10.0, 20.0, 2, 2, 0.5, 0.25),
        (10.0, 0.0, 2, 2, 0.0, 0.0),  # nothing measured
    ],
    ids=["serial", "perfect", "near-perfect", "more-processes-than-cpus", "slower", "zero"],
)
def test_speedup_and_efficiency(
    serial: float, seconds: float, workers: int, cpus: int, gain: float, efficiency: float
) -> None:
    assert speedup(serial, seconds) == pytest.approx(gain)
    assert parallel_efficiency(speedup(serial, seconds), workers, cpus) == pytest.approx(efficiency)


def test_bench_rows_compare_with_sequential_of_the_same_fit_and_repeat() -> None:
    timings = [
        BenchTiming("sequential", "plain", 1, (10.0, 12.0, 11.0)),
        BenchTiming("pool_map", "plain", 2, (5.0, 5.5, 6.0)),
        BenchTiming("sequential", "fast", 1, (0.2,)),
        BenchTiming("pool_map", "fast", 2, (0.4,)),
    ]
    rows = {(row.variant, row.fit): row for row in bench_rows(timings, usable_cpus=2)}
    assert rows[("pool_map", "plain")].seconds == 5.5  # the median
    # per repeat: 10 / 5 = 2.0, 12 / 5.5 = 2.18, 11 / 6 = 1.83; the median of those ratios
    assert rows[("pool_map", "plain")].speedup == pytest.approx(2.0)
    assert rows[("pool_map", "plain")].efficiency == pytest.approx(1.0)
    assert rows[("sequential", "plain")].speedup == 1.0
    assert rows[("pool_map", "fast")].speedup == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("serial", "own", "expected"),
    [
        ((10.0, 10.0, 10.0), (5.0, 5.0, 5.0), 2.0),
        ((10.0, 20.0, 10.0), (5.0, 10.0, 5.0), 2.0),  # a slow repeat slows both: ratio holds
        ((10.0, 10.0, 10.0), (5.0, 50.0, 4.0), 2.0),  # one disturbed run is outvoted
        ((), (), 0.0),
    ],
    ids=["steady", "drift", "one-disturbed", "nothing"],
)
def test_paired_speedup(serial: tuple[float, ...], own: tuple[float, ...], expected: float) -> None:
    assert paired_speedup(serial, own) == pytest.approx(expected)


@pytest.mark.slow
def test_the_table_names_every_variant_and_fit(bench: BenchResult) -> None:
    table = format_bench_table(bench)
    lines = table.splitlines()
    for variant in VARIANTS:
        assert sum(line.startswith(variant.label) for line in lines) == 2, variant.label
    assert "plain fit" in table and "fast path" in table
    assert "results identical across variants: yes" in table
    assert "not a forecast" in table  # in_sample is labelled as such


@pytest.mark.slow
def test_the_table_reports_a_mismatch(bench: BenchResult) -> None:
    broken = BenchResult(**{**bench.__dict__, "mismatches": ("pool_map (fast fit, repeat 1)",)})
    assert "results identical across variants: NO: pool_map (fast fit, repeat 1)" in (
        format_bench_table(broken)
    )


@pytest.mark.slow
def test_outputs_hold_the_figures_and_the_machine_but_no_path(
    bench: BenchResult, tmp_path: Path
) -> None:
    paths = write_bench_outputs(bench, tmp_path / "out")
    assert [path.name for path in paths] == ["bench.json", "bench.png"]
    text = paths[0].read_text()
    saved = json.loads(text)
    assert {"nproc", "usable_cpus", "cpu_model", "versions"} <= saved["machine"].keys()
    assert saved["machine"]["versions"]["python"]
    assert len(saved["rows"]) == len(VARIANTS) * len(FITS)
    assert saved["identical_results"] is True
    assert "cache" not in text and str(tmp_path) not in text
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, list("ABCDEFGH")),
        (8, list("ABCDEFGH")),
        (20, list("ABCDEFGH")),
        (4, list("ACEG")),
        (3, list("ACF")),
        (1, ["A"]),
    ],
    ids=["all", "exactly-all", "more-than-all", "half", "three", "one"],
)
def test_spread_sample(size: int | None, expected: list[str]) -> None:
    assert spread_sample(list("ABCDEFGH"), size) == expected


def test_spread_sample_rejects_an_empty_sample() -> None:
    with pytest.raises(ValueError, match="at least 1 ticker, got 0"):
        spread_sample(list("ABC"), 0)

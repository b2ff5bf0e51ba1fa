"""A provider that errs, times out, hangs or rate-limits, through `pipeline run` with yfinance as
the source and a scripted fake of yfinance at the network boundary: each faulty ticker is retried,
then failed with a reason naming the error; the others are ok and the run exits 3."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result
from yfinance.exceptions import YFDataException, YFRateLimitError

from tests.faults.conftest import (
    HANG,
    ScriptedYahoo,
    base_settings,
    invoke,
    read_summary,
    run_in_process,
    yahoo_frame,
)

pytestmark = pytest.mark.slow  # whole runs of the pipeline, about a second or more each

RETRIES = 2
DOWNLOAD = {
    "data.source": "yfinance",
    "data.download.retries": RETRIES,
    "data.download.backoff_seconds": 0.01,
    "data.download.max_backoff_seconds": 0.02,
    "data.download.requests_per_second": 1000.0,
    "data.download.timeout_seconds": 1.5,
    "data.download.threads": 4,
}
ATTEMPTS = RETRIES + 1
GAVE_UP = rf"gave up after {ATTEMPTS} attempts; last error "

# ticker -> (what Yahoo answers, request by request; the last repeats), reason, requests made
CASES: dict[str, tuple[tuple[object, ...], str, int]] = {
    "TIMEOUT": (
        (TimeoutError("Read timed out"),),
        GAVE_UP + r"TransientSourceError: .*'TIMEOUT'.*TimeoutError: Read timed out",
        ATTEMPTS,
    ),
    "RESET": (
        (ConnectionResetError(104, "Connection reset by peer"),),
        GAVE_UP + r"TransientSourceError: .*ConnectionResetError: .*Connection reset by peer",
        ATTEMPTS,
    ),
    "LIMITED": (
        (YFRateLimitError(),),
        GAVE_UP + r"RateLimitedError: Yahoo rate-limited the request for 'LIMITED'",
        ATTEMPTS,
    ),
    "OUTAGE": (
        (YFDataException("Yahoo will be right back"),),
        GAVE_UP + r"TransientSourceError: .*YFDataException: Yahoo will be right back",
        ATTEMPTS,
    ),
    "HUNG": ((HANG,), r"^download: timed out after 1\.5 s$", 1),
}
GOOD = ("KO", "XOM")
FLAKY = "FLAKY"  # a timeout, then a rate limit, then prices: ok on its last attempt
UNIVERSE = [*GOOD, FLAKY, *CASES]


FaultyRun = tuple[Result, Path, ScriptedYahoo]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyRun]:
    """One `pipeline run --out <tmp>/run` over the universe, shared by the module's tests."""
    tmp_path = tmp_path_factory.mktemp("source-errors")
    fake = ScriptedYahoo()
    for seed, ticker in enumerate(GOOD):
        fake.script(ticker, yahoo_frame(seed))
    fake.script(FLAKY, TimeoutError("Read timed out"), YFRateLimitError(), yahoo_frame(7))
    for ticker, (answers, _, _) in CASES.items():
        fake.script(ticker, *answers)
    settings = base_settings(tmp_path, {**DOWNLOAD, "data.tickers": UNIVERSE})
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake.install(monkeypatch)
        try:
            result = invoke("run", settings, "--quiet", "--out", str(tmp_path / "run"))
        finally:
            fake.release()
    yield result, tmp_path, fake


def test_the_run_exits_3_naming_every_failed_ticker(faulty_run: FaultyRun) -> None:
    result, _, _ = faulty_run
    assert result.exit_code == 3, result.output
    assert f"failed tickers: {', '.join(CASES)}" in result.stderr
    assert "Traceback" not in result.output


def test_the_other_tickers_are_ok(faulty_run: FaultyRun) -> None:
    _, tmp_path, fake = faulty_run
    summary = read_summary(tmp_path / "run").set_index("ticker")
    assert summary.index.tolist() == UNIVERSE
    assert (summary.loc[[*GOOD, FLAKY], "status"] == "ok").all(), summary
    assert fake.calls_of(FLAKY) == 3, "a transient error and a rate limit are retried"
    assert all(fake.calls_of(ticker) == 1 for ticker in GOOD)
    cached = {path.stem for path in (tmp_path / "cache" / "yfinance").glob("*.parquet")}
    assert cached == {*GOOD, FLAKY}


@pytest.mark.parametrize("ticker", list(CASES))
def test_a_faulty_ticker_is_retried_then_failed_with_the_error_named(
    faulty_run: FaultyRun, ticker: str
) -> None:
    _, tmp_path, fake = faulty_run
    _, reason, requests = CASES[ticker]
    row = read_summary(tmp_path / "run").set_index("ticker").loc[ticker]
    assert row["status"] == "failed"
    assert re.search(reason, row["reason"]), row["reason"]
    assert fake.calls_of(ticker) == requests


def test_a_hung_request_released_late_writes_nothing(faulty_run: FaultyRun) -> None:
    """The timed-out ticker's thread outlives the run; its late answer must land nowhere."""
    _, tmp_path, fake = faulty_run
    assert fake.in_flight == 0, "the hung request never returned"
    assert not (tmp_path / "cache" / "yfinance" / "HUNG.parquet").exists()


def test_a_burst_is_paced_by_the_rate_cap(tmp_path: Path, yahoo: ScriptedYahoo) -> None:
    tickers = [f"T{i}" for i in range(8)]
    for seed, ticker in enumerate(tickers):
        yahoo.script(ticker, yahoo_frame(seed))
    rate = 10.0
    settings = base_settings(
        tmp_path,
        {**DOWNLOAD, "data.download.requests_per_second": rate, "data.tickers": tickers},
    )
    result = run_in_process(settings)
    assert result.failed_tickers == [], result.summary
    starts = sorted(moment for _, moment in yahoo.calls)
    assert len(starts) == len(tickers)
    # The k-th request starts no earlier than k intervals after the first, whichever of the 4
    # threads sends it; half an interval allows for the first request starting late itself.
    slack = 0.5 / rate
    early = [k for k, moment in enumerate(starts) if moment - starts[0] < k / rate - slack]
    assert not early, [round(moment - starts[0], 3) for moment in starts]

"""Dead symbols remembered; a host that refuses every connection stops being asked.

Through the real YahooSource against the yfinance fake (tests/data/fakes.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from curl_cffi.requests import exceptions as curl_exceptions

from pipeline.config import DataConfig, DownloadConfig
from pipeline.data.cache import PriceCache
from pipeline.data.dead_symbols import DEAD_FILE
from pipeline.data.download import UNREACHABLE_AFTER, DownloadReport, download_universe
from pipeline.data.sources.yahoo import YahooSource
from tests.data.fakes import FakeYahoo, VirtualClock, yahoo_history_frame

NOW = datetime(2024, 1, 10, 22, 0, tzinfo=UTC)
DAYS = [day.date().isoformat() for day in pd.bdate_range("2023-10-02", "2023-12-29")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeYahoo:
    fake = FakeYahoo()
    fake.install(monkeypatch)
    fake.answer("KO", yahoo_history_frame(DAYS, [50.0 + i * 0.01 for i in range(len(DAYS))]))
    return fake


def config(tmp_path: Path, tickers: list[str], **download: object) -> DataConfig:
    settings = {"requests_per_second": 10_000.0, "retries": 4, **download}
    return DataConfig(
        source="yfinance",
        tickers=tuple(tickers),
        start=date(2023, 10, 1),
        end=date(2023, 12, 31),
        cache_dir=tmp_path / "cache",
        download=DownloadConfig(**settings),
    )


def run(
    data: DataConfig, now: datetime = NOW, retry_dead: bool = False, sleeps: list | None = None
) -> DownloadReport:
    clock = VirtualClock(advancing=True)  # the stage's time moves by its own waits only
    if sleeps is not None:
        clock.sleeps = sleeps
    return download_universe(
        data.universe,
        YahooSource(),
        PriceCache(data.cache_dir),
        data,
        sleep=clock.sleep,
        clock=clock,
        now=lambda: now,
        jitter=lambda: 0.5,
        retry_dead=retry_dead,
    )


def asked(fake: FakeYahoo, symbol: str) -> int:
    return sum(call.symbol == symbol for call in fake.calls)


def by_ticker(report: DownloadReport) -> dict[str, tuple[str, str]]:
    return {o.ticker: (o.status, o.reason) for o in report.outcomes}


def test_a_dead_symbol_fails_once_then_is_skipped_with_its_date(
    tmp_path: Path, fake: FakeYahoo
) -> None:
    data = config(tmp_path, ["ZZZZ", "KO"])

    first = by_ticker(run(data))
    second = by_ticker(run(data, now=NOW + timedelta(days=3)))

    assert first["ZZZZ"][0] == "failed"
    assert second["ZZZZ"][0] == "skipped"
    assert "unknown or delisted at the source since 2024-01-10" in second["ZZZZ"][1]
    assert "--retry-dead" in second["ZZZZ"][1]
    assert asked(fake, "ZZZZ") == 1  # not retried, and not asked on the second run
    stored = json.loads((data.cache_dir / "yfinance" / DEAD_FILE).read_text())
    assert stored["ZZZZ"]["found"] == "2024-01-10"
    assert "ZZZZ" in stored["ZZZZ"]["reason"]
    assert set(stored) == {"ZZZZ"}


def test_the_memory_expires_after_dead_ttl_days(tmp_path: Path, fake: FakeYahoo) -> None:
    data = config(tmp_path, ["ZZZZ"], dead_ttl_days=7)
    run(data)
    assert by_ticker(run(data, now=NOW + timedelta(days=6)))["ZZZZ"][0] == "skipped"
    assert by_ticker(run(data, now=NOW + timedelta(days=7)))["ZZZZ"][0] == "failed"
    assert asked(fake, "ZZZZ") == 2


def test_retry_dead_asks_again_and_a_symbol_back_alive_is_forgotten(
    tmp_path: Path, fake: FakeYahoo
) -> None:
    data = config(tmp_path, ["ZZZZ"])
    run(data)
    fake.answer("ZZZZ", yahoo_history_frame(DAYS, [10.0] * len(DAYS)))

    again = by_ticker(run(data, now=NOW + timedelta(days=1), retry_dead=True))

    assert again["ZZZZ"][0] == "fetched"
    assert json.loads((data.cache_dir / "yfinance" / DEAD_FILE).read_text()) == {}


def test_dead_ttl_zero_never_skips(tmp_path: Path, fake: FakeYahoo) -> None:
    data = config(tmp_path, ["ZZZZ"], dead_ttl_days=0)
    run(data)
    assert by_ticker(run(data))["ZZZZ"][0] == "failed"
    assert asked(fake, "ZZZZ") == 2


def test_a_damaged_memory_is_ignored(tmp_path: Path, fake: FakeYahoo) -> None:
    data = config(tmp_path, ["ZZZZ"])
    (data.cache_dir / "yfinance").mkdir(parents=True)
    (data.cache_dir / "yfinance" / DEAD_FILE).write_text("{not json")
    assert by_ticker(run(data))["ZZZZ"][0] == "failed"


CURL_REFUSED = (
    "Failed to perform, curl: (7) Failed to connect to query2.finance.yahoo.com port 443 after "
    "0 ms: Could not connect to server. See https://curl.se/libcurl/c/libcurl-errors.html first "
    "for more details."
)


def test_a_host_refusing_every_connection_is_given_up_at_once(
    tmp_path: Path, fake: FakeYahoo
) -> None:
    tickers = [f"T{i:02d}" for i in range(20)]
    for ticker in tickers:
        fake.answer(ticker, curl_exceptions.ConnectionError(CURL_REFUSED))
    sleeps: list[float] = []

    report = run(config(tmp_path, tickers, threads=1), sleeps=sleeps)

    assert [o.status for o in report.outcomes] == ["failed"] * 20
    assert len(fake.calls) == UNREACHABLE_AFTER  # not 20 tickers x 5 attempts
    assert sleeps == [0.5, 1.0]  # the backoff of the first ticker's first two retries only
    reasons = {o.reason for o in report.outcomes}
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason.startswith("yfinance cannot be reached")
    assert 'data.source = "csv"' in reason
    assert len(reason) < 300


def test_a_host_that_answered_once_keeps_its_retries(tmp_path: Path, fake: FakeYahoo) -> None:
    tickers = ["KO", *[f"T{i:02d}" for i in range(4)]]
    for ticker in tickers[1:]:
        fake.answer(ticker, curl_exceptions.ConnectionError(CURL_REFUSED))

    report = run(config(tmp_path, tickers, threads=1, retries=2))

    assert report.outcomes[0].status == "fetched"
    assert all("gave up after 3 attempts" in o.reason for o in report.outcomes[1:])


@pytest.mark.parametrize("command", ["download", "run"])
def test_the_commands_take_retry_dead(command: str) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--retry-dead" in result.output


def test_yfinance_repairs_travel_with_the_cache_file(tmp_path: Path, fake: FakeYahoo) -> None:
    frame = yahoo_history_frame(DAYS, [50.0 + i * 0.01 for i in range(len(DAYS))])
    frame["Repaired?"] = [day == DAYS[3] for day in DAYS]
    fake.answer("KO", frame)
    data = config(tmp_path, ["KO"])

    fetched = run(data).outcomes[0]
    hit = run(data, now=NOW + timedelta(hours=1)).outcomes[0]

    assert (fetched.status, hit.status) == ("fetched", "hit")
    for outcome in (fetched, hit):
        (note,) = outcome.warnings
        assert note.startswith(f"Yahoo 'KO': yfinance repaired 1 row(s) ({DAYS[3]})")
    assert fake.calls[0].kwargs["repair"] is True

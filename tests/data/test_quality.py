"""Detection of provider errors (pipeline.data.quality) on real and generated prices."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.quality import (
    GAP_MAX_HOLIDAY_WEEKDAYS,
    STALE_MIN_SESSIONS,
    Finding,
    detect,
    repair_prices,
    repairs_of,
)
from pipeline.data.sources.csv_source import read_price_file
from tests.data.injections import INJECTORS, found

# Clean real tickers with a long history: AAPL's -52% of 2000-09-29 and the crashes of 2008 and
# 2020 are real moves, not errors.
CLEAN = ("KO", "XOM", "AAPL", "MSFT", "IBM", "CNP", "LH", "FIS")
YFINANCE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


@pytest.fixture(scope="module")
def real(sp500_sample: Path) -> dict[str, pd.DataFrame]:
    return {ticker: read_price_file(sp500_sample / f"{ticker}.csv") for ticker in CLEAN}


@pytest.fixture(scope="module")
def sp500_sample() -> Path:  # module-scoped twin of the shared fixture
    from tests.conftest import SHARED_SAMPLE

    if not (SHARED_SAMPLE / "KO.csv").is_file():
        pytest.skip(f"the shared real-price sample is not at {SHARED_SAMPLE}")
    return SHARED_SAMPLE


def only(frame: pd.DataFrame, columns: tuple[str, ...] | None) -> pd.DataFrame:
    return frame if columns is None else frame[[c for c in frame.columns if c in columns]]


@pytest.mark.parametrize("columns", [None, YFINANCE_COLUMNS], ids=["all-columns", "yfinance"])
def test_clean_real_tickers_raise_no_warning(
    real: dict[str, pd.DataFrame], columns: tuple[str, ...] | None
) -> None:
    for ticker, frame in real.items():
        assert detect(only(frame, columns)) == (), ticker


@pytest.mark.parametrize("kind", list(INJECTORS))
@pytest.mark.parametrize("columns", [None, YFINANCE_COLUMNS], ids=["all-columns", "yfinance"])
def test_injected_errors_are_found_with_their_kind(
    real: dict[str, pd.DataFrame], kind: str, columns: tuple[str, ...] | None
) -> None:
    expected, inject = INJECTORS[kind]
    rng = np.random.default_rng(7)
    missed = []
    for ticker in ("KO", "XOM", "AAPL"):
        for _ in range(4):
            damaged, first, last = inject(only(real[ticker], columns), rng)
            if not found(detect(damaged), expected, first, last):
                missed.append((ticker, first, last))
    assert missed == []


def test_the_sample_s_own_provider_errors_are_found(sp500_sample: Path) -> None:
    # ANTM's file: a 2:1 split recorded on 2002-03-18 that the close does not show, the adjusted
    # close doubling; and WellPoint's real 2:1 split of 2005-06-02 left unadjusted.
    findings = detect(read_price_file(sp500_sample / "ANTM.csv"))
    assert [(f.kind, f.last) for f in findings] == [
        ("split", date(2002, 3, 15)),
        ("split", date(2005, 6, 1)),
    ]


def walk(days: int = 400, seed: int = 0) -> pd.DataFrame:
    """A quiet random walk with bars and volume on business days."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-05", periods=days, name="date").as_unit("ns")
    close = 40.0 * np.exp(np.cumsum(rng.normal(0, 0.012, days)))
    spread = np.abs(rng.normal(0, 0.006, days))
    return pd.DataFrame(
        {
            "open": close * (1 + rng.normal(0, 0.003, days)),
            "high": close * (1 + spread + 0.004),
            "low": close * (1 - spread - 0.004),
            "close": close,
            "adj_close": close * 0.9,
            "volume": rng.integers(900_000, 1_100_000, days).astype(float),
        },
        index=index,
    )


def scaled(frame: pd.DataFrame, rows: slice, factor: float, columns: list[str]) -> pd.DataFrame:
    damaged = frame.copy()
    damaged.iloc[rows, [damaged.columns.get_loc(c) for c in columns]] *= factor
    return damaged


PRICES = ["open", "high", "low", "close", "adj_close"]


def test_a_pence_block_names_its_dates_and_factor_and_repairs_exactly() -> None:
    clean = walk()
    damaged = scaled(clean, slice(200, 215), 100.0, PRICES)

    (finding,) = detect(damaged)

    assert (finding.kind, finding.size) == ("unit", 100.0)
    assert (finding.first, finding.last) == (clean.index[200].date(), clean.index[214].date())
    assert finding.describe().startswith("unit error: prices 2015-10-12..2015-10-30 (15 sessions)")
    assert "100x" in finding.describe()
    repaired = repair_prices(damaged["adj_close"], repairs_of([finding]))
    np.testing.assert_allclose(repaired.to_numpy(), clean["adj_close"].to_numpy())


@pytest.mark.parametrize("ratio", [2.0, 3.0, 1.5, 4.0, 5.0, 10.0, 0.5, 1 / 3])
def test_an_unadjusted_split_is_found_and_repaired(ratio: float) -> None:
    clean = walk()
    damaged = scaled(clean, slice(0, 250), ratio, PRICES)
    damaged.iloc[:250, damaged.columns.get_loc("volume")] /= ratio

    (finding,) = detect(damaged)

    assert finding.kind == "split"
    assert finding.size == pytest.approx(1 / ratio)
    assert finding.last == clean.index[249].date()
    assert str(clean.index[250].date()) in finding.describe()
    repaired = repair_prices(damaged["adj_close"], repairs_of([finding]))
    np.testing.assert_allclose(repaired.to_numpy(), clean["adj_close"].to_numpy())


def test_a_real_crash_near_a_split_ratio_is_not_a_split() -> None:
    # -50% on a day that trades 10x the usual volume over a wide range, turbulence after it.
    clean = walk()
    crash = clean.copy()
    crash.iloc[250:, [crash.columns.get_loc(c) for c in PRICES]] *= 0.5
    crash.iloc[250, crash.columns.get_loc("high")] = crash["close"].iloc[249]
    crash.iloc[250, crash.columns.get_loc("volume")] *= 10
    assert [f.kind for f in detect(crash)] == []


def test_a_split_adjusted_on_the_wrong_day_is_a_block_of_the_adjusted_close_alone() -> None:
    clean = walk()
    damaged = scaled(clean, slice(180, 190), 2.0, ["adj_close"])
    kinds = [(f.kind, f.first, f.last) for f in detect(damaged)]
    assert kinds == [("split", clean.index[180].date(), clean.index[189].date())]


@pytest.mark.parametrize("error", [0.85, 1.12])
def test_history_scaled_wrongly_at_an_ex_date_is_a_dividend_error(error: float) -> None:
    clean = walk()
    clean["dividend"] = 0.0
    clean.iloc[220, clean.columns.get_loc("dividend")] = 0.4
    # the provider's right adjustment: everything before the ex-date times 1 - D / P
    factor = 1 - 0.4 / clean["close"].iloc[219]
    clean.iloc[:220, clean.columns.get_loc("adj_close")] *= factor
    assert detect(clean) == ()
    damaged = scaled(clean, slice(0, 220), error, ["adj_close"])

    (finding,) = detect(damaged)

    assert finding.kind == "dividend"
    assert finding.first == clean.index[220].date()
    assert finding.size == pytest.approx(1 / error, rel=0.01)
    assert "dividend of 0.4" in finding.describe()


def test_a_stopped_feed_is_stale_and_a_few_equal_closes_are_not() -> None:
    clean = walk()
    stale = clean.copy()
    rows = slice(100, 100 + STALE_MIN_SESSIONS + 2)
    for column in PRICES:
        stale.iloc[rows, stale.columns.get_loc(column)] = clean[column].iloc[99]
    stale.iloc[rows, stale.columns.get_loc("volume")] = 0.0
    pinned = clean.copy()  # the close pinned for a few sessions, the bars moving
    pinned.iloc[100:103, pinned.columns.get_loc("close")] = clean["close"].iloc[99]

    (finding,) = detect(stale)

    assert (finding.kind, finding.size) == ("stale", STALE_MIN_SESSIONS + 2)
    assert finding.first == clean.index[100].date()
    assert detect(pinned) == ()


def test_close_only_stale_run_needs_more_sessions() -> None:
    prices = walk()[["adj_close"]].copy()
    prices.iloc[100:106, 0] = prices.iloc[99, 0]
    assert detect(prices) == ()
    prices.iloc[100:115, 0] = prices.iloc[99, 0]
    assert [f.kind for f in detect(prices)] == ["stale"]


def test_gaps_longer_than_any_holiday_are_flagged() -> None:
    clean = walk()
    holiday = clean.drop(clean.index[100:104])  # four sessions, as after September 11
    missing = GAP_MAX_HOLIDAY_WEEKDAYS + 3
    gap = clean.drop(clean.index[100 : 100 + missing])

    assert detect(holiday) == ()
    (finding,) = detect(gap)
    assert (finding.kind, finding.size) == ("gap", missing)
    assert finding.first == clean.index[99].date()
    assert finding.last == clean.index[100 + missing].date()


def test_adjusted_close_alone_is_enough_for_jumps_units_and_gaps() -> None:
    prices = walk()[["adj_close"]]
    unit = scaled(prices, slice(50, 60), 0.01, ["adj_close"])
    jump = scaled(prices, slice(70, 71), 2.0, ["adj_close"])
    assert [f.kind for f in detect(unit)] == ["unit"]
    assert [f.describe()[:40] for f in detect(jump)] == [
        f"suspicious one-day jump on {prices.index[70].date()}: +100%"[:40]
    ]


def test_findings_are_in_date_order_and_say_what_they_are() -> None:
    clean = walk(600)
    damaged = scaled(clean, slice(400, 401), 2.0, PRICES)
    damaged = scaled(damaged, slice(100, 110), 100.0, PRICES)
    damaged = damaged.drop(damaged.index[500:520])
    findings = detect(damaged)
    assert [f.kind for f in findings] == ["unit", "jump", "gap"]
    assert all(isinstance(f, Finding) for f in findings)
    assert findings[0].describe().startswith("unit error: ")
    assert findings[2].describe().startswith("gap: no prices for 20 weekdays")


def test_short_or_degenerate_frames_have_no_findings() -> None:
    index = pd.bdate_range("2020-01-01", periods=2, name="date")
    assert detect(pd.DataFrame({"adj_close": [1.0, 2.0]}, index=index)) == ()
    assert detect(pd.DataFrame({"adj_close": [np.nan, 0.0]}, index=index)) == ()


def _prices(values: list[float]) -> pd.DataFrame:
    index = pd.bdate_range("2020-01-01", periods=len(values), name="date")
    return pd.DataFrame({"adj_close": np.asarray(values, dtype=float)}, index=index)


@pytest.mark.parametrize(
    ("values", "flagged"),
    [
        ([10, 10.1, 20.2, 10.2, 10.3], ["2020-01-03: +100% then -50%"]),
        ([10, 10.1, 5.0, 10.0, 10.1], ["2020-01-03: -50% then +100%"]),
        ([10, 10.1, 5.0, 5.1, 5.0], []),
        ([10, 10.1, 11.0, 10.2, 10.3], []),
        ([10, 10.1, 20.2, 15.0, 15.1], []),
    ],
    ids=["doubling-reverts", "halving-reverts", "crash-stays", "small-move", "half-reversal"],
)
def test_reverting_jumps_are_flagged(values: list[float], flagged: list[str]) -> None:
    jumps = [f.describe() for f in detect(_prices(values)) if f.kind == "jump"]
    assert len(jumps) == len(flagged)
    for warning, expected in zip(jumps, flagged, strict=True):
        assert warning.startswith(f"suspicious one-day jump on {expected}")
        assert warning.endswith("(a provider error?); prices kept as given")


def test_a_real_crash_is_not_flagged(sp500_sample: Path) -> None:
    frame = pd.read_csv(sp500_sample / "AAPL.csv", parse_dates=["timestamp"])
    prices = frame.set_index("timestamp")["adjusted_close"].sort_index()
    assert prices.pct_change().min() < -0.5  # 2000-09-29
    adjusted = pd.DataFrame({"adj_close": prices.to_numpy()}, index=prices.index)
    assert [f for f in detect(adjusted) if f.kind == "jump"] == []

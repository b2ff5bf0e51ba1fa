"""The Parquet price cache: layout, atomic writes, quarantine, and the refresh policy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.data import cache as cache_module
from pipeline.data.cache import (
    QUARANTINE_DIR,
    CacheMeta,
    PriceCache,
    meta_for_frame,
    normalize_price_frame,
)
from pipeline.data.refresh import (
    FetchPlan,
    covered_range,
    merge_refresh,
    overlap_matches,
    plan_fetch,
    plan_full_refetch,
)
from pipeline.data.sources.base import INDEX_NAME
from pipeline.errors import CacheLockedError, ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCHED_AT = datetime(2024, 1, 10, 22, 0, tzinfo=UTC)


def make_prices(start: str = "2023-01-02", periods: int = 10, scale: float = 1.0) -> pd.DataFrame:
    """Business days from `start`; adj_close 100, 101, ... times `scale`; all base columns."""
    index = pd.DatetimeIndex(pd.bdate_range(start, periods=periods), freq=None, name="date")
    adj = (100.0 + np.arange(periods)) * scale
    frame = pd.DataFrame(
        {
            "open": adj - 0.5,
            "high": adj + 1.0,
            "low": adj - 1.0,
            "close": adj + 0.25,
            "adj_close": adj,
            "volume": np.full(periods, 1e6),
        },
        index=index,
    )
    return frame.set_axis(index.as_unit("ns"))


def make_meta(frame: pd.DataFrame, ticker: str = "KO", **changes: object) -> CacheMeta:
    fields = {
        "ticker": ticker,
        "source": "fake",
        "source_identity": "fake:v1",
        "covered_start": frame.index[0].date(),
        "covered_through": frame.index[-1].date(),
        "fetched_at": FETCHED_AT,
    }
    return meta_for_frame(frame, **{**fields, **changes})  # type: ignore[arg-type]


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


# --- layout and round trip ----------------------------------------------------------------


def test_round_trip_preserves_frame_and_metadata(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    frame = make_prices()
    meta = make_meta(frame)

    path = cache.write("fake", "KO", frame, meta)
    back = cache.read("fake", "KO")

    assert path == tmp_path / "fake" / "KO.parquet"
    assert back is not None
    pd.testing.assert_frame_equal(back.frame, frame)
    assert back.meta == meta
    assert back.path == path
    assert back.frame.index.name == "date"
    assert set(back.frame.dtypes) == {np.dtype("float64")}


def test_metadata_lives_in_the_parquet_schema(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    frame = make_prices(periods=3)
    path = cache.write("fake", "KO", frame, make_meta(frame))

    stored = pq.read_schema(path).metadata[cache_module.METADATA_KEY]

    assert CacheMeta.from_json(stored).rows == 3
    assert '"fetched_at": "2024-01-10T22:00:00+00:00"' in stored.decode()


def test_write_normalises_the_frame(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    frame = make_prices(periods=4)[["volume", "adj_close"]]
    us_frame = frame.set_axis(frame.index.as_unit("us")).astype({"volume": "int64"})

    cache.write("fake", "KO", us_frame, make_meta(frame))
    back = cache.read("fake", "KO")

    assert back is not None
    assert list(back.frame.columns) == ["adj_close", "volume"]
    assert str(back.frame.index.dtype) == "datetime64[ns]"


def test_read_of_a_missing_file_is_a_miss(tmp_path: Path) -> None:
    assert PriceCache(tmp_path).read("fake", "KO") is None


def test_load_slices_inclusive_dates(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    frame = make_prices(periods=10)
    cache.write("fake", "KO", frame, make_meta(frame))

    loaded = cache.load("fake", "KO", date(2023, 1, 3), date(2023, 1, 5))

    assert list(loaded.index.strftime("%Y-%m-%d")) == ["2023-01-03", "2023-01-04", "2023-01-05"]
    with pytest.raises(DataError, match="XOM: no cached prices"):
        cache.load("fake", "XOM", date(2023, 1, 3), date(2023, 1, 5))


@pytest.mark.parametrize(
    "ticker",
    ["../evil", "a/b", "..", ".hidden", "/etc/passwd", "A\\B", "", "KO\x00"],
    ids=["parent", "slash", "dotdot", "dotfile", "absolute", "backslash", "empty", "nul"],
)
def test_path_traversal_symbols_are_rejected(tmp_path: Path, ticker: str) -> None:
    cache = PriceCache(tmp_path / "cache")
    frame = make_prices(periods=2)

    with pytest.raises(ConfigError, match="not a valid ticker symbol"):
        cache.path_for("fake", ticker)
    with pytest.raises(ConfigError, match="not a valid ticker symbol"):
        cache.write("fake", ticker, frame, make_meta(frame, ticker="KO"))
    assert list(tmp_path.rglob("*.parquet")) == []


@pytest.mark.parametrize("source_name", ["../x", "a/b", "", "UPPER"], ids=str)
def test_unsafe_source_names_are_rejected(tmp_path: Path, source_name: str) -> None:
    with pytest.raises(ConfigError, match="source name"):
        PriceCache(tmp_path).path_for(source_name, "KO")


def test_share_class_symbols_make_plain_file_names(tmp_path: Path) -> None:
    assert PriceCache(tmp_path).path_for("csv", "BRK.B") == tmp_path / "csv" / "BRK.B.parquet"


def test_write_refuses_metadata_that_does_not_describe_the_frame(tmp_path: Path) -> None:
    frame = make_prices(periods=5)
    with pytest.raises(ValueError, match="rows"):
        PriceCache(tmp_path).write("fake", "KO", frame, make_meta(frame.iloc[:3]))


# --- atomic writes ------------------------------------------------------------------------


@pytest.fixture
def cache_with_old_file(tmp_path: Path) -> tuple[PriceCache, pd.DataFrame]:
    cache = PriceCache(tmp_path)
    old = make_prices(periods=5)
    cache.write("fake", "KO", old, make_meta(old))
    return cache, old


def assert_old_file_intact(cache: PriceCache, old: pd.DataFrame) -> None:
    back = cache.read("fake", "KO")
    assert back is not None
    pd.testing.assert_frame_equal(back.frame, old)


def test_crash_before_rename_keeps_old_file_and_no_temp(
    cache_with_old_file: tuple[PriceCache, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, old = cache_with_old_file
    new = make_prices(periods=50)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(cache_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        cache.write("fake", "KO", new, make_meta(new))
    monkeypatch.undo()

    assert_old_file_intact(cache, old)
    assert temp_files(cache.root) == []


def test_crash_inside_parquet_writer_keeps_old_file_and_no_temp(
    cache_with_old_file: tuple[PriceCache, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, old = cache_with_old_file
    new = make_prices(periods=50)

    def write_some_then_fail(table: object, where: object, **kwargs: object) -> None:
        where.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise RuntimeError("writer died")

    monkeypatch.setattr(cache_module.pq, "write_table", write_some_then_fail)
    with pytest.raises(RuntimeError, match="writer died"):
        cache.write("fake", "KO", new, make_meta(new))
    monkeypatch.undo()

    assert_old_file_intact(cache, old)
    assert temp_files(cache.root) == []


KILLED_WRITER = textwrap.dedent(
    """
    import io, os, signal, sys
    from datetime import UTC, datetime
    import numpy as np, pandas as pd
    from pipeline.data import cache as cache_module

    real_write = cache_module.pq.write_table

    def write_half_then_die(table, where, **kwargs):
        buffer = io.BytesIO()
        real_write(table, buffer, **kwargs)
        where.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        where.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    cache_module.pq.write_table = write_half_then_die
    index = pd.DatetimeIndex(pd.bdate_range("2000-01-03", periods=20_000), name="date")
    columns = ("open", "high", "low", "close", "adj_close", "volume")
    frame = pd.DataFrame({c: np.linspace(1.0, 2.0, len(index)) for c in columns}, index=index)
    meta = cache_module.meta_for_frame(
        frame, ticker="KO", source="fake", source_identity="fake:v1",
        covered_start=index[0].date(), covered_through=index[-1].date(),
        fetched_at=datetime.now(UTC),
    )
    cache_module.PriceCache(sys.argv[1]).write("fake", "KO", frame, meta)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid checks are POSIX")
def test_writer_killed_mid_write_leaves_old_file_and_next_open_cleans_up(
    cache_with_old_file: tuple[PriceCache, pd.DataFrame],
) -> None:
    cache, old = cache_with_old_file
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(cache.root)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(temp_files(cache.root)) == 1  # the dead writer's half file
    reopened = PriceCache(cache.root)
    assert temp_files(cache.root) == []
    assert_old_file_intact(reopened, old)


def test_temp_files_of_a_live_writer_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "fake").mkdir()
    in_flight = tmp_path / "fake" / f".KO.parquet.{os.getpid()}.0123abcd.tmp"
    in_flight.write_bytes(b"being written by another thread")

    PriceCache(tmp_path)

    assert in_flight.exists()


# --- unusable files -----------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not parquet at all")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _plain_parquet(path: Path) -> None:
    make_prices().to_parquet(path)  # no pipeline metadata


def _another_tickers_file(path: Path) -> None:
    shutil.copy(path.with_name("XOM.parquet"), path)


def _bad_adj_close(path: Path) -> None:
    table = pq.read_table(path)
    table = table.drop_columns(["adj_close"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(table, path)


def _rewritten(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """The file with `change` made to its table, its pipeline metadata kept."""
    table = pq.read_table(path)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), path)


def _extra_column(path: Path) -> None:
    _rewritten(path, lambda t: t.append_column("dividends", pa.array([0.0] * t.num_rows)))


def _text_prices(path: Path) -> None:
    def text(table: pa.Table) -> pa.Table:
        at = table.column_names.index("close")
        return table.set_column(at, "close", pa.array(["n/a"] * table.num_rows))

    _rewritten(path, text)


def _intraday_dates(path: Path) -> None:
    def shifted(table: pa.Table) -> pa.Table:
        at = table.column_names.index(INDEX_NAME)
        dates = table.column(INDEX_NAME).to_numpy() + np.timedelta64(16, "h")
        return table.set_column(at, INDEX_NAME, pa.array(dates))

    _rewritten(path, shifted)


def _zoned_dates(path: Path) -> None:
    def zoned(table: pa.Table) -> pa.Table:
        at = table.column_names.index(INDEX_NAME)
        dates = table.column(INDEX_NAME).cast(pa.timestamp("ns", tz="UTC"))
        return table.set_column(at, INDEX_NAME, dates)

    _rewritten(path, zoned)


@pytest.mark.parametrize(
    "damage",
    [
        _garbage,
        _truncated,
        _plain_parquet,
        _another_tickers_file,
        _bad_adj_close,
        _extra_column,
        _text_prices,
        _intraday_dates,
        _zoned_dates,
    ],
    ids=[
        "garbage",
        "truncated",
        "no-metadata",
        "other-ticker",
        "no-adj-close",
        "extra-column",
        "text-prices",
        "intraday-dates",
        "zoned-dates",
    ],
)
def test_unusable_file_is_quarantined_and_read_as_a_miss(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    cache = PriceCache(tmp_path)
    frame = make_prices()
    cache.write("fake", "KO", frame, make_meta(frame))
    cache.write("fake", "XOM", frame, make_meta(frame, ticker="XOM"))
    path = cache.path_for("fake", "KO")
    damage(path)  # type: ignore[operator]

    assert cache.read("fake", "KO") is None

    assert not path.exists()
    moved = list((tmp_path / "fake" / QUARANTINE_DIR).iterdir())
    assert [p.name.split(".corrupt-")[0] for p in moved] == ["KO.parquet"]
    assert "KO.parquet is unusable" in caplog.text
    assert cache.read("fake", "XOM") is not None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (make_prices().tz_localize("UTC"), "tz-naive"),
        (make_prices().iloc[[0, 0, 1]], "strictly increasing"),
        (make_prices().iloc[::-1], "strictly increasing"),
        (make_prices().assign(dividends=0.0), "among"),
        (make_prices().drop(columns="adj_close"), "adj_close"),
        (make_prices().set_axis(make_prices().index + pd.Timedelta(hours=16)), "midnight"),
        (make_prices().assign(close="n/a"), "numeric"),
        (make_prices().reset_index(), "DatetimeIndex"),
    ],
    ids=["tz", "duplicates", "unsorted", "extra-column", "no-adj", "intraday", "text", "no-index"],
)
def test_normalize_refuses_frames_of_another_shape(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_price_frame(frame)


# --- lock ---------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="the lock uses fcntl")
def test_second_run_on_a_locked_cache_is_refused(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path)
    with (
        cache.lock(),
        pytest.raises(CacheLockedError, match=f"pid {os.getpid()}"),
        PriceCache(tmp_path).lock(),
    ):
        pass
    with cache.lock():  # released on exit
        pass


# --- refresh policy -----------------------------------------------------------------------

META = make_meta(
    make_prices("2023-01-02", periods=65),  # 2023-01-02 .. 2023-03-31
    covered_start=date(2023, 1, 1),
    covered_through=date(2023, 3, 31),
)
TODAY = date(2024, 1, 10)


@pytest.mark.parametrize(
    ("meta", "identity", "start", "end", "expected"),
    [
        (
            None,
            "fake:v1",
            date(2023, 1, 1),
            date(2023, 3, 31),
            ("full", "2023-01-01", "2023-03-31"),
        ),
        (
            META,
            "fake:v2",
            date(2023, 1, 1),
            date(2023, 3, 31),
            ("full", "2023-01-01", "2023-03-31"),
        ),
        (META, "fake:v1", date(2022, 6, 1), date(2023, 2, 1), ("full", "2022-06-01", "2023-03-31")),
        (META, "fake:v1", date(2023, 1, 1), date(2023, 3, 31), ("hit", None, None)),
        (META, "fake:v1", date(2023, 2, 1), date(2023, 3, 1), ("hit", None, None)),
        (
            META,
            "fake:v1",
            date(2023, 1, 1),
            date(2023, 6, 30),
            ("refresh", "2023-03-26", "2023-06-30"),
        ),
        (
            META,
            "fake:v1",
            date(2023, 5, 1),
            date(2023, 6, 30),
            ("refresh", "2023-03-26", "2023-06-30"),
        ),
    ],
    ids=["no-cache", "other-identity", "earlier-start", "exact", "inside", "later-end", "gap"],
)
def test_plan_fetch(
    meta: CacheMeta | None, identity: str, start: date, end: date, expected: tuple
) -> None:
    plan = plan_fetch(meta, identity, start, end, today=TODAY, overlap_days=5)

    fetch_start = plan.fetch_start.isoformat() if plan.fetch_start else None
    fetch_end = plan.fetch_end.isoformat() if plan.fetch_end else None
    assert (plan.action, fetch_start, fetch_end) == expected


def test_future_end_date_is_a_hit_once_covered_through_today() -> None:
    meta = make_meta(make_prices(periods=5), covered_through=TODAY)

    same_day = plan_fetch(
        meta, "fake:v1", date(2023, 1, 2), date(2030, 1, 1), today=TODAY, overlap_days=5
    )
    next_day = plan_fetch(
        meta, "fake:v1", date(2023, 1, 2), date(2030, 1, 1), today=date(2024, 1, 11), overlap_days=5
    )

    assert same_day.action == "hit"
    assert next_day.action == "refresh"


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (FetchPlan("full", date(2023, 1, 1), date(2030, 1, 1)), (date(2023, 1, 1), TODAY)),
        (
            FetchPlan("full", date(2023, 1, 1), date(2023, 6, 30)),
            (date(2023, 1, 1), date(2023, 6, 30)),
        ),
        (
            FetchPlan("refresh", date(2023, 3, 26), date(2023, 6, 30)),
            (date(2023, 1, 1), date(2023, 6, 30)),
        ),
    ],
    ids=["future-end-capped", "full", "refresh-extends"],
)
def test_covered_range(plan: FetchPlan, expected: tuple[date, date]) -> None:
    assert covered_range(plan, META, TODAY) == expected


def test_full_refetch_after_restatement_covers_the_whole_history() -> None:
    refresh = FetchPlan("refresh", date(2023, 3, 26), date(2023, 6, 30))
    plan = plan_full_refetch(META, refresh)
    assert (plan.action, plan.fetch_start, plan.fetch_end) == (
        "full",
        date(2023, 1, 1),
        date(2023, 6, 30),
    )


CACHED = make_prices(periods=10)
NEVER = date(2100, 1, 1)


@pytest.mark.parametrize(
    ("fresh", "provisional_from", "expected"),
    [
        (make_prices(periods=20).iloc[6:], NEVER, True),
        (make_prices(periods=20).iloc[6:] * (1 + 1e-9), NEVER, True),
        (make_prices(periods=20, scale=0.99).iloc[6:], NEVER, False),
        (make_prices(periods=20).iloc[12:], NEVER, False),
        (make_prices(periods=20).iloc[9:].assign(adj_close=1.0), CACHED.index[-1].date(), False),
        (
            make_prices(periods=20)
            .iloc[6:]
            .pipe(
                lambda f: f.assign(adj_close=f.adj_close.where(f.index != CACHED.index[-1], 1.0))
            ),
            CACHED.index[-1].date(),
            True,
        ),
    ],
    ids=[
        "same",
        "float-noise",
        "restated",
        "no-overlap",
        "only-provisional",
        "provisional-differs",
    ],
)
def test_overlap_matches(fresh: pd.DataFrame, provisional_from: date, expected: bool) -> None:
    assert overlap_matches(CACHED, fresh, provisional_from) is expected


@given(
    n=st.integers(min_value=2, max_value=40),
    data=st.data(),
)
def test_merge_of_a_consistent_refresh_rebuilds_the_series(n: int, data: st.DataObject) -> None:
    full = make_prices(periods=n)
    cached_rows = data.draw(st.integers(min_value=1, max_value=n - 1), label="cached_rows")
    refresh_from = data.draw(st.integers(min_value=0, max_value=cached_rows), label="refresh_from")
    fetch_start = full.index[refresh_from].date()

    merged = merge_refresh(full.iloc[:cached_rows], full.iloc[refresh_from:], fetch_start)

    pd.testing.assert_frame_equal(merged, full)


def test_merge_replaces_cached_rows_inside_the_refreshed_window() -> None:
    cached = make_prices(periods=10)
    fresh = make_prices(periods=12).iloc[8:].assign(close=-1.0)

    merged = merge_refresh(cached, fresh, fresh.index[0].date())

    assert len(merged) == 12
    assert (merged["close"].iloc[8:] == -1.0).all()
    assert (merged["close"].iloc[:8] == cached["close"].iloc[:8]).all()

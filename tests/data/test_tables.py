"""read_parquet: the table pyarrow reads, from a path, its text or an open file; the same
errors for a missing, empty or truncated file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.tables import read_parquet


@pytest.fixture
def written(tmp_path: Path) -> Path:
    table = pa.table(
        {
            "date": pa.array(np.datetime64("2000-01-03", "ns") + np.arange(3000) * 86_400 * 10**9),
            "adj_close": np.random.default_rng(0).lognormal(size=3000),
            "volume": np.arange(3000.0),
        }
    ).replace_schema_metadata({"pipeline.cache": '{"ticker": "KO"}'})
    path = tmp_path / "KO.parquet"
    pq.write_table(table, path)
    return path


def test_every_kind_of_source_reads_the_table_pyarrow_reads(written: Path) -> None:
    expected = pq.read_table(written)
    with open(written, "rb") as handle:
        from_handle = read_parquet(handle)
    for table in (read_parquet(written), read_parquet(str(written)), from_handle):
        assert table.equals(expected)
        assert table.schema.metadata == expected.schema.metadata


def test_only_the_columns_asked_for(written: Path) -> None:
    table = read_parquet(written, columns=["date", "adj_close"])
    assert table.column_names == ["date", "adj_close"]
    assert table.equals(pq.read_table(written, columns=["date", "adj_close"]))


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_parquet(tmp_path / "missing.parquet")


@pytest.mark.parametrize("cut", [0, 10, 200, -8, -1], ids=["empty", "10", "200", "-8", "-1"])
def test_a_truncated_or_empty_file_raises_arrow_s_error(written: Path, cut: int) -> None:
    data = written.read_bytes()
    written.write_bytes(data[:cut])
    with pytest.raises((pa.ArrowException, OSError)):
        read_parquet(written)

"""Reading the small Parquet files this package writes (price cache, results store).

`pq.read_table` goes through pyarrow's dataset layer (file discovery, partitioning, a
scanner), which costs about 1 ms a file before any page is decoded: on a 20-year price file,
half of the read. A nightly run reads two or three such files per ticker, so they are read
through `ParquetFile` instead, which decodes the same table (same schema metadata, same
errors for a truncated or corrupt file) without that layer (benchmarks/RESULTS.md).

They are decoded on the calling thread (`use_threads=False`): a file of a few thousand rows is
decoded faster than pyarrow's thread pool hands its columns out and back, and the processes
that read them (the data stage's threads, the backtest's workers) already keep every core busy.

And from their bytes in memory: given a path, pyarrow resolves a filesystem for it, and given a
Python file, it reads through Python calls, page by page; a file of a few hundred KiB read whole
first and decoded from memory took 0.13-0.66 ms instead of 0.3-0.84 ms (a store entry, a whole
price file), 0.21 instead of 0.43 ms for the two columns a backtest reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq


def read_parquet(source: Path | str | BinaryIO, columns: Sequence[str] | None = None) -> pa.Table:
    """The whole table of one Parquet file, or only `columns`."""
    with pq.ParquetFile(pa.BufferReader(_contents(source))) as parquet_file:
        selected = list(columns) if columns is not None else None
        return parquet_file.read(columns=selected, use_threads=False)


def _contents(source: Path | str | BinaryIO) -> bytes:
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            return handle.read()
    return source.read()

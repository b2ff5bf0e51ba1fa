"""The one place that turns `data.source` into a price source."""

from __future__ import annotations

from pipeline.config import DataConfig
from pipeline.data.sources.base import PriceSource
from pipeline.errors import ConfigError

SOURCES = ("yfinance", "csv", "synthetic")


def make_source(data: DataConfig) -> PriceSource:
    """The source named by `data.source`, built from its part of the data config.

    yfinance is imported only when it is chosen: it is slow to import and offline runs never
    need it.
    """
    if data.source == "yfinance":
        from pipeline.data.sources.yahoo import YahooSource

        return YahooSource(
            timeout_seconds=data.download.timeout_seconds, repair=data.download.repair
        )
    if data.source == "csv":
        from pipeline.data.sources.csv_source import CsvSource

        if data.path is None:
            raise ConfigError("data.path: source 'csv' needs the directory of <TICKER>.csv files")
        return CsvSource(data.path)
    if data.source == "synthetic":
        from pipeline.data.sources.synthetic import SyntheticSource

        return SyntheticSource(data.synthetic)
    raise ConfigError(f"data.source: {data.source!r} is not a source; valid: {', '.join(SOURCES)}")

"""make_source: data.source picks the source, each built from its part of the data config."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.config import DataConfig
from pipeline.data.sources.csv_source import CsvSource
from pipeline.data.sources.registry import make_source
from pipeline.data.sources.synthetic import SyntheticSource
from pipeline.data.sources.yahoo import YahooSource


def data_config(**values: object) -> DataConfig:
    dates = {"start": date(2020, 1, 1), "end": date(2020, 12, 31)}
    return DataConfig.model_validate({**dates, **values})


def test_yfinance_gets_the_download_timeout() -> None:
    source = make_source(
        data_config(source="yfinance", tickers=["KO"], download={"timeout_seconds": 12.5})
    )
    assert isinstance(source, YahooSource)
    assert source.timeout_seconds == 12.5


def test_csv_gets_the_directory(tmp_path: Path) -> None:
    source = make_source(data_config(source="csv", tickers=["KO"], path=tmp_path))
    assert isinstance(source, CsvSource)
    assert source.identity() == f"csv:{tmp_path.resolve()}"


def test_synthetic_gets_its_section() -> None:
    source = make_source(data_config(source="synthetic", synthetic={"seed": 7, "n_days": 300}))
    assert isinstance(source, SyntheticSource)
    assert source.identity().startswith("synthetic:seed=7,n_days=300")
    assert len(source.calendar) == 300

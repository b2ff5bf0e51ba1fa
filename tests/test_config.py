from datetime import date
from pathlib import Path

import pytest

from pipeline.config import (
    Config,
    apply_overrides,
    load_config,
    parse_override,
    synthetic_symbols,
)
from pipeline.errors import ConfigError

MINIMAL = {"data": {"source": "synthetic", "start": date(2015, 1, 1), "end": date(2020, 1, 1)}}


def with_data(**data: object) -> dict:
    return {"data": {**MINIMAL["data"], **data}}


def test_defaults_follow_the_contract() -> None:
    config = load_config(MINIMAL)
    assert config.features.lags == 6
    assert config.model.kind == "svc" and config.model.fast_path is True
    assert config.backtest.mode == "walk_forward"
    assert (config.backtest.train_days, config.backtest.retrain_every) == (504, 21)
    assert config.backtest.window == "expanding" and config.backtest.cost_bps == 0.0
    assert config.execution.executor == "pool"
    assert config.execution.workers == "auto" and config.execution.chunksize == "auto"
    assert config.data.cache_dir == Path("data/cache")
    assert config.report.out_dir == Path("reports")
    assert config.data.download.threads == 8


def test_end_defaults_to_today() -> None:
    raw = {"data": {"source": "synthetic", "start": date(2015, 1, 1)}}
    assert load_config(raw).data.end == date.today()


def test_config_is_frozen() -> None:
    config = load_config(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        config.features.lags = 3  # type: ignore[misc]


def test_synthetic_universe_is_named_from_n_tickers() -> None:
    config = load_config(MINIMAL, ["data.synthetic.n_tickers=3"])
    assert config.data.universe == ("SYN000", "SYN001", "SYN002")
    assert synthetic_symbols(1000)[-1] == "SYN999"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (with_data(colour="red"), r"^data\.colour: unknown key \(valid keys: source, tickers"),
        ({**MINIMAL, "modle": {}}, r"^modle: unknown key"),
        (with_data(source="bloomberg"), r"^data\.source: .*'yfinance', 'csv' or 'synthetic'"),
        (with_data(start=date(2021, 1, 1)), r"^data\.start: 2021-01-01 is after end 2020-01-01"),
        (with_data(source="yfinance"), r"^data\.tickers: is empty"),
        (with_data(source="csv", tickers=["KO"]), r"^data\.path: source 'csv' needs"),
        (with_data(tickers=["KO", "KO"]), r"data\.tickers: .*'KO' is listed twice"),
        (with_data(tickers=["../../etc/passwd"]), r"^data\.tickers: '\.\./\.\./etc/passwd'"),
        ({**MINIMAL, "features": {"lags": "six"}}, r"^features\.lags: .*integer.*got 'six'"),
        ({**MINIMAL, "features": {"lags": 0}}, r"^features\.lags: .*greater than or equal to 1"),
        ({**MINIMAL, "model": {"kind": "xgboost"}}, r"^model\.kind: unknown model 'xgboost'"),
        ({**MINIMAL, "backtest": {"mode": "oracle"}}, r"^backtest\.mode: .*'walk_forward'"),
        ({**MINIMAL, "model": {"params": {"gama": 1}}}, r"^model\.params: 'gama' is not a param"),
        ({**MINIMAL, "model": {"params": {"C": -1.0}}}, r"^model\.params: .*'C' parameter"),
        ({**MINIMAL, "execution": {"workers": 0}}, r"^execution\.workers: must be 'auto' or"),
        ({**MINIMAL, "execution": {"chunksize": "big"}}, r"^execution\.chunksize: must be"),
        ({"features": {"lags": 6}}, r"^data: required key is missing"),
    ],
    ids=[
        "unknown-key",
        "unknown-section",
        "bad-source",
        "start-after-end",
        "empty-tickers",
        "csv-without-path",
        "duplicate-ticker",
        "path-traversal",
        "wrong-type",
        "out-of-range",
        "unknown-model",
        "bad-mode",
        "misspelt-param",
        "bad-param-value",
        "zero-workers",
        "bad-chunksize",
        "missing-section",
    ],
)
def test_bad_configs_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


@pytest.mark.parametrize(
    ("assignment", "path", "value"),
    [
        ("execution.workers=2", ["execution", "workers"], 2),
        ("data.source=csv", ["data", "source"], "csv"),
        ('data.tickers=["KO","XOM"]', ["data", "tickers"], ["KO", "XOM"]),
        ("data.start=2001-02-03", ["data", "start"], date(2001, 2, 3)),
        ("model.fast_path=false", ["model", "fast_path"], False),
        ("backtest.cost_bps=2.5", ["backtest", "cost_bps"], 2.5),
        ("data.synthetic.seed=7", ["data", "synthetic", "seed"], 7),
        ('data.path="a dir"', ["data", "path"], "a dir"),
        ("data.path=some/dir", ["data", "path"], "some/dir"),
    ],
    ids=["int", "bare-word", "array", "date", "bool", "float", "nested", "quoted", "bare-path"],
)
def test_set_values_are_read_as_toml_or_bare_strings(
    assignment: str, path: list[str], value: object
) -> None:
    assert parse_override(assignment) == (path, value)


@pytest.mark.parametrize(
    "assignment", ["workers", "=3", "execution.=3", ".workers=2"], ids=str
)
def test_malformed_set_is_a_config_error(assignment: str) -> None:
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        parse_override(assignment)


def test_overrides_do_not_mutate_the_raw_config() -> None:
    raw = with_data(tickers=["KO"])
    merged = apply_overrides(raw, ['data.tickers=["XOM"]', "execution.workers=2"])
    assert raw["data"]["tickers"] == ["KO"] and "execution" not in raw
    assert merged["data"]["tickers"] == ["XOM"] and merged["execution"] == {"workers": 2}


def test_override_into_a_value_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'source' is a value, not a section"):
        apply_overrides(MINIMAL, ["data.source.kind=x"])


def test_overridden_key_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"^execution\.executor: "):
        load_config(MINIMAL, ["execution.executor=threads"])


def test_tickers_file_is_read_one_symbol_a_line(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\n# energy\nXOM  # oil\n\nBRK.B\n")
    config = load_config(with_data(source="yfinance", tickers_file=str(listing)))
    assert config.data.universe == ("KO", "XOM", "BRK.B")


def test_tickers_file_symbols_are_validated(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\n../secret\n")
    with pytest.raises(ConfigError, match=r"data\.tickers: '\.\./secret'"):
        load_config(with_data(source="yfinance", tickers_file=str(listing)))


def test_tickers_and_tickers_file_together_are_rejected(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\n")
    raw = with_data(source="yfinance", tickers=["XOM"], tickers_file=str(listing))
    with pytest.raises(ConfigError, match="either tickers or tickers_file"):
        load_config(raw)


def test_set_tickers_replaces_a_tickers_file_and_back(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\nIBM\n")
    from_file = with_data(source="yfinance", tickers_file=str(listing))
    assert load_config(from_file, ['data.tickers=["XOM"]']).data.universe == ("XOM",)
    listed = with_data(source="yfinance", tickers=["XOM"])
    config = load_config(listed, [f"data.tickers_file={listing.as_posix()}"])
    assert config.data.universe == ("KO", "IBM")


def test_a_config_from_a_tickers_file_takes_overrides(tmp_path: Path) -> None:
    listing = tmp_path / "universe.txt"
    listing.write_text("KO\nIBM\n")
    config = load_config(with_data(source="yfinance", tickers_file=str(listing)))
    again = load_config(config, ["features.lags=3"])
    assert again.data.universe == ("KO", "IBM")
    assert again.features.lags == 3


def test_missing_and_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\nsource=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_digest_is_stable_and_sensitive() -> None:
    first, again = load_config(MINIMAL), load_config(MINIMAL)
    changed = load_config(MINIMAL, ["features.lags=5"])
    assert first.digest() == again.digest()
    assert first.digest() != changed.digest()


def test_resolved_config_round_trips() -> None:
    config = load_config(MINIMAL, ["model.params={C=2.0}"])
    assert Config.model_validate(config.to_dict()) == config


@pytest.mark.parametrize("name", ["demo.toml", "article.toml", "sp500-sample.toml"], ids=str)
def test_shipped_configs_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    sample = root.parent / "shared" / "data" / "sp500-sample"
    if name == "sp500-sample.toml" and not sample.is_dir():
        pytest.skip("its csv data.path, the shared real-price sample, is not beside the project")
    monkeypatch.chdir(root)
    config = load_config(root / "configs" / name)
    assert config.data.universe

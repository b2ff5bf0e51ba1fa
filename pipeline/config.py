"""The run's configuration: TOML parsed once into validated, frozen objects.

Every stage receives only its own section (`DataConfig`, `BacktestSettings`, ...). Paths are
relative to the working directory the pipeline is started from, as a shell user expects.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.backtest.models import check_model_params, known_model_kinds
from pipeline.configs import missing_config_hint, read_config_text
from pipeline.display import clip_words, short_repr, shorten
from pipeline.errors import ConfigError
from pipeline.symbols import validate_symbol

DEFAULT_CONFIG_PATH = Path("configs/demo.toml")
# The whole days pandas' nanosecond timestamps hold (1677-09-21 00:12 to 2262-04-11 23:47).
FIRST_DAY = date(1677, 9, 22)
LAST_DAY = date(2262, 4, 11)
SYNTHETIC_PREFIX = "SYN"


class _Section(BaseModel):
    # Every float a config takes is finite: cost_bps = inf or a NaN timeout is refused here,
    # naming the key, instead of failing every ticker (or never stopping) later.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SyntheticConfig(_Section):
    """The built-in synthetic universe: deterministic from `seed`."""

    n_tickers: int = Field(20, ge=1, le=100_000)
    n_days: int = Field(2520, ge=30, le=100_000)
    seed: int = Field(0, ge=0)


class DownloadConfig(_Section):
    """How the data stage talks to a source: concurrency, retries, pacing."""

    threads: int = Field(8, ge=1, le=64)
    retries: int = Field(4, ge=0, le=20)
    backoff_seconds: float = Field(1.0, ge=0)
    max_backoff_seconds: float = Field(60.0, ge=0)
    requests_per_second: float = Field(2.0, gt=0)
    timeout_seconds: float = Field(60.0, gt=0)
    refresh_overlap_days: int = Field(5, ge=1, le=60)
    # yfinance: ask for yfinance's own price repair; what it changed becomes data notes.
    repair: bool = True
    # A symbol the source called unknown or delisted is not asked for again for this many days.
    dead_ttl_days: int = Field(7, ge=0, le=3650)


class DataConfig(_Section):
    source: Literal["yfinance", "csv", "synthetic"]
    tickers: tuple[str, ...] = ()
    tickers_file: Path | None = None
    start: date
    end: date = Field(default_factory=date.today)
    path: Path | None = None
    cache_dir: Path = Path("data/cache")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    # Detected provider errors: flag them and keep the prices, skip the ticker, or repair what
    # can be repaired safely (pipeline.data.quality).
    quality: Literal["warn", "skip", "repair"] = "warn"

    @field_validator("tickers")
    @classmethod
    def _symbols_are_safe(cls, tickers: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for symbol in tickers:
            validate_symbol(symbol)
            if symbol in seen:
                raise ValueError(f"{symbol!r} is listed twice")
            seen.add(symbol)
        return tickers

    @field_validator("start", "end")
    @classmethod
    def _pandas_can_hold(cls, day: date) -> date:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(
                f"{day.isoformat()} is outside the days a price table can hold "
                f"({FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()})"
            )
        return day

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.start > self.end:
            raise _key_error("start", f"{self.start} is after end {self.end}; need start <= end")
        if self.source == "csv" and self.path is None:
            raise _key_error("path", "source 'csv' needs the directory of <TICKER>.csv files")
        if self.source == "csv" and not self.path.is_dir():
            # Checked before the run, not found out ticker by ticker after it.
            what = "is not a directory" if self.path.exists() else "does not exist"
            raise _key_error(
                "path",
                f"{str(self.path)!r} {what}; source 'csv' reads <TICKER>.csv files from a "
                f"directory (relative paths start at {str(Path.cwd())!r})",
            )
        if self.source != "synthetic" and not self.tickers:
            raise _key_error("tickers", "is empty; list at least one symbol or give tickers_file")
        return self

    @property
    def universe(self) -> tuple[str, ...]:
        """The requested tickers, in the requested order."""
        if self.tickers:
            return self.tickers
        return synthetic_symbols(self.synthetic.n_tickers)


class FeaturesConfig(_Section):
    lags: int = Field(6, ge=1, le=64)


class ModelConfig(_Section):
    kind: str = "svc"
    params: dict[str, Any] = Field(default_factory=dict)
    fast_path: bool = True

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        kinds = known_model_kinds()
        if kind not in kinds:
            raise ValueError(f"unknown model {kind!r}; valid: {', '.join(sorted(kinds))}")
        return kind

    @model_validator(mode="after")
    def _params_fit_the_model(self) -> ModelConfig:
        bad = _first_non_finite(self.params)
        if bad is not None:
            key, value = bad
            # C = inf validates in scikit-learn and then never converges: refuse it here.
            raise _key_error(f"params.{key}", f"must be a finite number, got {value!r}")
        try:
            check_model_params(self.kind, self.params)
        except ValueError as exc:
            raise _key_error("params", str(exc)) from None
        return self


class BacktestConfig(_Section):
    mode: Literal["in_sample", "holdout", "walk_forward"] = "walk_forward"
    train_days: int = Field(504, ge=10)
    retrain_every: int = Field(21, ge=1)
    window: Literal["expanding", "rolling"] = "expanding"
    cost_bps: float = Field(0.0, ge=0)
    train_fraction: float = Field(0.7, gt=0, lt=1)
    min_eval_days: int = Field(20, ge=1)


class ExecutionConfig(_Section):
    executor: Literal["serial", "pool", "dask"] = "pool"
    workers: Literal["auto"] | int = "auto"
    chunksize: Literal["auto"] | int = "auto"
    dask_address: str | None = None
    # "auto": derived from the work (`tuning.task_timeout`); "off" (or None): no timeout.
    task_timeout_seconds: float | Literal["auto", "off"] | None = "auto"

    @field_validator("task_timeout_seconds", mode="before")
    @classmethod
    def _positive_seconds(cls, value: Any) -> Any:
        if value is None or value in ("auto", "off"):
            return value
        if type(value) in (int, float) and math.isfinite(value) and value > 0:
            return float(value)
        raise ValueError(f"must be a number of seconds > 0, 'auto' or 'off', got {value!r}")

    @field_validator("workers", "chunksize", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: Any) -> Any:
        if value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError(f"must be 'auto' or an integer >= 1, got {value!r}")


class IntervalSettings(_Section):
    """Stationary-bootstrap intervals (METHOD.md, "Uncertainty"); samples = 0 turns them off."""

    samples: int = Field(1000, ge=0, le=100_000)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = Field(0, ge=0)


class ReportConfig(_Section):
    out_dir: Path = Path("reports")
    bootstrap_samples: int = Field(1000, ge=0, le=100_000)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = Field(0, ge=0)

    @property
    def intervals(self) -> IntervalSettings:
        return IntervalSettings(
            samples=self.bootstrap_samples, confidence=self.confidence, seed=self.seed
        )


class BacktestSettings(_Section):
    """What the per-ticker task needs, and nothing more: small, frozen, picklable."""

    features: FeaturesConfig
    model: ModelConfig
    backtest: BacktestConfig
    intervals: IntervalSettings = Field(default_factory=IntervalSettings)


class Config(_Section):
    data: DataConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @property
    def backtest_settings(self) -> BacktestSettings:
        return BacktestSettings(
            features=self.features,
            model=self.model,
            backtest=self.backtest,
            intervals=self.report.intervals,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, every default spelled out: what the manifest records."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """A short stable hash of the resolved config."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def config_warnings(config: Config, today: date | None = None) -> list[str]:
    """What is valid but probably not meant: one line each, for the log before a run."""
    today = today or date.today()
    found = []
    if config.data.end > today:
        found.append(
            f"data.end {config.data.end} is in the future (today is {today}): prices end at "
            "the last session the source has"
        )
    return found


def _first_non_finite(value: Any, key: str = "") -> tuple[str, float] | None:
    """The first (dotted key, number) in `value` that is NaN or infinite, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for name, item in items:
        found = _first_non_finite(item, f"{key}.{name}" if key else name)
        if found is not None:
            return found
    return None


def _key_error(key: str, message: str) -> ValueError:
    """A model-level check's error, tagged with the key it is about."""
    return ValueError(f"{_KEY_TAG}{key}{_KEY_TAG}{message}")


_KEY_TAG = "\x1f"


def synthetic_symbols(count: int) -> tuple[str, ...]:
    width = max(3, len(str(count - 1)))
    return tuple(f"{SYNTHETIC_PREFIX}{i:0{width}d}" for i in range(count))


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """Split `section.key=value`; the value is read as TOML, a bare word as a string.

    A value that opens TOML syntax (a list, a table, a quoted string) must be valid TOML: a
    broken one is an error naming the position, never silently a string.
    """
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    text = raw.strip()
    try:
        value = tomllib.loads(f"{_VALUE_PREFIX}{text}")["value"]
    except RecursionError:
        raise ConfigError(f"--set {key}: the value nests too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        if text.startswith(_TOML_OPENERS):
            raise ConfigError(_toml_value_error(key, text, exc)) from None
        value = text
    return key.split("."), value


_VALUE_PREFIX = "value = "
_TOML_OPENERS = ("[", "{", '"', "'")
_TOML_POSITION = re.compile(r"\(at line \d+, column (\d+)\)|\(at end of document\)")


def _toml_value_error(key: str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """'--set data.tickers=[KO: not valid TOML at character 2 of the value (Invalid value)'."""
    reason = str(exc)
    found = _TOML_POSITION.search(reason)
    where = "at its end"
    if found and found.group(1):
        where = f"at character {int(found.group(1)) - len(_VALUE_PREFIX)}"
    detail = reason[: found.start()].strip() if found else reason
    message = f"--set {key}={text}: the value is not valid TOML {where} ({detail})"
    if text.startswith("[") and '"' not in text and "'" not in text:
        # The shell removes quotes that are not protected: ["KO"] arrives as [KO].
        message += f"; quote the strings and the whole assignment: --set '{key}=" + (
            _toml_list(text.strip("[]")) + "'"
        )
    return message


def _toml_list(words: str) -> str:
    """'KO, XOM' -> '["KO","XOM"]': the list a user meant by a bare word or two."""
    return json.dumps([w for w in re.split(r"[\s,]+", words) if w], separators=(",", ":"))


# Keys that say the same thing two ways: setting one with --set replaces the other.
ALTERNATIVE_KEYS = {("data", "tickers"): "tickers_file", ("data", "tickers_file"): "tickers"}


def apply_overrides(raw: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """A deep copy of `raw` with each `--set` assignment applied in order.

    `--set data.tickers=[...]` on a config with a tickers_file replaces the file, and the other
    way round, as the user means.
    """
    merged = _deep_copy(raw)
    for assignment in assignments:
        path, value = parse_override(assignment)
        node = merged
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {assignment!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
        alternative = ALTERNATIVE_KEYS.get(tuple(path))
        if alternative is not None:
            node.pop(alternative, None)
    return merged


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


def read_toml(path: Path, is_default: bool = False) -> dict[str, Any]:
    """A config file's TOML; a packaged config's where `path` names one (pipeline.configs)."""
    packaged = read_config_text(path, is_default)
    if packaged is not None:
        return tomllib.loads(packaged.text)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} does not exist; {missing_config_hint()}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r} nests arrays or tables too deeply") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None


def read_tickers_file(path: Path) -> list[str]:
    """One symbol a line; blank lines and '#' comments are ignored."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"data.tickers_file: cannot read {str(path)!r}: {exc.strerror}") from None
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        symbol = line.split("#", 1)[0].strip()
        if not symbol:
            continue
        if symbol in first_line:
            raise ConfigError(
                f"data.tickers_file: {symbol!r} is listed twice in {str(path)!r}, "
                f"on lines {first_line[symbol]} and {number}; keep one"
            )
        first_line[symbol] = number
    if not first_line:
        # Every source: an empty universe is a mistake, not a cue to run the synthetic one.
        raise ConfigError(
            f"data.tickers_file: {str(path)!r} lists no symbols (one a line; '#' starts a comment)"
        )
    return list(first_line)


def _resolve_tickers_file(raw: dict[str, Any]) -> dict[str, Any]:
    data = raw.get("data")
    if not isinstance(data, dict) or data.get("tickers_file") is None:
        return raw
    if data.get("tickers"):
        raise ConfigError("data.tickers_file: give either tickers or tickers_file, not both")
    return {**raw, "data": {**data, "tickers": read_tickers_file(Path(data["tickers_file"]))}}


def build_config(raw: Mapping[str, Any], overrides: Sequence[str] = ()) -> Config:
    """Validate a raw mapping (as read from TOML) plus `--set` overrides into a Config."""
    merged = _resolve_tickers_file(apply_overrides(raw, overrides))
    try:
        return Config.model_validate(merged)
    except RecursionError:  # a value nested deeper than any key takes
        raise ConfigError("config: a value nests lists or tables too deeply") from None
    except ValidationError as exc:
        set_keys = {".".join(parse_override(item)[0]) for item in overrides}
        raise ConfigError(describe_validation_error(exc, set_keys)) from None


def load_config(
    source: Config | Mapping[str, Any] | str | Path | None = None,
    overrides: Sequence[str] = (),
    default: Path = DEFAULT_CONFIG_PATH,
) -> Config:
    """The one way in: a TOML path (None: `default`, configs/demo.toml), a mapping, or a Config.

    A path that names no file but a packaged config ("demo", "article"), or a missing `default`,
    reads the config shipped in the package.
    """
    if isinstance(source, Config):
        if not overrides:
            return source
        source = source.to_dict()
        source["data"].pop("tickers_file", None)  # its symbols are in data.tickers already
    if source is None:
        source = read_toml(default, is_default=True)
    if isinstance(source, str | Path):
        source = read_toml(Path(source))
    return build_config(source, overrides)


def describe_validation_error(exc: ValidationError, set_keys: Iterable[str] = ()) -> str:
    """One line naming each bad key and what would be valid; `set_keys` were given by --set,
    so their hints are written as --set assignments. A huge value (or key) is quoted by its
    prefix: a 10 MB string makes a short line, not a 10 MB one."""
    given = set(set_keys)
    described = (_describe_one(error, given) for error in exc.errors(include_input=True))
    return "; ".join(clip_words(line, QUOTED_LIMIT) for line in described)


# A word of a config error longer than this is cut (a value, a key, a path).
QUOTED_LIMIT = 120


def _describe_one(error: Mapping[str, Any], set_keys: Collection[str] = ()) -> str:
    location = ".".join(shorten(str(part)) for part in error["loc"]) or "config"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{location}: unknown key{_valid_keys_hint(error['loc'])}"
    if kind in ("tuple_type", "list_type") and isinstance(error.get("input"), str):
        return _list_needed(location, error["input"], via_set=location in set_keys)
    if kind == "missing":
        return f"{location}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(_KEY_TAG):
        key, _, message = message[1:].partition(_KEY_TAG)
        return f"{location}.{key}: {message}"
    if kind.startswith(
        ("literal_", "int_", "float_", "bool_", "date_", "string_", "greater", "less", "finite_")
    ):
        return f"{location}: {message}, got {short_repr(error.get('input'))}"
    return f"{location}: {message}"


def _list_needed(location: str, given: str, via_set: bool) -> str:
    """A bare word where a list is needed: show the list the user meant, written as they'd
    write it (a --set assignment or a TOML line)."""
    listed = _toml_list(given) if given.strip() else '["KO"]'
    key = location.rpartition(".")[2]
    example = f"--set '{location}={listed}'" if via_set else f"{key} = {listed}"
    return f"{location}: needs a list, got {_short(given)}; use a TOML list: {example}"


def _short(value: str, limit: int = 60) -> str:
    return short_repr(value, limit)


def _valid_keys_hint(loc: Sequence[Any]) -> str:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    valid = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"{guess} (valid keys: {', '.join(valid)})"

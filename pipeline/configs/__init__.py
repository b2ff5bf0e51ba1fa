"""The configs that ship inside the package, so an installed `pipeline` runs from any folder.

`demo` (the offline synthetic universe) and `article` (the original article's experiment) are
the repository's `configs/demo.toml` and `configs/article.toml`, byte for byte (a test keeps the
copies identical). A config argument that names no file resolves to a packaged config when it is
a packaged name (`pipeline run demo`, `demo.toml`), or when it is the default path of a command
(`configs/demo.toml`, `configs/article.toml`) and no such file is where `pipeline` was started.
`pipeline init` writes them out as starter configs to edit.

Relative paths inside any config (data.path, tickers_file, cache_dir, out_dir) are relative to
the working directory, packaged ones included: a run from an empty folder caches and reports
there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pipeline.errors import ConfigError

logger = logging.getLogger(__name__)

PACKAGED = ("demo", "article")
# The default CONFIG of `pipeline bench` (`pipeline run`'s is config.DEFAULT_CONFIG_PATH).
DEFAULT_BENCH_CONFIG = Path("configs/article.toml")
# The default CONFIG of each command, as the repository lays them out.
DEFAULT_PATHS = {Path("configs/demo.toml"): "demo", DEFAULT_BENCH_CONFIG: "article"}
STARTER_DIR = Path("configs")


@dataclass(frozen=True, slots=True)
class ConfigText:
    """A config's TOML text and what to call it in messages."""

    text: str
    label: str


def packaged_text(name: str) -> str:
    """The TOML text of the packaged config `name` (one of PACKAGED)."""
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def packaged_name(path: Path, is_default: bool = False) -> str | None:
    """The packaged config `path` stands for, when no file is there; else None.

    A bare packaged name ("demo", "demo.toml") always can; a command's default path
    (configs/demo.toml) only when it is the default, not when a user typed it.
    """
    if path.exists():
        return None
    bare = path.name.removesuffix(".toml")
    if path.parent == Path() and bare in PACKAGED:
        return bare
    return DEFAULT_PATHS.get(path) if is_default else None


def read_config_text(path: Path, is_default: bool = False) -> ConfigText | None:
    """The packaged config `path` resolves to, logged, or None: read `path` itself."""
    name = packaged_name(path, is_default)
    if name is None:
        return None
    logger.info("no file %s here: using the packaged %r config", path, name)
    return ConfigText(packaged_text(name), label=f"packaged config {name!r}")


def missing_config_hint() -> str:
    """What to do about a config file that does not exist."""
    names = ", ".join(PACKAGED)
    return (
        f"write starter configs with `pipeline init [DIR]`, or name a packaged config: {names} "
        "(e.g. `pipeline run demo`)"
    )


def write_starter_configs(directory: Path, force: bool = False) -> list[Path]:
    """Write every packaged config to `directory`/configs/; refuse to overwrite unless `force`.

    Raises ConfigError naming the existing files (nothing is written then).
    """
    target = directory / STARTER_DIR
    paths = [target / f"{name}.toml" for name in PACKAGED]
    existing = [path for path in paths if path.exists() or path.is_symlink()]
    if existing and not force:
        shown = ", ".join(str(path) for path in existing)
        raise ConfigError(f"{shown} already exist; use --force to overwrite")
    not_files = [path for path in existing if path.is_symlink() or not path.is_file()]
    if not_files:
        raise ConfigError(f"{not_files[0]} is not a regular file; not overwriting it")
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, path in zip(PACKAGED, paths, strict=True):
            path.write_text(packaged_text(name), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write starter configs to {str(target)!r}: {exc.strerror}"
        ) from None
    return paths

"""Packaged configs and `pipeline init`: `pipeline run` and `pipeline bench` from any folder, the
repository's configs/ kept identical to the packaged ones, relative paths against the working
directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.configs import PACKAGED, packaged_name, packaged_text, write_starter_configs
from pipeline.errors import ConfigError
from tests.conftest import REPO_ROOT

runner = CliRunner()
SMALL = [
    "data.synthetic.n_tickers=3",
    "data.synthetic.n_days=400",
    "backtest.train_days=150",
    "execution.executor=serial",
]


def _sets(overrides: list[str]) -> list[str]:
    return [part for item in overrides for part in ("--set", item)]


@pytest.mark.parametrize("name", PACKAGED)
def test_the_packaged_configs_are_the_repositorys_byte_for_byte(name: str) -> None:
    assert packaged_text(name) == (REPO_ROOT / "configs" / f"{name}.toml").read_text()


def test_every_repository_config_of_a_packaged_name_is_packaged() -> None:
    packaged = {path.stem for path in (REPO_ROOT / "pipeline" / "configs").glob("*.toml")}
    assert packaged == set(PACKAGED)


def test_package_data_ships_the_configs() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"pipeline.configs" = ["*.toml"]' in pyproject


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize(
    ("typed", "is_default", "expected"),
    [
        ("demo", False, "demo"),
        ("demo.toml", False, "demo"),
        ("article", False, "article"),
        ("configs/demo.toml", True, "demo"),
        ("configs/article.toml", True, "article"),
        ("configs/demo.toml", False, None),  # typed by the user: a missing file is an error
        ("other/demo.toml", False, None),
        ("sp500-sample", False, None),
        ("nothing.toml", True, None),
    ],
)
def test_which_names_resolve_to_a_packaged_config(
    empty_cwd: Path, typed: str, is_default: bool, expected: str | None
) -> None:
    assert packaged_name(Path(typed), is_default) == expected


def test_a_file_of_that_name_wins_over_the_packaged_config(empty_cwd: Path) -> None:
    (empty_cwd / "demo.toml").write_text('[data]\nsource = "synthetic"\nstart = 2020-01-01\n')
    assert packaged_name(Path("demo.toml")) is None
    assert load_config("demo.toml").data.start.year == 2020


def test_without_a_config_file_the_packaged_demo_runs(empty_cwd: Path) -> None:
    assert load_config().digest() == load_config(REPO_ROOT / "configs" / "demo.toml").digest()
    assert load_config("demo").digest() == load_config().digest()


def test_a_missing_config_says_what_to_do(empty_cwd: Path) -> None:
    result = runner.invoke(app, ["validate", "configs/mine.toml"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'configs/mine.toml' does not exist" in lines[0]
    assert "pipeline init" in lines[0] and "demo, article" in lines[0]


def test_init_writes_the_packaged_configs_and_says_what_next(empty_cwd: Path) -> None:
    result = runner.invoke(app, ["init", "project"])
    assert result.exit_code == 0, result.output
    for name in PACKAGED:
        written = empty_cwd / "project" / "configs" / f"{name}.toml"
        assert written.read_text() == packaged_text(name)
        assert f"wrote {Path('project/configs') / f'{name}.toml'}" in result.stdout
    assert "next: cd project && pipeline run" in result.stdout


def test_init_refuses_to_overwrite_without_force(empty_cwd: Path) -> None:
    configs = empty_cwd / "configs"
    configs.mkdir()
    (configs / "demo.toml").write_text("# mine\n")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 2
    assert "configs/demo.toml already exist; use --force" in result.stderr
    assert (configs / "demo.toml").read_text() == "# mine\n"
    assert not (configs / "article.toml").exists()  # nothing written when anything is refused
    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0, forced.output
    assert (configs / "demo.toml").read_text() == packaged_text("demo")


def test_init_never_writes_through_a_symlink(empty_cwd: Path) -> None:
    configs = empty_cwd / "configs"
    configs.mkdir()
    victim = empty_cwd / "victim.txt"
    victim.write_text("keep\n")
    (configs / "demo.toml").symlink_to(victim)
    with pytest.raises(ConfigError, match="not a regular file"):
        write_starter_configs(empty_cwd, force=True)
    assert victim.read_text() == "keep\n"


@pytest.mark.slow
def test_relative_paths_in_a_config_start_at_the_working_directory(
    tmp_path: Path, empty_cwd: Path
) -> None:
    # The config lives elsewhere; its relative cache_dir, out_dir, data.path and tickers_file
    # are read from where pipeline is started.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (empty_cwd / "prices").mkdir()
    days = pd.bdate_range("2019-01-01", periods=300)
    prices = 50 * (1 + 0.01 * pd.Series(range(300)).mod(7).sub(3)).cumprod()
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "adj_close": prices})
    frame.to_csv(empty_cwd / "prices" / "KO.csv", index=False)
    (empty_cwd / "tickers.txt").write_text("KO\n")
    config = elsewhere / "mine.toml"
    config.write_text(
        '[data]\nsource = "csv"\npath = "prices"\ntickers_file = "tickers.txt"\n'
        'start = 2019-01-01\nend = 2020-03-01\ncache_dir = "cache"\n'
        '[backtest]\nmode = "in_sample"\n[execution]\nexecutor = "serial"\n'
        '[report]\nout_dir = "out"\nbootstrap_samples = 0\n'
    )
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (empty_cwd / "out" / "latest" / "summary.csv").is_file()
    assert (empty_cwd / "cache" / "csv" / "KO.parquet").is_file()
    assert not (elsewhere / "out").exists() and not (elsewhere / "cache").exists()


# From an empty folder, as an installed user runs it.


def _pipeline(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "pipeline", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_run_from_an_empty_folder_uses_the_packaged_demo(tmp_path: Path) -> None:
    result = _pipeline(tmp_path, "run", "--quiet", *_sets(SMALL))
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "reports" / "latest" / "summary.csv")
    assert summary["ticker"].tolist() == ["SYN000", "SYN001", "SYN002"]
    assert (tmp_path / "data" / "cache" / "synthetic").is_dir()
    assert "report: reports/" in result.stdout


@pytest.mark.slow
def test_init_then_run_uses_the_edited_starter_config(tmp_path: Path) -> None:
    assert _pipeline(tmp_path, "init").returncode == 0
    demo = tmp_path / "configs" / "demo.toml"
    demo.write_text(demo.read_text().replace("n_tickers = 20", "n_tickers = 2"))
    small = [item for item in SMALL if "n_tickers" not in item]
    result = _pipeline(tmp_path, "run", "--quiet", *_sets(small))
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "reports" / "latest" / "summary.csv")
    assert summary["ticker"].tolist() == ["SYN000", "SYN001"]


@pytest.mark.slow
def test_bench_from_an_empty_folder_uses_the_packaged_article(
    tmp_path: Path, sp500_sample: Path
) -> None:
    offline = [
        "data.source=csv",
        f"data.path={sp500_sample.as_posix()}",
        'data.tickers=["KO","XOM"]',
        "data.start=2017-01-01",
        "data.end=2018-12-31",
        "execution.workers=2",
    ]
    result = _pipeline(tmp_path, "bench", "--quiet", "--out", "bench", *_sets(offline))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bench" / "bench.json").is_file()

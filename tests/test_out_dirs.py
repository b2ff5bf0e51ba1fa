"""Run directories are created fresh: `--out` onto an existing directory is refused (exit 2, one
line) unless `--force`, which replaces an earlier run's files and never appends to its run.log;
nothing ever writes through `latest`, a symlink or a file, and history never records a run id
`latest`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.data.cache import PriceCache
from pipeline.errors import OutPathError
from pipeline.outputs import (
    LATEST_LINK,
    claim_out_dir,
    default_run_dir,
    new_run_id,
    point_latest,
)
from tests.faults.conftest import base_settings, invoke

TICKERS = ["SYN000", "SYN001"]


def small(tmp_path: Path) -> dict[str, object]:
    extra = {
        "data.tickers": TICKERS,
        "data.synthetic.n_days": 300,
        # a range the synthetic tickers traded in: runs with tickers ok, which move latest
        "data.start": "2021-01-04",
        "data.end": "2021-12-31",
        "report.bootstrap_samples": 0,
    }
    return base_settings(tmp_path, extra)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` (relative name -> sha256): what a refused run must keep."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def history(tmp_path: Path) -> list[dict]:
    path = tmp_path / "reports" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """A finished run in its default directory, `latest` pointing at it."""
    result = invoke("run", small(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    latest = tmp_path / "reports" / LATEST_LINK
    assert latest.is_symlink()
    return latest.resolve()


@pytest.fixture
def planted_run(tmp_path: Path) -> Path:
    """An earlier run's directory as a run leaves it (without running one: the refusals come
    before any work), `latest` pointing at it."""
    run_dir = tmp_path / "reports" / "20240102T030405Z-abcdef12"
    run_dir.mkdir(parents=True)
    for name in ("manifest.json", "summary.csv", "summary.parquet", "daily.parquet"):
        (run_dir / name).write_text(f"{name} of the earlier run")
    (run_dir / "run.log").write_text("2024-01-02 03:04:05 INFO pipeline.runner: run ...\n")
    (tmp_path / "reports" / LATEST_LINK).symlink_to(run_dir.name)
    (tmp_path / "reports" / "history.jsonl").write_text(json.dumps({"run_id": run_dir.name}) + "\n")
    return run_dir


def test_out_onto_an_earlier_run_is_refused_and_changes_nothing(
    tmp_path: Path, planted_run: Path
) -> None:
    earlier_run = planted_run
    before, lines = snapshot(tmp_path / "reports"), len(history(tmp_path))
    result = invoke("run", small(tmp_path), "--quiet", "--out", str(earlier_run))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(earlier_run) in line and "--force" in line
    assert snapshot(tmp_path / "reports") == before, "not a byte of the earlier run changes"
    assert len(history(tmp_path)) == lines, "a refused --out is not a run"


@pytest.mark.slow  # two whole runs
def test_force_replaces_the_earlier_run_and_starts_a_fresh_log(
    tmp_path: Path, earlier_run: Path
) -> None:
    (earlier_run / "stray.txt").write_text("from the old run")
    old_log = (earlier_run / "run.log").read_text()
    old_started = json.loads((earlier_run / "manifest.json").read_text())["started_at"]
    result = invoke(
        "run", small(tmp_path), "--quiet", "--out", str(earlier_run), "--force",
        "--set", "data.tickers=[\"SYN001\"]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = (earlier_run / "run.log").read_text()
    assert old_log not in log and log.count(" run ") == 1, "never appended to the old log"
    assert not (earlier_run / "stray.txt").exists(), "no file of the old run survives"
    manifest = json.loads((earlier_run / "manifest.json").read_text())
    assert manifest["config"]["data"]["tickers"] == ["SYN001"]
    assert manifest["started_at"] >= old_started
    leftovers = [p.name for p in earlier_run.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "the old directory moved aside is removed"
    assert history(tmp_path)[-1]["run_dir"] == str(earlier_run)


@pytest.mark.slow  # two whole runs
def test_force_gives_back_the_old_run_when_the_new_one_never_starts(
    tmp_path: Path, earlier_run: Path
) -> None:
    before = snapshot(earlier_run)
    with PriceCache(tmp_path / "cache").lock():
        result = invoke("run", small(tmp_path), "--quiet", "--out", str(earlier_run), "--force")
    assert result.exit_code == 4
    assert snapshot(earlier_run) == before, "the run it was to replace is back, unchanged"
    assert [p.name for p in earlier_run.parent.iterdir() if p.name.startswith(".")] == []
    last = history(tmp_path)[-1]
    assert last["exit_code"] == 4 and last["run_dir"] is None


def _latest(reports: Path) -> Path:
    return reports / LATEST_LINK


def _through_latest(reports: Path) -> Path:
    return reports / LATEST_LINK / "sub"


def _latest_dotted(reports: Path) -> Path:
    return reports / "x" / ".." / LATEST_LINK


def _symlink_to_run(reports: Path) -> Path:
    link = reports.parent / "alias"
    link.symlink_to(_latest(reports).resolve())
    return link


def _symlink_to_latest(reports: Path) -> Path:
    link = reports.parent / "alias"
    link.symlink_to(_latest(reports))
    return link


def _a_file(reports: Path) -> Path:
    path = reports.parent / "notes.txt"
    path.write_text("mine")
    return path


def _a_dangling_symlink(reports: Path) -> Path:
    link = reports.parent / "gone"
    link.symlink_to(reports.parent / "nowhere")
    return link


def _reports_itself(reports: Path) -> Path:
    return reports


def _a_foreign_directory(reports: Path) -> Path:
    mine = reports.parent / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    return mine


REFUSED: dict[str, Callable[[Path], Path]] = {
    "latest": _latest,
    "through-latest": _through_latest,
    "latest-dotted": _latest_dotted,
    "symlink-to-run": _symlink_to_run,
    "symlink-to-latest": _symlink_to_latest,
    "file": _a_file,
    "dangling-symlink": _a_dangling_symlink,
    "reports-dir": _reports_itself,
    "foreign-dir": _a_foreign_directory,
}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_out_is_refused_even_with_force(
    tmp_path: Path, planted_run: Path, make: Callable[[Path], Path], force: bool
) -> None:
    reports = tmp_path / "reports"
    out = make(reports)
    before = snapshot(tmp_path)
    runs = len(history(tmp_path))
    extra = ["--force"] if force else []
    result = invoke("run", small(tmp_path), "--quiet", "--out", str(out), *extra)
    assert result.exit_code == 2, result.output
    assert one_line(result.stderr).startswith(f"pipeline: --out {out}")
    assert snapshot(tmp_path) == before, "nothing is written, nothing removed"
    assert _latest(reports).resolve() == planted_run
    assert len(history(tmp_path)) == runs
    assert all(entry["run_id"] != LATEST_LINK for entry in history(tmp_path))


@pytest.mark.slow
def test_an_empty_existing_directory_is_a_fresh_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result = invoke("run", small(tmp_path), "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("command", ["sweep", "bench"])
def test_every_command_with_out_refuses_an_existing_directory(
    tmp_path: Path, command: str
) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "sweep.json").write_text("{}")
    (out / "bench.json").write_text("{}")
    before = snapshot(out)
    extra = ["--grid", "features.lags=[2,3]"] if command == "sweep" else []
    result = invoke(command, small(tmp_path), "--quiet", "--out", str(out), *extra)
    assert result.exit_code == 2, result.output
    assert "already exists" in one_line(result.stderr)
    assert snapshot(out) == before
    latest = invoke(command, small(tmp_path), "--out", str(tmp_path / LATEST_LINK), *extra)
    assert latest.exit_code == 2 and "'latest'" in one_line(latest.stderr)


def test_force_onto_a_non_run_directory_of_sweep_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # a run's, not a sweep's
    with pytest.raises(OutPathError, match="not a run's"):
        claim_out_dir(out, force=True, markers=("sweep.json",))
    assert (out / "manifest.json").read_text() == "{}"


def test_default_run_directories_are_never_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one config in the same second get two new directories."""
    import pipeline.outputs as outputs

    monkeypatch.setattr(outputs, "new_run_id", lambda digest: "20240102T030405Z-abcdef12")
    first = default_run_dir(tmp_path / "reports", "abcdef1234")
    second = default_run_dir(tmp_path / "reports", "abcdef1234")
    assert first != second
    assert first.is_dir() and second.is_dir()
    assert second.name == "20240102T030405Z-abcdef12-2"
    assert new_run_id("abcdef1234") != LATEST_LINK


@pytest.mark.slow
def test_a_real_latest_is_left_alone_with_one_warning(tmp_path: Path) -> None:
    """Today's behaviour was: the run finished, history said 0, then exit 1 and a temporary
    link left behind. Now: one warning, the exit code the run earned, history agreeing."""
    kind = "directory"
    reports = tmp_path / "reports"
    latest = reports / LATEST_LINK
    latest.mkdir(parents=True)
    (latest / "keep.txt").write_text("mine")
    before = snapshot(reports)
    result = invoke("run", small(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    warning = one_line(result.stderr)
    assert warning.startswith("pipeline: warning:") and f"is a {kind}" in warning
    assert {k: v for k, v in snapshot(reports).items() if k.startswith("latest")} == {
        k: v for k, v in before.items() if k.startswith("latest")
    }
    assert history(tmp_path)[-1]["exit_code"] == 0
    assert [p.name for p in reports.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_point_latest_never_replaces_what_is_not_its_link(tmp_path: Path, kind: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    latest = tmp_path / LATEST_LINK
    latest.mkdir() if kind == "directory" else latest.write_text("mine")
    warning = point_latest(tmp_path, run_dir)
    assert warning is not None and f"is a {kind}" in warning
    assert latest.is_dir() if kind == "directory" else latest.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LATEST_LINK, "run"]


def test_point_latest_leaves_no_temporary_link_when_it_cannot_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    warning = point_latest(tmp_path, run_dir)
    assert warning is not None and "Permission denied" in warning
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_dangling_symlink_as_out_dir_is_one_line(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.symlink_to(tmp_path / "mounted-elsewhere")
    result = invoke("run", small(tmp_path), "--quiet")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "report.out_dir" in line and "does not exist" in line
    assert not (tmp_path / "mounted-elsewhere").exists(), "nothing created through the link"

"""Run directories and the files in them, each written atomically (`pipeline.safe_io`).

A run directory is created fresh: `claim_out_dir` refuses an existing one unless the user says
`--force`, and even then never writes through the `latest` link, a symlink or a file. With
`--force` the old directory is moved aside in one rename and deleted only once the new run has
written its results; a run that ends before that (refused the lock, interrupted, crashed) puts
the old one back. So a directory never mixes the files of two runs, and run.log is never
appended to.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.errors import OutPathError, OutputError, PipelineError
from pipeline.safe_io import atomic_write, atomic_write_bytes, atomic_write_text, temp_name

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
DAILY_PARQUET = "daily.parquet"
LATEST_LINK = "latest"


# A directory holding one of these was written by a run (or a sweep, or a bench): --force may
# replace it. Anything else (a home directory, the reports directory itself) it never deletes.
RUN_MARKERS: tuple[str, ...] = ("manifest.json", "run.log")


def write_tables(run_dir: Path, summary: pd.DataFrame, daily: pd.DataFrame) -> None:
    """summary.csv, summary.parquet and daily.parquet; OutputError when the system refuses
    (disk full, read-only), naming the file."""
    with refused_as_output_error(run_dir / SUMMARY_CSV):
        atomic_write_text(run_dir / SUMMARY_CSV, summary.to_csv(index=False))
    with refused_as_output_error(run_dir / SUMMARY_PARQUET):
        atomic_write(run_dir / SUMMARY_PARQUET, lambda out: summary.to_parquet(out, index=False))
    with refused_as_output_error(run_dir / DAILY_PARQUET):
        atomic_write(run_dir / DAILY_PARQUET, lambda out: daily.to_parquet(out, index=False))


@contextmanager
def refused_as_output_error(path: Path) -> Iterator[None]:
    """A system call's refusal (ENOSPC, EROFS, EACCES) while writing `path` as OutputError."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, PipelineError):  # UnsafePathError says what it refused itself
            raise
        raise OutputError(f"cannot write {path}: {describe_os_error(exc)}") from None


def describe_os_error(exc: OSError) -> str:
    """'No space left on device (ENOSPC)': the system's words and the errno's name."""
    words = (exc.strerror or os.strerror(exc.errno)) if exc.errno else str(exc)
    name = errno.errorcode.get(exc.errno or 0)
    return f"{words} ({name})" if name else str(words)


def new_run_id(config_hash: str, now: datetime | None = None) -> str:
    """UTC time plus a short config hash: sortable, and two configs never share an id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{config_hash[:8]}"


def default_run_dir(out_dir: Path, config_hash: str) -> Path:
    """A new, empty `<out_dir>/<run id>`, created here: two runs started in the same second
    with the same config get two directories (the second one a `-2` suffix)."""
    return new_directory(out_dir, new_run_id(config_hash))


def new_directory(out_dir: Path, name: str) -> Path:
    """`<out_dir>/<name>`, or `<name>-2`, `-3`, ... when taken: created here, new and empty."""
    make_directories(out_dir, "report.out_dir")
    for suffix in range(1, 1000):
        run_dir = out_dir / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            os.mkdir(run_dir)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot create {run_dir}: {describe_os_error(exc)}") from None
        return run_dir
    raise OutputError(f"cannot create a new run directory in {out_dir}: every name is taken")


def make_directories(path: Path, what: str) -> None:
    """`path` and its parents as directories; one clear error when that is not possible."""
    if path.is_symlink() and not path.exists():
        raise OutPathError(
            f"{what} {path} is a symlink to {os.readlink(path)}, which does not exist; "
            "create that directory or point the link elsewhere"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutPathError(f"{what} {path} is not a directory (a file is in the way)") from None
    except OSError as exc:
        raise OutputError(f"cannot create {what} {path}: {describe_os_error(exc)}") from None


@dataclass
class ClaimedDir:
    """A run directory given by --out, fresh; `aside` holds the run it replaces (--force)."""

    path: Path
    aside: Path | None = None

    def keep(self) -> None:
        """The new run has written its results: the old one goes."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def give_back(self) -> None:
        """The new run ended before writing its results: the old one comes back (and a new
        directory it left empty goes)."""
        if self.aside is None:
            with suppress(OSError):
                self.path.rmdir()  # only when empty
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            os.replace(self.aside, self.path)
            self.aside = None


def claim_out_dir(
    path: Path,
    *,
    force: bool,
    option: str = "--out",
    markers: Sequence[str] = RUN_MARKERS,
    force_hint: str = "--force",
) -> ClaimedDir:
    """`path` as a new, empty directory for one run's files.

    Refused (OutPathError, exit 2): the `latest` link or a path through it, any symlink, a
    file, and an existing non-empty directory unless `force`. With `force`, only a directory
    holding one of `markers` (an earlier run's) is replaced; it is moved aside, not deleted,
    until the new run keeps its place (`ClaimedDir.keep` / `give_back`).
    """
    refuse_latest(path, option)
    shown = f"{option} {path}"
    if path.is_symlink():
        raise OutPathError(f"{shown} is a symlink; refusing to write through it (name a directory)")
    if path.exists() and not path.is_dir():
        raise OutPathError(f"{shown} is a file, not a directory; name a new directory")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise OutPathError(
                f"{shown} already exists and is not empty (an earlier run?); name a new "
                f"directory, or add {force_hint} to replace that run's files"
            )
        if not any((path / marker).exists() for marker in markers):
            raise OutPathError(
                f"{shown} holds files that are not a run's (none of {', '.join(markers)}); "
                f"refusing to replace it, even with {force_hint}"
            )
        aside = path.parent / temp_name(f"{path.name}.replaced")
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise OutputError(f"cannot move {path} aside: {describe_os_error(exc)}") from None
        make_directories(path, option)
        return ClaimedDir(path, aside)
    make_directories(path, option)
    return ClaimedDir(path)


def refuse_latest(path: Path, option: str = "--out") -> None:
    """OutPathError when `path` is named `latest` or goes through a `latest` symlink: the
    link moves from run to run, so writing through it overwrites whichever run it points at."""
    absolute = Path(os.path.abspath(path))
    if absolute.name == LATEST_LINK:
        raise OutPathError(
            f"{option} {path}: '{LATEST_LINK}' is the link to the newest run, never a run "
            "directory; name a new directory"
        )
    for parent in absolute.parents:
        if parent.name == LATEST_LINK and parent.is_symlink():
            raise OutPathError(
                f"{option} {path} goes through the link {parent}; name another directory"
            )


def point_latest(out_dir: Path, run_dir: Path) -> str | None:
    """Make `<out_dir>/latest` a relative symlink to `run_dir`, replaced atomically.

    Returns a warning instead when something other than a symlink is in its place (a real
    directory or file the user put there): that is left untouched. No temporary link remains.
    """
    link = out_dir / LATEST_LINK
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        kind = "a directory" if link.is_dir() else "a file"
        return (
            f"{link} is {kind}, not the link to the newest run: left as it is, so it does not "
            f"point at {run_dir.name} (remove it to let runs update it)"
        )
    tmp = out_dir / temp_name(LATEST_LINK)
    try:
        tmp.symlink_to(os.path.relpath(run_dir, out_dir))
        os.replace(tmp, link)
    except OSError as exc:
        return f"cannot point {link} at {run_dir.name}: {describe_os_error(exc)}"
    finally:
        if tmp.is_symlink():
            tmp.unlink()
    return None

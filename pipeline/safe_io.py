"""Creating, replacing and removing files without following anyone's symlinks.

Every file the pipeline writes (cache files, run directory files, the cache lock, the history)
goes through here. Directories below a root the user chose (the cache directory, the output
directory) are walked one component at a time with `O_NOFOLLOW`, and files are opened relative
to the directory's descriptor: a symlink planted inside a shared cache or a run directory is
refused, never written through, so nothing outside the root is ever touched. The root itself
is the user's choice and may be a symlink (a cache on a shared filesystem, say).

Atomic writes: a temporary file created with `O_CREAT | O_EXCL | O_NOFOLLOW` beside the target
(mode 0666 less the umask, like any file the user writes), fsync, `os.replace`, fsync of the
directory. A reader sees the old file or the new one, never half of one, even after a crash.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import UnsafePathError

TEMP_SUFFIX = ".tmp"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_REFUSED = (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", errno.ELOOP))


def temp_name(name: str) -> str:
    """A temporary name beside `name`: unique per writer, and its pid tells a later run
    whether the writer still lives (`is_stale_temp`)."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def is_stale_temp(name: str) -> bool:
    """True for a temporary name of `temp_name`'s shape whose writer no longer runs."""
    parts = name.removesuffix(TEMP_SUFFIX).rsplit(".", 2)
    if not name.endswith(TEMP_SUFFIX) or len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or os.name != "posix":  # os.kill would terminate it on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive, owned by another user / not a pid
        return False
    return False


def _check_part(root: Path, part: str) -> None:
    if part in ("", ".", "..") or "/" in part or os.sep in part or "\x00" in part:
        raise UnsafePathError(f"{part!r} under {root} is not a plain name")


def open_directory(root: Path, parts: Sequence[str] = (), *, create: bool = True) -> int:
    """A descriptor of `root/parts...`, every part a real directory inside `root`.

    `root` is created (with its parents) when `create`; so is each part. A part that is a
    symlink or not a directory raises UnsafePathError: nothing is written through it.
    FileNotFoundError when something is missing and `create` is false.
    """
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    current = root
    try:
        for part in parts:
            _check_part(current, part)
            current = current / part
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _REFUSED:
                    raise UnsafePathError(
                        f"{current} is a symlink or not a directory; refusing to write "
                        "through it (remove it)"
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def directory(root: Path, parts: Sequence[str] = (), *, create: bool = True) -> Iterator[int]:
    """`open_directory` as a context manager that closes the descriptor."""
    fd = open_directory(root, parts, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def split_within(path: Path, within: Path | None) -> tuple[Path, tuple[str, ...]]:
    """The root and the directory parts between it and `path`'s file name."""
    if within is None:
        return path.parent, ()
    parent = Path(os.path.abspath(path.parent))
    root = Path(os.path.abspath(within))
    if not parent.is_relative_to(root):
        raise UnsafePathError(f"{path} is outside {within}")
    return within, parent.relative_to(root).parts


def open_file(
    dir_fd: int, name: str, flags: int, mode: int = 0o666, *, shown: Path | str = ""
) -> int:
    """`os.open(name, flags | O_NOFOLLOW, dir_fd=dir_fd)`; a symlink, a special file (FIFO,
    device, directory) or, when writing, a file with other hard links raises UnsafePathError
    naming `shown`."""
    where = shown or name
    _check_part(Path(str(where)).parent, name)
    try:
        fd = os.open(name, flags | _NOFOLLOW | _CLOEXEC | _BINARY, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise UnsafePathError(
                f"{where} is a symlink; refusing to follow it (remove it)"
            ) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):  # a directory, a socket
            raise UnsafePathError(f"{where} is not a regular file; refusing to use it") from None
        raise
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif flags & (os.O_WRONLY | os.O_RDWR) and info.st_nlink > 1:
        # A hard link planted in place of the file would make us write another file.
        problem = "has other hard links"
    if problem:
        os.close(fd)
        raise UnsafePathError(f"{where} {problem}; refusing to use it (remove it)")
    return fd


def atomic_write(
    path: Path, write: Callable[[BinaryIO], None], *, within: Path | None = None
) -> Path:
    """Call `write(handle)` on a new temporary file beside `path`, then rename it onto `path`.

    `within`: the root below which no directory may be a symlink (default: `path`'s own
    directory). Directories missing below it are created. Returns `path`.
    """
    root, parts = split_within(Path(path), within)
    name = Path(path).name
    with directory(root, parts) as dir_fd:
        temp = temp_name(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = open_file(dir_fd, temp, flags, shown=Path(path).parent / temp)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
        _fsync(dir_fd)
    return Path(path)


def atomic_write_bytes(path: Path, data: bytes, *, within: Path | None = None) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), within=within)


def atomic_write_text(path: Path, text: str, *, within: Path | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), within=within)


def _fsync(dir_fd: int) -> None:
    with suppress(OSError):  # some filesystems cannot fsync a directory; the rename stands
        os.fsync(dir_fd)


def replace_within(
    root: Path, source: Sequence[str], target: Sequence[str], *, create: bool = True
) -> None:
    """Rename `root/source...` to `root/target...` (the last part of each a file name), with
    no symlinked directory followed on either side. The file itself is moved, never its target.
    """
    with (
        directory(root, source[:-1], create=False) as src_fd,
        directory(root, target[:-1], create=create) as dst_fd,
    ):
        os.replace(source[-1], target[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        _fsync(dst_fd)


def remove_stale_temps(dir_fd: int, prefix: str = ".") -> list[str]:
    """Remove the temporary files of dead writers in the directory `dir_fd`; their names.

    Only regular files are removed (a symlink of the same name is left alone)."""
    removed = []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if not (entry.name.startswith(prefix) and is_stale_temp(entry.name)):
                continue
            if entry.is_file(follow_symlinks=False):
                with suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=dir_fd)
                removed.append(entry.name)
    return removed


def subdirectories(dir_fd: int) -> list[str]:
    """The names of the real directories (not symlinks) in the directory `dir_fd`."""
    with os.scandir(dir_fd) as entries:
        return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))


__all__ = [
    "TEMP_SUFFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "directory",
    "is_stale_temp",
    "open_directory",
    "open_file",
    "remove_stale_temps",
    "replace_within",
    "split_within",
    "subdirectories",
    "temp_name",
]

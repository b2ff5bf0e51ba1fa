"""JSON-lines files that several processes append to, and that survive damage.

One JSON object a line. `append_record` adds one line with a single `write` in append mode,
under an advisory lock, so concurrent writers never interleave; when the file does not end in a
newline (a writer killed mid-line, a disk that filled up), the new record starts on a fresh line,
so a torn line never swallows the next one. `read_records` returns every readable object and
skips, with one warning, lines that are torn, not UTF-8, not JSON or not an object.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError, UnsafePathError
from pipeline.safe_io import directory, open_file, split_within

try:
    import fcntl
except ImportError:  # Windows: appends are still single writes, only unlocked
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Line numbers quoted in the warning about skipped lines; the count says the rest.
SHOWN_LINES = 5


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One line of JSON, newline included; values JSON cannot hold are written as text."""
    return (json.dumps(dict(record), default=str, ensure_ascii=False) + "\n").encode("utf-8")


def append_record(path: Path, record: Mapping[str, Any], *, within: Path | None = None) -> Path:
    """Append `record` to `path` as one line; the file and missing directories are created.

    `within` is the directory below which no symlink is followed (default: the file's own
    directory); a symlink in place of the file is refused too. OutputError when the system
    refuses the write (read-only, permission, disk full).
    """
    path = Path(path)
    root, parts = split_within(path, within)
    line = encode_record(record)
    try:
        with directory(root, parts) as dir_fd:
            fd = open_file(dir_fd, path.name, os.O_RDWR | os.O_APPEND | os.O_CREAT, shown=path)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                _write_all(fd, _lead(fd) + line)
            finally:
                os.close(fd)  # releases the lock
    except UnsafePathError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot append to {path}: {exc.strerror or exc}") from None
    return path


def _lead(fd: int) -> bytes:
    """A newline when the file's last byte is not one: the previous writer was cut short."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    return b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every JSON object in `path`, in file order; [] when the file does not exist."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    skipped: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        record = _decode(raw)
        if record is None:
            skipped.append(number)
        else:
            records.append(record)
    if skipped:
        shown = ", ".join(str(n) for n in skipped[:SHOWN_LINES])
        more = ", ..." if len(skipped) > SHOWN_LINES else ""
        logger.warning(
            "%s: skipped %d unreadable line(s) (line %s%s)", path, len(skipped), shown, more
        )
    return records


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None

"""JSON-lines files: appends that survive a torn line, readers that survive garbage."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from pipeline.errors import OutputError, UnsafePathError
from pipeline.jsonlines import append_record, read_records


def test_records_come_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    for number in range(3):
        append_record(path, {"n": number, "text": 'é\n"quoted"'})
    assert read_records(path) == [{"n": n, "text": 'é\n"quoted"'} for n in range(3)]
    assert path.read_bytes().count(b"\n") == 3


def test_a_missing_file_has_no_records(tmp_path: Path) -> None:
    assert read_records(tmp_path / "absent.jsonl") == []


@pytest.mark.parametrize(
    "torn",
    [b'{"n": 0}\n{"n": 1, "te', b'{"n": 0}\n{"n": 1}', b'{"n": 0}\n\xff\xfe'],
    ids=["half-record", "whole-record-no-newline", "binary-tail"],
)
def test_a_torn_last_line_never_swallows_the_next_record(tmp_path: Path, torn: bytes) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(torn)
    append_record(path, {"n": 2})
    records = read_records(path)
    assert records[0] == {"n": 0}
    assert records[-1] == {"n": 2}
    # Whatever the torn line held, it stays on a line of its own.
    assert path.read_bytes().startswith(torn + b"\n")


def test_garbage_and_non_utf8_lines_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.jsonl"
    lines = [
        b'{"n": 0}',
        b"\xff\xfe\x00garbage",
        b"not json",
        b"[1, 2]",
        b"42",
        b'"text"',
        b"",
        b"   ",
        b'{"n": 1}',
        b"[" * 100_000,
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING):
        assert read_records(path) == [{"n": 0}, {"n": 1}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 6 unreadable line(s)" in warnings[0]
    assert "line 2, 3, 4, 5, 6, ..." in warnings[0]


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    payload = "x" * 3000  # well past a pipe's atomic size: the lock keeps lines whole

    def append_many(writer: int) -> None:
        for number in range(40):
            append_record(path, {"writer": writer, "n": number, "payload": payload})

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 240
    records = [json.loads(line) for line in lines]
    assert sorted((r["writer"], r["n"]) for r in records) == [
        (w, n) for w in range(6) for n in range(40)
    ]


def test_a_symlink_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    root = tmp_path / "reports"
    root.mkdir()
    (root / "log.jsonl").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        append_record(root / "log.jsonl", {"n": 1}, within=root)
    assert outside.read_text() == "precious\n"


def test_a_symlinked_directory_below_the_root_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "reports"
    root.mkdir()
    (root / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symlink"):
        append_record(root / "sub" / "log.jsonl", {"n": 1}, within=root)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "error", [errno.EACCES, errno.EROFS, errno.ENOSPC], ids=["EACCES", "EROFS", "ENOSPC"]
)
def test_a_refused_write_raises_a_one_line_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 0}\n')
    real_write = os.write

    def refuse(fd: int, data: bytes) -> int:
        if os.fstat(fd).st_ino == path.stat().st_ino:
            raise OSError(error, os.strerror(error))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refuse)
    with pytest.raises(OutputError, match=rf"cannot append to .*log\.jsonl: {os.strerror(error)}"):
        append_record(path, {"n": 1})
    monkeypatch.undo()
    assert read_records(path) == [{"n": 0}]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_file_raises_a_one_line_output_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 0}\n')
    path.chmod(stat.S_IRUSR)
    with pytest.raises(OutputError, match=r"cannot append to .*log\.jsonl: Permission denied"):
        append_record(path, {"n": 1})
    assert read_records(path) == [{"n": 0}]

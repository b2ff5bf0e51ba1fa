"""The run history of an output directory: one JSON line per run, appended as runs end.

`<report.out_dir>/history.jsonl` answers "what ran, when, on which config, and how did it end"
for a scheduled job, without opening every run directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HISTORY_NAME = "history.jsonl"


def append_history(out_dir: Path, entry: Mapping[str, Any]) -> Path:
    """Append one run's entry. One short write in append mode, so concurrent runs on other
    caches never interleave their lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / HISTORY_NAME
    line = (json.dumps(dict(entry), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def read_history(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable entry, oldest first; a torn last line (a killed writer) is skipped."""
    path = out_dir / HISTORY_NAME
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries

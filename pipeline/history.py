"""The run history of an output directory: one JSON line per run, appended as runs end.

`<report.out_dir>/history.jsonl` answers "what ran, when, on which config, and how did it end"
for a scheduled job, without opening every run directory. The file is a `pipeline.jsonlines`
file: concurrent runs never interleave their lines, and a damaged line costs only itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.jsonlines import append_record, read_records

HISTORY_NAME = "history.jsonl"


def append_history(out_dir: Path, entry: Mapping[str, Any]) -> Path:
    """Append one run's entry; OutputError when the file cannot be written."""
    return append_record(Path(out_dir) / HISTORY_NAME, entry, within=Path(out_dir))


def read_history(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable entry, oldest first; torn or garbage lines are skipped with a warning."""
    return read_records(Path(out_dir) / HISTORY_NAME)

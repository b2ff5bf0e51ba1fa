"""Logging for the command line: stderr for people, a log file in every run directory, and
JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from rich.logging import RichHandler

from pipeline.display import printable
from pipeline.progress import is_terminal, stderr_console

LogFormat = Literal["text", "json"]
RUN_LOG_NAME = "run.log"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that narrate every request at INFO; their warnings still come through.
_CHATTY_LOGGERS = ("yfinance", "urllib3", "peewee", "distributed", "matplotlib", "asyncio")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class PrintableFormatter(logging.Formatter):
    """A text formatter whose lines carry no escape sequence or control character: a log
    message quoting a ticker, a reason or a file's text cannot drive the terminal that shows
    it (or that later shows run.log). JSON lines need no such care: json.dumps escapes them."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return PrintableFormatter(_TEXT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")


def setup_console_logging(quiet: bool, log_format: LogFormat = "text") -> None:
    """Log to stderr: INFO and up, or WARNING and up when quiet.

    In a terminal, text goes through rich's handler on the progress bars' console, so a line
    prints above a live bar instead of tearing it, and only warnings and errors show: the bars
    already say what the INFO lines would (run.log keeps them all). Elsewhere (cron, a pipe,
    a log shipper) every INFO line is written as it is.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_pipeline_console", False):
            root.removeHandler(handler)
    interactive = is_terminal(sys.stderr)
    handler: logging.Handler
    if interactive and log_format == "text":
        handler = RichHandler(
            console=stderr_console(),
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="%H:%M:%S",
        )
        handler.setFormatter(PrintableFormatter("%(name)s: %(message)s"))
    else:
        handler = StderrHandler()
        handler.setFormatter(make_formatter(log_format))
    handler.setLevel(logging.WARNING if quiet or interactive else logging.INFO)
    handler._pipeline_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class StderrHandler(logging.StreamHandler):
    """A stream handler on whatever sys.stderr is when a record is written (not when the
    handler was made), so that a live progress display that redirects stderr receives it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


@contextmanager
def run_log(run_dir: Path, log_format: LogFormat = "text") -> Iterator[Path]:
    """Copy every INFO-and-up record of the run into `run_dir/run.log` while the block runs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_LOG_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(make_formatter(log_format))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()

"""Symbols a remote source called unknown or delisted, remembered beside the price cache.

A bulk download spends retries and its request budget on every dead symbol, every night; a few
of them can turn a short download into a long one. The download stage records each dead symbol
with the day it was found dead and the source's reason in `<cache_dir>/<source>/dead-symbols.json`,
and skips it, with that reason and date, until `data.download.dead_ttl_days` have passed or
`--retry-dead` asks again. A symbol that delivers prices again is forgotten.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

DEAD_FILE = "dead-symbols.json"


@dataclass(frozen=True, slots=True)
class DeadSymbol:
    found: date
    reason: str

    def describe(self, ttl_days: int) -> str:
        until = self.found + timedelta(days=ttl_days)
        return (
            f"unknown or delisted at the source since {self.found} ({self.reason}); not asked "
            f"again before {until}: --retry-dead asks now"
        )


class DeadSymbols:
    """The dead-symbol memory of one source's cache directory; safe to share between threads.

    Changes are kept in memory and written once by `save`, atomically.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries = _read(path)
        self._changed = False

    def lookup(self, ticker: str, today: date, ttl_days: int) -> DeadSymbol | None:
        """The ticker's entry while it is younger than `ttl_days`, else None."""
        with self._lock:
            entry = self._entries.get(ticker)
        if entry is None or (today - entry.found).days >= ttl_days:
            return None
        return entry

    def mark(self, ticker: str, today: date, reason: str) -> None:
        with self._lock:
            self._entries[ticker] = DeadSymbol(today, reason)
            self._changed = True

    def forget(self, ticker: str) -> None:
        with self._lock:
            if self._entries.pop(ticker, None) is not None:
                self._changed = True

    def save(self) -> None:
        """Write the memory if it changed; a failure is logged, never raised: it only costs
        a later run a request."""
        with self._lock:
            if not self._changed:
                return
            payload = {
                ticker: {"found": entry.found.isoformat(), "reason": entry.reason}
                for ticker, entry in sorted(self._entries.items())
            }
            self._changed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(payload, indent=1) + "\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.warning("cannot save the dead-symbol memory %s: %s", self.path, exc)


def _read(path: Path) -> dict[str, DeadSymbol]:
    """The stored entries; a missing or damaged file is an empty memory (it is only a cache)."""
    try:
        raw = json.loads(path.read_text())
        return {
            str(ticker): DeadSymbol(date.fromisoformat(entry["found"]), str(entry["reason"]))
            for ticker, entry in raw.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        logger.warning("ignoring the dead-symbol memory %s: %s", path, exc)
        return {}

"""Typed exceptions of the pipeline. Only the CLI turns them into exit codes."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """A config file, a key or a value is not valid. The message names the key."""


class SourceError(PipelineError):
    """A price source could not deliver one ticker's prices."""


class TransientSourceError(SourceError):
    """Worth retrying: a network hiccup, a timeout, a rate limit."""


class RateLimitedError(TransientSourceError):
    """The provider asked us to slow down; retried with a longer backoff."""


class DataError(SourceError):
    """Permanent for this ticker: no data, not a price table, unusable prices."""


class UnknownSymbolError(DataError):
    """The remote source does not know the symbol, or says it is delisted: remembered for
    `data.download.dead_ttl_days` so that later runs do not ask again."""


class ConnectionFailedError(TransientSourceError):
    """The provider's host could not be reached at all (refused, unresolved, unroutable)."""


class NotTradingError(DataError):
    """The source has prices for the ticker, but none inside the requested range: the ticker did
    not trade then (listed later, delisted earlier). The ticker is skipped, not failed."""


class CacheLockedError(PipelineError):
    """Another run holds the lock on the same cache directory."""


class RunDirectoryError(PipelineError):
    """A directory given as a run directory lacks one of the files a report is built from."""


class UnsafePathError(PipelineError, OSError):
    """A path the pipeline would write through is a symlink or not what it should be (a
    directory where a file belongs, a FIFO); refused so nothing outside its directory is touched.
    An OSError too (without an errno), so code that survives a failed system call survives it.
    """


class OutputError(PipelineError):
    """A result file could not be written: disk full, read-only filesystem, permission."""


class OutPathError(PipelineError):
    """An output path the user gave (`--out`, `report.out_dir`) that a run must not write: an
    existing directory without --force, a file, a symlink, the `latest` link. Exit 2."""

"""Ticker symbols: validated before they go anywhere near a file path."""

from __future__ import annotations

import re

from pipeline.display import short_repr
from pipeline.errors import ConfigError

MAX_SYMBOL_LENGTH = 15
# Letters, digits and the punctuation exchanges use in symbols (BRK.B, BF-B, ^GSPC, EURUSD=X).
# No slash, no backslash, no leading dot: a symbol can never name another directory.
_SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9^=][A-Za-z0-9.\-^=]{0,14}$")


def is_valid_symbol(symbol: str) -> bool:
    """True when `symbol` is safe to use as a file name and plausible as a ticker."""
    return bool(_SYMBOL_PATTERN.fullmatch(symbol)) and ".." not in symbol


def validate_symbol(symbol: str, key: str = "data.tickers") -> str:
    """Return `symbol` unchanged, or raise ConfigError naming `key` and the valid form."""
    if not isinstance(symbol, str) or not is_valid_symbol(symbol):
        raise ConfigError(
            f"{key}: {short_repr(symbol)} is not a valid ticker symbol; use letters, digits "
            "and . - ^ = "
            f"(at most {MAX_SYMBOL_LENGTH} characters, not starting with '.' or '-')"
        )
    return symbol


def to_yahoo_symbol(symbol: str) -> str:
    """Yahoo writes share classes with a dash: BRK.B -> BRK-B."""
    return symbol.replace(".", "-")

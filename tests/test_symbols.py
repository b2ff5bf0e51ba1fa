import pytest

from pipeline.errors import ConfigError
from pipeline.symbols import is_valid_symbol, to_yahoo_symbol, validate_symbol


@pytest.mark.parametrize(
    "symbol",
    ["KO", "BRK.B", "BF-B", "^GSPC", "EURUSD=X", "A", "X" * 15, "7203.T"],
    ids=["plain", "dot-class", "dash-class", "index", "fx", "one-letter", "max-length", "tokyo"],
)
def test_valid_symbols_pass(symbol: str) -> None:
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    ["../../etc/passwd", "a/b", "a\\b", "..", ".hidden", "-rf", "", "X" * 16, "KO ", "K O", "ko\n"],
    ids=[
        "traversal",
        "slash",
        "backslash",
        "dotdot",
        "leading-dot",
        "leading-dash",
        "empty",
        "too-long",
        "trailing-space",
        "inner-space",
        "newline",
    ],
)
def test_unsafe_symbols_are_rejected_with_the_key(symbol: str) -> None:
    assert not is_valid_symbol(symbol)
    with pytest.raises(ConfigError, match=r"^data\.tickers: .* not a valid ticker symbol"):
        validate_symbol(symbol)


@pytest.mark.parametrize(
    ("symbol", "yahoo"), [("BRK.B", "BRK-B"), ("KO", "KO"), ("BF-B", "BF-B")], ids=str
)
def test_share_classes_use_yahoo_dash(symbol: str, yahoo: str) -> None:
    assert to_yahoo_symbol(symbol) == yahoo

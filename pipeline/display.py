"""Text from files made safe to print on a terminal: the one owner of that, used wherever the
pipeline prints (the command line, console and file logs, the per-ticker table).

A ticker, a reason, a config value or anything read from a run directory can carry bytes a
terminal obeys: escape sequences that set the window title, move the cursor or rewrite what is
shown (CSI, OSC, DCS ... and their 8-bit C1 forms), a carriage return that overprints a line, a
bell, and Unicode bidirectional overrides that make text read differently than it is. They are
removed, not escaped, so what remains is the printable text; a newline is kept where a caller
prints several lines, and a tab becomes a space.

Written by hand: the terminal-control grammar is small (ECMA-48), and the libraries that strip
ANSI codes cover only the colour sequences, not OSC strings, C1 controls or bidi overrides.
"""

from __future__ import annotations

import re

# ESC-introduced sequences (ECMA-48): control strings (OSC, DCS, SOS, PM, APC) up to their
# terminator (BEL or ST), else up to the end of the line (so one unterminated string cannot
# hide the lines after it); CSI with its parameters and final byte; any
# other two-byte escape. The 8-bit forms (0x9b CSI, 0x9d OSC, 0x90 DCS, ...) likewise.
_CONTROL_STRING = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
)
_CSI = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?")
_OTHER_ESCAPE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]?")
# Bidirectional embeddings, overrides, isolates and marks: text that displays reordered.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROPPED = {ord(c): None for c in _BIDI}
_SPACED = {ord("\t"): " ", 0x2028: " ", 0x2029: " ", 0x85: " "}
# Unicode's Cc category, the newline excepted: C0 controls, DEL and the C1 controls.
_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

# A word longer than this in an error line is cut: a value of 10 MB is quoted by its prefix.
WORD_LIMIT = 200
LINE_LIMIT = 1000
VALUE_LIMIT = 60


def printable(text: object, *, newlines: bool = True) -> str:
    """`text` without control characters, escape sequences or bidi overrides. Newlines are
    kept when `newlines`, else each becomes a space (one line for a log or an error)."""
    value = str(text)
    if value.isprintable():  # the common case: nothing to remove
        return value
    value = _CONTROL_STRING.sub("", value)
    value = _CSI.sub("", value)
    value = _OTHER_ESCAPE.sub("", value)
    value = value.translate(_SPACED).translate(_DROPPED)
    if not newlines:
        value = value.replace("\r\n", " ").replace("\n", " ")
    return _CONTROLS.sub("", value)


def shorten(text: str, limit: int = VALUE_LIMIT) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def short_repr(value: object, limit: int = VALUE_LIMIT) -> str:
    """repr(value), at most about `limit` characters: a huge value is quoted by its prefix."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    return shorten(text, limit) if len(text) > limit else text


def clip_words(text: str, word_limit: int = WORD_LIMIT) -> str:
    """Every run of non-space characters longer than `word_limit` cut to its prefix."""
    if len(text) <= word_limit:
        return text
    return re.sub(
        rf"\S{{{word_limit + 1},}}", lambda found: shorten(found.group(), word_limit), text
    )


def error_line(
    text: object, word_limit: int = WORD_LIMIT, line_limit: int = LINE_LIMIT
) -> str:
    """One printable line of at most about `line_limit` characters, long words cut."""
    return shorten(clip_words(printable(text, newlines=False), word_limit), line_limit)

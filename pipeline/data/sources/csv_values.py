"""Dates and numbers written as text in a price file, read by an explicit, detected convention.

Dates: every value of the date column is tried against each known format (`DATE_FORMATS`), and
the one format that reads all of them is used. A file is refused (DataError naming the column
and an example value) when no one format reads every value (formats mixed in one file, or a
value that is no date), or when two formats read every value into different dates (every value
fits both DD/MM/YYYY and MM/DD/YYYY, say): guessing there puts prices on the wrong days. A time
of day and a UTC offset after the date are allowed and dropped: the date shown is the exchange's
local date. Dates pandas cannot hold (before 1677-09-22, after 2262-04-11) are refused too.

Numbers: a column pandas read as text is read here. A comma grouping thousands ("1,234.50",
quoted in the CSV) is removed. A decimal comma ("1.234,50", "12,5"), digits grouped by dots or
spaces, or a file whose only grouped numbers could be either ("1,234" with no decimal point
anywhere) is refused: reading such a number in the other convention is off by a factor of 1000.
Any other text ("null", "-") is a missing value, as before.

pandas has no parser that detects a file's date or number convention (its `dayfirst` is a hint,
not a check, and `thousands=` guesses nothing), hence the detection here; the parsing itself is
pandas' with an explicit format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pipeline.errors import DataError

# Midnights a nanosecond DatetimeIndex (the standard price frame's) can hold.
FIRST_DAY = pd.Timestamp("1677-09-22")
LAST_DAY = pd.Timestamp("2262-04-11")
QUOTED = 40  # characters of a file's value quoted in an error


@dataclass(frozen=True, slots=True)
class DateFormat:
    name: str  # as a user writes it
    code: str  # strptime

    def reads(self, text: str) -> bool:
        try:
            datetime.strptime(text, self.code)
        except ValueError:
            return False
        return True


# Year-first forms and dotted day-first forms have one reading; slashes and dashes after a
# one- or two-digit field are month-first in the US and day-first elsewhere.
DATE_FORMATS = (
    DateFormat("YYYY-MM-DD", "%Y-%m-%d"),
    DateFormat("YYYY/MM/DD", "%Y/%m/%d"),
    DateFormat("YYYY.MM.DD", "%Y.%m.%d"),
    DateFormat("YYYYMMDD", "%Y%m%d"),
    DateFormat("MM/DD/YYYY", "%m/%d/%Y"),
    DateFormat("DD/MM/YYYY", "%d/%m/%Y"),
    DateFormat("MM-DD-YYYY", "%m-%d-%Y"),
    DateFormat("DD-MM-YYYY", "%d-%m-%Y"),
    DateFormat("DD.MM.YYYY", "%d.%m.%Y"),
    DateFormat("DD-Mon-YYYY", "%d-%b-%Y"),
    DateFormat("DD Mon YYYY", "%d %b %Y"),
    DateFormat("Mon DD, YYYY", "%b %d, %Y"),
    DateFormat("DD Month YYYY", "%d %B %Y"),
    DateFormat("Month DD, YYYY", "%B %d, %Y"),
)
KNOWN_FORMATS = "YYYY-MM-DD (time and offset allowed), MM/DD/YYYY, DD/MM/YYYY, DD.MM.YYYY, YYYYMMDD"

# A time of day after the date, with seconds, fractions, AM/PM and a UTC offset where present.
_TIME_OF_DAY = re.compile(
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[AaPp][Mm])?"
    r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?|Z)$"
)


def parse_dates(values: pd.Series, origin: str) -> pd.DatetimeIndex:
    """The dates of a file's date column, in file order; missing cells are NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return _within_range(pd.DatetimeIndex(values), values, origin)
    iso = _plain_iso_dates(values)
    if iso is not None:
        return _within_range(iso, values, origin)
    return detected_dates(values, origin)


def _plain_iso_dates(values: pd.Series) -> pd.DatetimeIndex | None:
    """The dates when every cell is text pandas reads as YYYY-MM-DD (most files), else None.

    A shortcut only: YYYY-MM-DD is then the one format that reads the first value, so the
    detection would choose it and read every value alike. It skips the detection's conversion
    of every cell to stripped text, 40% of reading a 20-year file.
    """
    if values.empty or pd.api.types.infer_dtype(values, skipna=False) != "string":
        return None  # numbers (YYYYMMDD), date objects, missing cells: the detection reads them
    try:
        parsed = pd.to_datetime(values, format=DATE_FORMATS[0].code, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return None
    if parsed.isna().any():
        return None  # a time of day, another format, a value that is no date: the detection
    return pd.DatetimeIndex(parsed.to_numpy())


def detected_dates(values: pd.Series, origin: str) -> pd.DatetimeIndex:
    """`parse_dates` of text by the detected format: the whole procedure, no shortcut."""
    text = _as_text(values)
    present = text.notna()
    if not present.any():
        return pd.DatetimeIndex(np.full(len(values), np.datetime64("NaT"), dtype="M8[ns]"))
    written = text[present]
    if written.str.contains("[:Z]", regex=True).any():  # a time of day somewhere: drop it
        written = written.str.replace(_TIME_OF_DAY, "", regex=True).str.strip()
    parsed = _detect(written, origin, values.name)
    dates = pd.Series(pd.NaT, index=values.index, dtype=parsed.dtype)
    dates[present] = parsed
    return _within_range(pd.DatetimeIndex(dates), values, origin)


def _as_text(values: pd.Series) -> pd.Series:
    """Each cell as stripped text (YYYYMMDD read as integers included), missing ones as NA."""
    if pd.api.types.is_numeric_dtype(values):
        known = values.dropna()
        whole = known.astype("int64") if (known == np.floor(known)).all() else known
        text = pd.Series(pd.NA, index=values.index, dtype="string")
        text[known.index] = whole.astype(str)
        return text
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _detect(written: pd.Series, origin: str, column: object) -> pd.Series:
    """The dates read by the one format that reads every value, or DataError saying why not."""
    first = str(written.iloc[0])
    candidates = [form for form in DATE_FORMATS if form.reads(first)]
    if not candidates:
        raise DataError(
            f"{origin}: column {column!r} does not hold dates: {_quote(first)} is not a date "
            f"in any known format ({KNOWN_FORMATS})"
        )
    readings = {
        form: pd.to_datetime(written, format=form.code, errors="coerce") for form in candidates
    }
    complete = [form for form in candidates if readings[form].notna().all()]
    if not complete:
        _refuse_incomplete(written, readings, origin, column)
    chosen = complete[0]
    for other in complete[1:]:
        differ = readings[other] != readings[chosen]
        if differ.any():
            example = str(written[differ].iloc[0])
            raise DataError(
                f"{origin}: column {column!r} is ambiguous: every date fits both {chosen.name} "
                f"and {other.name} (e.g. {_quote(example)}: "
                f"{readings[chosen][differ].iloc[0]:%d %b %Y} or "
                f"{readings[other][differ].iloc[0]:%d %b %Y}); write the dates as YYYY-MM-DD"
            )
    return readings[chosen]


def _refuse_incomplete(
    written: pd.Series, readings: Mapping[DateFormat, pd.Series], origin: str, column: object
) -> None:
    """Why no one format reads every value: a date pandas cannot hold, a mix, or a non-date."""
    best = min(readings, key=lambda form: int(readings[form].isna().sum()))
    unread = str(written[readings[best].isna()].iloc[0])
    if best.reads(unread):
        raise DataError(_out_of_range_reason(origin, column, unread))
    other = next((form for form in DATE_FORMATS if form.reads(unread)), None)
    if other is None:
        raise DataError(
            f"{origin}: column {column!r} does not hold dates: {_quote(unread)} is not a date "
            f"in any known format, and {_quote(str(written.iloc[0]))} is {best.name}"
        )
    theirs = pd.to_datetime(written, format=other.code, errors="coerce")
    proof = written[readings[best].notna() & theirs.isna()]
    example = str(proof.iloc[0]) if len(proof) else str(written.iloc[0])
    raise DataError(
        f"{origin}: column {column!r} mixes date formats: {_quote(example)} is {best.name}, "
        f"{_quote(unread)} is {other.name}; write every date as YYYY-MM-DD"
    )


def _within_range(dates: pd.DatetimeIndex, values: pd.Series, origin: str) -> pd.DatetimeIndex:
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    known = dates.notna()
    outside = known & ((dates < FIRST_DAY) | (dates >= LAST_DAY + pd.Timedelta(days=1)))
    if outside.any():
        shown = values.iloc[int(np.flatnonzero(outside)[0])]
        raise DataError(_out_of_range_reason(origin, values.name, str(shown)))
    return dates


def _out_of_range_reason(origin: str, column: object, value: str) -> str:
    return (
        f"{origin}: column {column!r} holds {_quote(value)}, outside the dates a price frame "
        f"can hold ({FIRST_DAY:%Y-%m-%d}..{LAST_DAY:%Y-%m-%d})"
    )


# Numbers. Each pattern is matched against a whole stripped cell.
_POINT = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")  # a decimal point: no decimal comma here
_COMMA_GROUPS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
# Grouped by commas beyond doubt: two groups, or a decimal point after them.
_COMMA_GROUPS_SURE = re.compile(
    r"[+-]?\d{1,3}(?:,\d{3}){2,}(?:\.\d*)?|[+-]?\d{1,3}(?:,\d{3})+\.\d*"
)
_DECIMAL_COMMA = re.compile(
    r"[+-]?(?:\d{1,3}(?:[. \u00a0']\d{3})+|\d+),\d*"  # 1.234,50  1 234,5  12,5
    r"|[+-]?\d{1,3}(?:[.\u00a0 ]\d{3}){2,}"  # 1.234.567
    r"|[+-]?\d{1,3}(?:[ \u00a0]\d{3})+"  # 1 234
)


def parse_numbers(columns: Mapping[str, pd.Series], origin: str) -> dict[str, pd.Series]:
    """`columns` with each column pandas left as text read as numbers where it holds them.

    Raises DataError for a decimal comma or a grouping that could be read two ways.
    """
    texts = {
        name: _as_text(values)
        for name, values in columns.items()
        if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    }
    _refuse_decimal_commas(texts, columns, origin)
    parsed = dict(columns)
    for name, text in texts.items():
        grouped = text.str.fullmatch(_COMMA_GROUPS.pattern, na=False)
        cleaned = text.where(~grouped, text.str.replace(",", "", regex=False))
        parsed[name] = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    return parsed


def _refuse_decimal_commas(
    texts: Mapping[str, pd.Series], columns: Mapping[str, pd.Series], origin: str
) -> None:
    undecided: tuple[str, str] | None = None
    point_seen = any(_has_fractions(values) for values in columns.values() if _is_float(values))
    for name, text in texts.items():
        source = columns[name].name
        comma = text.str.fullmatch(_DECIMAL_COMMA.pattern, na=False)
        # "1,234" fits both; it is a decimal comma only when nothing says otherwise.
        comma &= ~text.str.fullmatch(_COMMA_GROUPS.pattern, na=False)
        if comma.any():
            raise DataError(
                f"{origin}: column {source!r} writes {_quote(str(text[comma].iloc[0]))}: a "
                "decimal comma or digits grouped by dots or spaces; write numbers with a "
                "decimal point (1234.50 or 1,234.50)"
            )
        grouped = text.str.fullmatch(_COMMA_GROUPS.pattern, na=False)
        point_seen = point_seen or bool(text.str.fullmatch(_POINT.pattern, na=False).any())
        point_seen = point_seen or bool(
            text.str.fullmatch(_COMMA_GROUPS_SURE.pattern, na=False).any()
        )
        if grouped.any() and undecided is None:
            undecided = (str(source), str(text[grouped].iloc[0]))
    if undecided is not None and not point_seen:
        source, example = undecided
        raise DataError(
            f"{origin}: column {source!r} writes {_quote(example)} and no number in the file has "
            "a decimal point, so the comma may group thousands or be a decimal comma; write "
            "numbers with a decimal point"
        )


def _is_float(values: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(values)


def _has_fractions(values: pd.Series) -> bool:
    known = values.to_numpy(dtype="float64", na_value=np.nan)
    known = known[np.isfinite(known)]
    return bool((known != np.floor(known)).any())


def _quote(value: str) -> str:
    shown = value if len(value) <= QUOTED else f"{value[:QUOTED]}..."
    return repr(shown)

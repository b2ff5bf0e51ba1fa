"""Provider errors in a daily price frame, found from the columns the source has.

Pure functions over a frame of the `sources.base` shape (adj_close, and open/high/low/close/
volume/dividend/split where the source has them), read as float64 arrays (`Bars`). Each
`Finding` names its kind, its dates and its size; `describe` is the one-line data-quality
warning the run reports. The kinds:

- unit error: a block of consecutive sessions off by a power of ten (pence against pounds is
  100x) that comes back; or a power-of-ten jump that does not come back in the range;
- split error: a jump of the adjusted close by a usual split ratio that does not come back (a
  split left unadjusted), or a block off by such a ratio (a split adjusted on the wrong day);
- dividend adjustment: the ratio of the adjusted to the unadjusted close steps by more than the
  day's dividend explains (or, without a dividend column, more than any dividend could);
- one-day jump: a jump that the next day undoes (a provider's one-day doubling);
- stale prices: one close repeated over many sessions, the bar flat or repeated with it;
- gap: more weekdays without a row than any exchange holiday explains.

Unit and split errors are `repairable`: `repair_prices` rescales the block or the history before
an unadjusted split by the nominal factor. The others are only reported: which price is right
cannot be known from the frame.

Thresholds are named constants below, each with the reason for its value. Written here rather
than taken from a library: yfinance's own repair works only inside yfinance, on Yahoo's frames,
and needs further requests to Yahoo; nothing else in the allowed packages checks price frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.data.sources.base import ADJ_CLOSE, PRICE_COLUMNS

Kind = Literal["unit", "split", "dividend", "jump", "stale", "gap"]
KIND_LABELS: dict[Kind, str] = {
    "unit": "unit error",
    "split": "split error",
    "dividend": "dividend adjustment error",
    "jump": "one-day jump",
    "stale": "stale prices",
    "gap": "gap",
}

# --- thresholds -------------------------------------------------------------------------

# A jump is "a power of ten" when its log is within this of k*ln(10), k = +-1..3: a factor
# within 1.5x of 10, 100 or 1000 (ln 1.5 = 0.405). The day's own move rides on the error, and
# even a 40% move leaves a 100x error far from every other power of ten.
UNIT_LOG_TOLERANCE = math.log(1.5)
UNIT_POWERS = (1, 2, 3)
# A block's two jumps must cancel to within this (log): the block's first and last day moves are
# ordinary daily moves, rarely beyond 20% together.
REVERT_LOG_TOLERANCE = 0.2
# Unit mix-ups last days or weeks; a block that has not come back within a year of sessions is
# reported as a change that does not come back.
MAX_BLOCK_SESSIONS = 260

# Usual split ratios (new shares per old) and their inverses, reverse splits.
SPLIT_RATIOS = (2.0, 3.0, 1.5, 4.0, 5.0, 10.0)
# A jump "is" a split ratio when within 4% of it (log): the day's own move rides on it, and a
# quiet day's move is within 4% most of the time, while a real crash or rally lands exactly on
# a split ratio seldom.
SPLIT_LOG_TOLERANCE = 0.04
# A split error is far outside the stock's usual moves: at least this many robust standard
# deviations of the SPLIT_BEFORE_SESSIONS before it.
SPLIT_MIN_SIGMAS = 8.0
SPLIT_BEFORE_SESSIONS = 60
# ... and of the root mean square of the RECENT_SESSIONS before it, when that is larger.
RECENT_SESSIONS = 10
# A real crash or rally leaves marks a split does not. Its session's range (high / low) is a
# multiple of the usual one (2-5x in the 60-stock sample's crashes) while a split session trades
# as usual; its volume surges 5-130x while a split multiplies the share volume by its ratio
# only. Usual: the median of the SURGE_BASE_SESSIONS before.
SURGE_BASE_SESSIONS = 20
SPLIT_MAX_RANGE_SURGE = 3.0
SPLIT_MAX_VOLUME_SURGE = 2.5
# Without bars or volume (adjusted close only): a real move comes with turbulence, the next
# sessions' volatility (root mean square) a multiple of the usual (robust) one.
SPLIT_MAX_VOLATILITY_RATIO = 2.0
SPLIT_AFTER_SESSIONS = 20

# One-day jumps: at least 25% in log terms (about +28% / -22%) that the next day undoes by 80%.
JUMP_LOG_RETURN = 0.25
REVERSAL_SHARE = 0.8

# Dividend adjustment. The step of log(adj_close / close) on a day must match the day's dividend
# (and split) to within this: quarterly dividends are 0.2-3% of the price, and an error that
# matters (a misapplied factor) is several percent; a provider's rounding of both prices to
# the cent stays far below 2% above a dollar a share.
DIVIDEND_STEP_TOLERANCE = 0.02
# Without a dividend column a step down is never a dividend.
# Regular dividends stay below this share of the price (quarterly yields of 0.2-3%): a larger
# step is a special distribution or an error, told apart by the adjusted close's own move.
MAX_REGULAR_YIELD = 0.05
# ... unless the adjusted close itself moves no more than this many robust deviations: a large
# distribution (a spin-off) drops the close and leaves the adjusted return ordinary.
DIVIDEND_ERROR_SIGMAS = 4.0
# Steps are measured between the median levels of this many sessions on either side, so one
# badly rounded price does not look like a step.
DIVIDEND_LEVEL_SESSIONS = 5

# Stale prices: this many sessions in a row repeat the previous close, with the bar flat
# (open = high = low = close), without volume, or repeating the previous bar. Real trading
# pins a close for two or three sessions at most (the 60-stock sample: at most 5 equal closes,
# with moving bars and volume, CPRT Feb 2007); a stale feed repeats everything.
STALE_MIN_SESSIONS = 5
# Without bars to confirm it (adjusted close only), a longer run is needed.
STALE_MIN_SESSIONS_CLOSE_ONLY = 10

# Gaps: more weekdays without a row than this is not a holiday. The longest US closure since
# 1933 outside wartime was four sessions (September 11-14, 2001); week-long holidays elsewhere
# (Chinese New Year, Golden Week) close five weekdays.
GAP_MAX_HOLIDAY_WEEKDAYS = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """One suspected provider error.

    `first`..`last`: the sessions affected (for a jump that does not come back: its day and the
    range's last session). `size`: the factor by which the prices are off (unit, split,
    dividend, jump), or the number of sessions (stale, gap). `repair_factor`: multiply the
    adjusted close over first..last by this to repair; None when no repair is safe.
    """

    kind: Kind
    first: date
    last: date
    size: float
    detail: str
    repair_factor: float | None = None

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def describe(self) -> str:
        """The data-quality warning: '<kind>: <what, when, how big>'."""
        if self.kind == "jump":
            return self.detail  # the wording runs have always reported
        return f"{self.label}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Bars:
    """A price frame's columns as float64 arrays on its dates: what the checks read.

    Why not the frame itself: indexing a DataFrame by column and row costs more than the
    checks on 20 years of prices, and a warm run checks every cached ticker; and a cache hit
    can build these straight from its Arrow table, with no DataFrame at all.
    """

    dates: pd.DatetimeIndex
    columns: dict[str, np.ndarray]

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> Bars:
        """The `sources.base` columns of `frame` (others are not read)."""
        names = [name for name in PRICE_COLUMNS if name in frame.columns]
        columns = {name: frame[name].to_numpy(dtype="float64") for name in names}
        return cls(pd.DatetimeIndex(frame.index), columns)

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __len__(self) -> int:
        return len(self.dates)

    def where(self, rows: np.ndarray) -> Bars:
        """The rows where the boolean array `rows` is true."""
        if rows.all():
            return self
        return Bars(self.dates[rows], {name: values[rows] for name, values in self.columns.items()})


def detect(frame: pd.DataFrame | Bars) -> tuple[Finding, ...]:
    """Every suspected provider error in `frame`, in date order.

    `frame` is a price frame of the `sources.base` shape (or its `Bars`), sorted by date; rows
    without a positive adjusted close are ignored (cleaning refuses them).
    """
    bars = frame if isinstance(frame, Bars) else Bars.of_frame(frame)
    adj = bars[ADJ_CLOSE]
    bars = bars.where(np.isfinite(adj) & (adj > 0))
    if len(bars) < 3:
        return ()
    dates = bars.dates
    log_adj = np.log(bars[ADJ_CLOSE])
    returns = np.diff(log_adj)
    jumps, taken = _jump_findings(bars, dates, returns)
    findings = [
        *jumps,
        *_dividend_findings(bars, skip=taken),
        *_stale_findings(bars),
        *_gap_findings(dates),
    ]
    return tuple(sorted(findings, key=lambda finding: (finding.first, finding.kind)))


def repair_prices(prices: pd.Series, repairs: Iterable[tuple[date, date, float]]) -> pd.Series:
    """`prices` with each (first, last, factor) applied: the prices dated first..last, both
    inclusive, multiplied by factor. The input is not changed."""
    repaired = prices.astype("float64")
    for first, last, factor in repairs:
        inside = (repaired.index >= pd.Timestamp(first)) & (repaired.index <= pd.Timestamp(last))
        repaired = repaired.where(~inside, repaired * factor)
    return repaired


def repairs_of(findings: Iterable[Finding]) -> tuple[tuple[date, date, float], ...]:
    """The safe repairs among `findings`, as `repair_prices` takes them."""
    return tuple(
        (finding.first, finding.last, finding.repair_factor)
        for finding in findings
        if finding.repair_factor is not None
    )


# --- jumps: unit errors, split errors, one-day jumps ------------------------------------------


def _jump_findings(
    bars: Bars, dates: pd.DatetimeIndex, returns: np.ndarray
) -> tuple[list[Finding], set[date]]:
    """Big moves of the adjusted close, classified, and the days of the moves they explain.

    returns[t] is the move into dates[t + 1]."""
    findings: list[Finding] = []
    used: set[int] = set()
    sigma = _robust_sigma(returns)
    for t in np.flatnonzero(np.abs(returns) >= JUMP_LOG_RETURN):
        if t in used:
            continue
        found = (
            _unit_error(dates, returns, t)
            or _one_day_jump(dates, returns, t)
            or _split_error(bars, dates, returns, t, sigma)
        )
        if found is not None:
            finding, consumed = found
            findings.append(finding)
            used.update(consumed)
    return findings, {dates[t + 1].date() for t in used}


def _power_of_ten(move: float) -> int:
    """k when `move` (a log return) is near k*ln(10) for k in +-UNIT_POWERS, else 0."""
    k = round(move / math.log(10))
    if abs(k) in UNIT_POWERS and abs(move - k * math.log(10)) <= UNIT_LOG_TOLERANCE:
        return k
    return 0


def _return_of(returns: np.ndarray, t: int, log_factor: float, tolerance: float) -> int | None:
    """The first session after t, within MAX_BLOCK_SESSIONS, whose move undoes `log_factor`."""
    stop = min(len(returns), t + 1 + MAX_BLOCK_SESSIONS)
    later = returns[t + 1 : stop]
    back = np.flatnonzero(
        (np.abs(later + log_factor) <= tolerance)
        & (np.abs(later + returns[t]) <= REVERT_LOG_TOLERANCE)
    )
    return None if back.size == 0 else int(t + 1 + back[0])


def _unit_error(
    dates: pd.DatetimeIndex, returns: np.ndarray, t: int
) -> tuple[Finding, set[int]] | None:
    k = _power_of_ten(float(returns[t]))
    if k == 0:
        return None
    factor = 10.0**k
    first = dates[t + 1].date()
    back = _return_of(returns, t, k * math.log(10), UNIT_LOG_TOLERANCE)
    if back is None and abs(k) == 1:
        return None  # 10x that stays: a 10:1 split, for the split check
    if back is None:
        detail = (
            f"prices from {first} on are {_times(factor)} the earlier ones and do not come back "
            f"in the range (a change of unit, e.g. pence for pounds?)"
        )
        return Finding("unit", first, dates[-1].date(), factor, detail), {t}
    last = dates[back].date()
    sessions = back - t
    detail = (
        f"prices {first}..{last} ({_sessions(sessions)}) are {_times(factor)} the prices "
        "around them (a unit mix-up, e.g. pence for pounds)"
    )
    return Finding("unit", first, last, factor, detail, repair_factor=1.0 / factor), {t, back}


def _nearest_split(move: float) -> float | None:
    """The split ratio (or inverse) whose log is within SPLIT_LOG_TOLERANCE of `move`."""
    if not math.isfinite(move):
        return None
    for ratio in SPLIT_RATIOS:
        for factor in (ratio, 1.0 / ratio):
            if abs(move - math.log(factor)) <= SPLIT_LOG_TOLERANCE:
                return factor
    return None


def _split_error(
    bars: Bars,
    dates: pd.DatetimeIndex,
    returns: np.ndarray,
    t: int,
    sigma: np.ndarray,
) -> tuple[Finding, set[int]] | None:
    factor = _nearest_split(float(returns[t])) or _nearest_split(_adjusted_gap(bars, t + 1))
    if factor is None:
        return None
    recorded = _split_recorded(bars, t + 1, factor) or _adjustment_moved(bars, t + 1, factor)
    back = _return_of(returns, t, math.log(factor), SPLIT_LOG_TOLERANCE)
    if back == t + 1:
        return None  # one day and back: the one-day jump it is
    if back is not None and not recorded:
        recorded = _adjustment_moved(bars, back + 1, 1.0 / factor)
    calm = _looks_like_a_split(bars, returns, t, until=back) and (
        back is None or _looks_like_a_split(bars, returns, back, usual_until=t)
    )
    if not (recorded or calm):
        return None  # a real crash or rally that happens to land near a split ratio
    first = dates[t + 1].date()
    if back is not None:
        last = dates[back].date()
        detail = (
            f"prices {first}..{last} ({_sessions(back - t)}) are {_times(factor)} the prices "
            f"around them: a {_ratio_name(factor)} split adjusted on the wrong day?"
        )
        finding = Finding("split", first, last, factor, detail, repair_factor=1.0 / factor)
        return finding, {t, back}
    before = dates[t].date()
    detail = (
        f"the adjusted close moves {_times(factor)} on {first} and does not come back: a "
        f"{_ratio_name(factor)} split left unadjusted"
        f"{' (the source records that split)' if recorded else ''}; prices up to {before} "
        f"are {_times(1.0 / factor)} what they would be adjusted"
    )
    # Adjusting for the split rescales the history before it.
    finding = Finding("split", dates[0].date(), before, factor, detail, repair_factor=factor)
    return finding, {t}


def _adjusted_gap(bars: Bars, row: int) -> float:
    """The adjusted move from the previous close to this open (log), NaN without opens.

    The day's trading rides on a close-to-close move; the overnight gap carries a split error
    with far less of it."""
    if "open" not in bars or "close" not in bars or row == 0:
        return math.nan
    open_, close = bars["open"][row], bars["close"][row]
    adjusted_open = open_ * bars[ADJ_CLOSE][row] / close
    return float(np.log(adjusted_open / bars[ADJ_CLOSE][row - 1]))


def _adjustment_moved(bars: Bars, row: int, factor: float) -> bool:
    """The adjusted close moves by `factor` against the unadjusted close: the adjustment itself
    jumps, not the price (a split adjusted on the wrong day)."""
    if "close" not in bars or row == 0:
        return False
    adj, close = bars[ADJ_CLOSE], bars["close"]
    step = math.log(adj[row] / close[row]) - math.log(adj[row - 1] / close[row - 1])
    return abs(step - math.log(factor)) <= SPLIT_LOG_TOLERANCE


def _split_recorded(bars: Bars, row: int, factor: float) -> bool:
    """The source's split column records a split of this ratio within a session of `row`."""
    if "split" not in bars:
        return False
    window = bars["split"][max(0, row - 1) : row + 2]
    # An unadjusted 2:1 split halves the price: the move is 1/ratio.
    return bool(np.any(np.abs(np.log(np.maximum(window, 1e-12)) + math.log(factor)) < 0.01))


def _looks_like_a_split(
    bars: Bars,
    returns: np.ndarray,
    t: int,
    until: int | None = None,
    usual_until: int | None = None,
) -> bool:
    """The move into row t + 1 is far outside the stock's usual moves, and the session shows
    none of a real crash's or rally's marks: no surge of the day's range or volume, no
    turbulence after it."""
    move = abs(float(returns[t]))
    base = t if usual_until is None else usual_until  # the usual moves: before any block
    before = returns[max(0, base - SPLIT_BEFORE_SESSIONS) : base]
    scale = _mad_sigma(before) if len(before) >= 5 else _mad_sigma(returns)
    recent = returns[max(0, base - RECENT_SESSIONS) : base]
    if len(recent):  # in a turbulent market (March 2020) a big move is no outlier
        scale = max(scale, float(np.sqrt(np.mean(recent**2))))
    if move < SPLIT_MIN_SIGMAS * scale:
        return False
    row = t + 1
    window = slice(max(0, base + 1 - SURGE_BASE_SESSIONS), base + 1)
    has_bars = {"high", "low"} <= set(bars.columns)
    if has_bars:
        ranges = np.log(bars["high"] / bars["low"])
        usual = np.nanmedian(ranges[window]) if row > 0 else np.nan
        if np.isfinite(usual) and ranges[row] > SPLIT_MAX_RANGE_SURGE * max(usual, 1e-4):
            return False
    if "volume" in bars:
        volume = bars["volume"]
        usual = np.nanmedian(volume[window]) if row > 0 else np.nan
        ratio = math.exp(move)  # an unadjusted split multiplies the share volume by its ratio
        surge = SPLIT_MAX_VOLUME_SURGE * ratio * usual
        if np.isfinite(usual) and usual > 0 and volume[row] > surge:
            return False
        has_bars = True
    if has_bars:
        return True
    stop = (
        t + 1 + SPLIT_AFTER_SESSIONS if until is None else min(until, t + 1 + SPLIT_AFTER_SESSIONS)
    )
    after = returns[t + 1 : stop]  # a block's own way back is no turbulence
    if len(after) < 5:
        return True
    return float(np.sqrt(np.mean(after**2))) <= SPLIT_MAX_VOLATILITY_RATIO * scale


def _one_day_jump(
    dates: pd.DatetimeIndex, returns: np.ndarray, t: int
) -> tuple[Finding, set[int]] | None:
    if t + 1 >= len(returns):
        return None
    jump, following = float(returns[t]), float(returns[t + 1])
    reverts = (
        abs(jump) >= JUMP_LOG_RETURN
        and np.sign(following) == -np.sign(jump)
        and abs(jump + following) <= (1 - REVERSAL_SHARE) * abs(jump)
    )
    if not reverts:
        return None
    day = dates[t + 1].date()
    detail = (
        f"suspicious one-day jump on {day}: {math.expm1(jump):+.0%} then "
        f"{math.expm1(following):+.0%} the next day (a provider error?); prices kept as given"
    )
    return Finding("jump", day, day, math.exp(jump), detail), {t, t + 1}


# --- dividend adjustment ----------------------------------------------------------------------


def _dividend_findings(bars: Bars, skip: set[date]) -> list[Finding]:
    """Steps of log(adj_close / close) that the day's dividend and split do not explain."""
    if "close" not in bars:
        return []
    close = bars["close"]
    adj = bars[ADJ_CLOSE]
    usable = np.isfinite(close) & (close > 0)
    if usable.sum() < 2 * DIVIDEND_LEVEL_SESSIONS:
        return []
    sub = bars.where(usable)
    close, adj = close[usable], adj[usable]
    level = np.log(adj / close)
    steps = np.diff(level)
    expected_low, expected_high = _expected_steps(sub, close, steps)
    has_dividends = "dividend" in sub.columns
    tolerance = DIVIDEND_STEP_TOLERANCE
    if has_dividends:
        off = np.minimum(np.abs(steps - expected_low), np.abs(steps - expected_high))
        candidates = np.flatnonzero(off > tolerance)
    else:
        limit = -math.log(1.0 - MAX_REGULAR_YIELD)
        excess = steps - expected_low
        candidates = np.flatnonzero((excess > limit) | (excess < -tolerance))
    adj_returns = np.diff(np.log(adj))
    findings = []
    n = DIVIDEND_LEVEL_SESSIONS
    for t in candidates:
        day = sub.dates[t + 1].date()
        if day in skip:
            continue
        # The step between the median levels either side, so one badly rounded price is no step.
        after, before = level[t + 1 : t + 1 + n], level[max(0, t + 1 - n) : t + 1]
        step = float(np.median(after) - np.median(before))
        low, high = float(expected_low[t]), float(expected_high[t])
        if has_dividends:
            miss = min(abs(step - low), abs(step - high))
            if miss <= tolerance:
                continue
        elif step - low > -math.log(1.0 - MAX_REGULAR_YIELD):
            # A large distribution (a special dividend, a spin-off) lowers the close and leaves
            # the adjusted close an ordinary day; a history scaled wrongly moves the adjusted
            # close instead (a split the close shows, 7:1 say, is told apart the same way).
            if not _unusual_move(adj_returns, t):
                continue
        elif step - low >= -tolerance:
            continue
        findings.append(_dividend_finding(sub, t, step, low, day))
    return findings


def _unusual_move(returns: np.ndarray, t: int) -> bool:
    """returns[t] is beyond DIVIDEND_ERROR_SIGMAS robust deviations of the sessions before."""
    before = returns[max(0, t - SPLIT_BEFORE_SESSIONS) : t]
    scale = _mad_sigma(before) if len(before) >= 5 else _mad_sigma(returns)
    return abs(float(returns[t])) > DIVIDEND_ERROR_SIGMAS * scale


def _expected_steps(
    bars: Bars, close: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The step of log(adj/close) into each day that its dividend and split explain.

    Two conventions are in use for a dividend D: the history before the ex-date scaled by
    1 - D / previous close (most providers), or the day's adjusted return (close + D) / previous
    close (some providers, for large distributions such as spin-offs); both are accepted.
    """
    n = len(close)
    split_step = np.zeros(n - 1)
    if "split" in bars:
        splits = bars["split"][1:]
        split_step = np.log(np.where(np.isfinite(splits) & (splits > 0), splits, 1.0))
    else:
        # No split column: a step by a split ratio while the close moves by about its inverse
        # is taken for a split the adjusted close reflects.
        moves = np.diff(np.log(close))
        for t in np.flatnonzero(np.abs(steps) >= math.log(1.5) - SPLIT_LOG_TOLERANCE):
            factor = _nearest_split(-float(steps[t]))
            exact = factor is not None and abs(steps[t] + math.log(factor)) <= 0.02
            if exact and abs(moves[t] + steps[t]) <= REVERT_LOG_TOLERANCE:
                split_step[t] = steps[t]
    if "dividend" not in bars:
        return split_step, split_step
    dividend = np.nan_to_num(bars["dividend"][1:], nan=0.0)
    dividend = np.maximum(dividend, 0.0)
    share = np.clip(dividend / close[:-1], 0.0, 0.99)
    scaled = -np.log1p(-share)
    additive = np.log1p(dividend / close[1:])
    return split_step + scaled, split_step + additive


def _dividend_finding(bars: Bars, t: int, step: float, low: float, day: date) -> Finding:
    dividend = float(bars["dividend"][t + 1]) if "dividend" in bars else 0.0
    explained = (
        f"a dividend of {dividend:g} explains {math.expm1(low):+.1%}"
        if dividend > 0
        else "no dividend that day"
        if "dividend" in bars
        else "more than any dividend could explain"
    )
    before = bars.dates[t].date()
    detail = (
        f"on {day} the adjusted close moves {math.expm1(step):+.1%} against the close "
        f"({explained}): the history up to {before} is scaled by "
        f"{math.exp(-(step - low)):.3f} too much"
    )
    return Finding("dividend", day, day, math.exp(step - low), detail)


# --- stale prices and gaps ------------------------------------------------------------------


def _stale_findings(bars: Bars) -> list[Finding]:
    """Runs of sessions that repeat the previous close (the bar flat or repeated with it)."""
    column = "close" if "close" in bars else ADJ_CLOSE
    values = bars[column]
    repeated = np.concatenate(([False], values[1:] == values[:-1]))
    if any(name in bars for name in ("open", "high", "low", "volume")):
        repeated &= _bar_is_stale(bars, values)
        minimum = STALE_MIN_SESSIONS
    else:
        minimum = STALE_MIN_SESSIONS_CLOSE_ONLY
    findings = []
    for start, stop in _runs(repeated):
        sessions = stop - start
        if sessions < minimum:
            continue
        first, last = bars.dates[start].date(), bars.dates[stop - 1].date()
        detail = (
            f"the close stays {values[start]:g} for {_sessions(sessions)} after "
            f"{bars.dates[start - 1].date()}, {first}..{last} (a feed that stopped?)"
        )
        findings.append(Finding("stale", first, last, float(sessions), detail))
    return findings


def _bar_is_stale(bars: Bars, close: np.ndarray) -> np.ndarray:
    """Per session: flat (open = high = low = close), no volume, or the previous bar again."""
    stale = np.zeros(len(close), dtype=bool)
    prices = [name for name in ("open", "high", "low") if name in bars]
    if prices:
        bar = np.column_stack([bars[name] for name in prices])
        stale |= np.all(bar == close[:, None], axis=1)
        again = np.concatenate(([False], np.all(bar[1:] == bar[:-1], axis=1)))
        stale |= again
    if "volume" in bars:
        volume = bars["volume"]
        stale |= volume == 0
        stale |= np.concatenate(([False], volume[1:] == volume[:-1]))
    return stale


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in `flags`."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _gap_findings(dates: pd.DatetimeIndex) -> list[Finding]:
    days = dates.to_numpy().astype("datetime64[D]")
    missing = np.busday_count(days[:-1], days[1:]) - 1
    findings = []
    for t in np.flatnonzero(missing > GAP_MAX_HOLIDAY_WEEKDAYS):
        after, before = dates[t].date(), dates[t + 1].date()
        detail = f"no prices for {int(missing[t])} weekdays between {after} and {before}"
        findings.append(Finding("gap", after, before, float(missing[t]), detail))
    return findings


# --- helpers --------------------------------------------------------------------------------


def _mad_sigma(returns: np.ndarray) -> float:
    """A standard deviation robust to the outliers this module looks for (1.4826 x MAD)."""
    if len(returns) == 0:
        return 0.0
    deviation = np.abs(returns - np.median(returns))
    return float(1.4826 * np.median(deviation)) or float(np.mean(deviation))


def _robust_sigma(returns: np.ndarray) -> np.ndarray:
    """The whole series' robust volatility, for moves with too little history before them."""
    return np.full(len(returns), _mad_sigma(returns))


def _times(factor: float) -> str:
    return f"{factor:.4g}x" if factor >= 1 else f"1/{1.0 / factor:.4g}x"


def _ratio_name(factor: float) -> str:
    """'2:1' when the price halves (factor 1/2), '1:2 reverse' when it doubles."""
    if factor < 1:
        new, old = _fraction(1.0 / factor)
        return f"{new}:{old}"
    new, old = _fraction(factor)
    return f"{old}:{new} reverse"


def _fraction(ratio: float) -> tuple[int, int]:
    """(3, 2) for 1.5: the smallest whole numbers in that ratio."""
    for denominator in (1, 2):
        numerator = ratio * denominator
        if abs(numerator - round(numerator)) < 1e-6:
            return round(numerator), denominator
    return round(ratio), 1


def _sessions(count: int) -> str:
    return f"{count} session{'s' if count != 1 else ''}"


def summarise(findings: Sequence[Finding]) -> str:
    """'unit error 2010-03-01..2010-03-12 (+2 more)': the reason of a skipped ticker."""
    if not findings:
        return ""
    first = findings[0]
    span = f"{first.first}" if first.first == first.last else f"{first.first}..{first.last}"
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"data quality: {first.label} {span}{more}"

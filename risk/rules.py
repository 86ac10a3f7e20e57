"""Pure risk rules: each check returns None (allow) or a `Denial` with a stable code and a reason.

Checks never mutate; the engine calls `record` / `Velocity.record` only after it has accepted
the order, so a denied order leaves every running total as it was. All state is O(1) per user
(a few ints, a deque bounded by the order limit). Time is the command's `ts_ms`, never a clock,
so a replay takes the same decisions. A limit of None means "no limit"; a stake exactly at a
limit is allowed, one minor unit over is denied.
"""

from collections import deque
from dataclasses import dataclass

import cython

from engine.money import format_money
from engine.pickling import restore_slots, slot_state
from engine.rejections import Code

MS_PER_DAY = 86_400_000
# 1970-01-01 (day 0) was a Thursday; shifting by 3 days makes weeks start on Monday (ISO).
_EPOCH_WEEKDAY_OFFSET = 3
VELOCITY_WINDOW_MS = 1_000
VELOCITY_ORDERS_MAX = 10


@dataclass(frozen=True, slots=True)
class Denial:
    code: Code
    reason: str


# -- market stake ------------------------------------------------------------------------------


# The two limit records are compiled dataclasses (rules.pxd declares their fields), read on
# every order; they pickle as the slotted dataclasses they were (engine/pickling.py).
@cython.dataclasses.dataclass
@cython.cclass
class MarketLimits:
    __reduce__ = slot_state
    __setstate__ = restore_slots

    min_stake_minor: int | None = None
    max_stake_minor: int | None = None
    max_liability_minor: int | None = None  # house liability cap, whole market
    selection_max_liability_minor: int | None = None  # house liability cap, per selection


def check_market_stake(limits: MarketLimits, stake_minor: int) -> Denial | None:
    if limits.min_stake_minor is not None and stake_minor < limits.min_stake_minor:
        return Denial(
            Code.STAKE_TOO_LOW,
            f"stake {format_money(stake_minor)} below the market minimum "
            f"{format_money(limits.min_stake_minor)}",
        )
    if limits.max_stake_minor is not None and stake_minor > limits.max_stake_minor:
        return Denial(
            Code.STAKE_TOO_HIGH,
            f"stake {format_money(stake_minor)} above the market maximum "
            f"{format_money(limits.max_stake_minor)}",
        )
    return None


# -- user limits -------------------------------------------------------------------------------


@cython.dataclasses.dataclass
@cython.cclass
class UserLimits:
    __reduce__ = slot_state
    __setstate__ = restore_slots

    max_stake_minor: int | None = None
    daily_stake_minor: int | None = None  # total staked per UTC day
    weekly_stake_minor: int | None = None  # total staked per ISO week (Monday 00:00 UTC)
    stake_factor: tuple[int, int] | None = None  # (num, den): sportsbook customer profiling
    max_exposure_minor: int | None = None


def effective_max_stake(user: UserLimits, market_max_stake_minor: int | None) -> int | None:
    """The per-bet maximum for this user, before the market's own check.

    The stake factor scales what the user could otherwise stake in this market: the lower of
    the per-user and the market maximum (either may be absent), floored to the cent. Scaling
    the lower one means a factor of 0.5 always halves the real allowance, even for a user whose
    own maximum sits above the market's. Without a factor only the per-user maximum applies
    here (the market maximum is `check_market_stake`'s job); with a factor and neither maximum
    set there is nothing to scale and no per-bet cap.
    """
    if user.stake_factor is None:
        return user.max_stake_minor
    cap = user.max_stake_minor
    if market_max_stake_minor is not None and (cap is None or market_max_stake_minor < cap):
        cap = market_max_stake_minor
    if cap is None:
        return None
    num, den = user.stake_factor
    return cap * num // den


def day_index(ts_ms: int) -> int:
    return ts_ms // MS_PER_DAY


def week_index(ts_ms: int) -> int:
    return (day_index(ts_ms) + _EPOCH_WEEKDAY_OFFSET) // 7


class StakeWindows:
    """A user's staked totals in the current UTC day and ISO week (reset when a stake falls past
    the window's end).

    The ends are kept as timestamps so the hot path compares one int instead of recomputing
    day and week indexes. A timestamp older than the stored window counts toward the stored
    window, never resetting it, so an out-of-order timestamp cannot give a fresh allowance.
    Compiled with C-integer fields (rules.pxd), hence a plain class rather than a dataclass.
    """

    __slots__ = ("day_index", "day_total_minor", "week_index", "week_total_minor", "day_end_ms",
                 "week_end_ms")
    __reduce__ = slot_state  # pickled as the slotted dataclass it was
    __setstate__ = restore_slots

    def __init__(self, day_index: int = 0, day_total_minor: int = 0, week_index: int = 0,
                 week_total_minor: int = 0, day_end_ms: int = 0, week_end_ms: int = 0) -> None:
        self.day_index = day_index
        self.day_total_minor = day_total_minor
        self.week_index = week_index
        self.week_total_minor = week_total_minor
        self.day_end_ms = day_end_ms  # first ms after the stored day; 0: nothing recorded yet
        self.week_end_ms = week_end_ms

    def _values(self) -> tuple:
        return (self.day_index, self.day_total_minor, self.week_index, self.week_total_minor,
                self.day_end_ms, self.week_end_ms)

    def __eq__(self, other) -> bool:
        if not isinstance(other, StakeWindows):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        return f"StakeWindows{self._values()}"

    def totals_at(self, ts_ms: int) -> tuple[int, int]:
        """(day total, week total) as they stand at `ts_ms`, without changing anything."""
        return (self.day_total_minor if ts_ms < self.day_end_ms else 0,
                self.week_total_minor if ts_ms < self.week_end_ms else 0)


def check_user_stake(
    user: UserLimits,
    windows: StakeWindows,
    stake_minor: int,
    ts_ms: int,
    market_max_stake_minor: int | None,
) -> Denial | None:
    if user.stake_factor is None:
        max_stake = user.max_stake_minor
    else:
        max_stake = effective_max_stake(user, market_max_stake_minor)
    if max_stake is not None and stake_minor > max_stake:
        return Denial(
            Code.STAKE_TOO_HIGH,
            f"stake {format_money(stake_minor)} above your maximum {format_money(max_stake)}",
        )
    daily = user.daily_stake_minor
    if daily is not None:
        day_total = windows.day_total_minor if ts_ms < windows.day_end_ms else 0
        if day_total + stake_minor > daily:
            return Denial(
                Code.LIMIT_EXCEEDED,
                f"stake {format_money(stake_minor)} would take today's total "
                f"{format_money(day_total)} above your daily limit {format_money(daily)}",
            )
    weekly = user.weekly_stake_minor
    if weekly is not None:
        week_total = windows.week_total_minor if ts_ms < windows.week_end_ms else 0
        if week_total + stake_minor > weekly:
            return Denial(
                Code.LIMIT_EXCEEDED,
                f"stake {format_money(stake_minor)} would take this week's total "
                f"{format_money(week_total)} above your weekly limit {format_money(weekly)}",
            )
    return None


def record(windows: StakeWindows, stake_minor: int, ts_ms: int) -> None:
    """Count an accepted stake in the user's day and week windows."""
    if ts_ms >= windows.day_end_ms:
        day = ts_ms // MS_PER_DAY
        windows.day_index, windows.day_total_minor = day, 0
        windows.day_end_ms = (day + 1) * MS_PER_DAY
    if ts_ms >= windows.week_end_ms:
        week = week_index(ts_ms)
        windows.week_index, windows.week_total_minor = week, 0
        windows.week_end_ms = (7 * (week + 1) - _EPOCH_WEEKDAY_OFFSET) * MS_PER_DAY
    windows.day_total_minor += stake_minor
    windows.week_total_minor += stake_minor


def check_max_exposure(user: UserLimits, new_market_exposure_minor: int) -> Denial | None:
    if user.max_exposure_minor is not None and new_market_exposure_minor > user.max_exposure_minor:
        return Denial(
            Code.LIMIT_EXCEEDED,
            f"exposure {format_money(new_market_exposure_minor)} above your maximum "
            f"{format_money(user.max_exposure_minor)}",
        )
    return None


# -- velocity ----------------------------------------------------------------------------------


class Velocity:
    """At most `orders_max` orders per user in any `window_ms` (rolling, by command timestamp).

    The window of an order at `ts_ms` is (ts_ms - window_ms, ts_ms]. Only the last `orders_max`
    accepted timestamps are kept: the next order is one too many exactly when the oldest of them
    is still inside its window. Assumes non-decreasing `ts_ms`, which the sequencer guarantees.
    """

    __slots__ = ("orders_max", "window_ms", "_stamps_ms")
    __reduce__ = slot_state  # compiled (rules.pxd), pickled as the plain class it was
    __setstate__ = restore_slots

    def __init__(
        self,
        orders_max: int = VELOCITY_ORDERS_MAX,
        window_ms: int = VELOCITY_WINDOW_MS,
        stamps_ms: tuple[int, ...] = (),
    ) -> None:
        if orders_max < 1 or window_ms < 1:
            raise ValueError("velocity needs at least one order per window of at least 1 ms")
        self.orders_max = orders_max
        self.window_ms = window_ms
        self._stamps_ms: deque[int] = deque(stamps_ms, maxlen=orders_max)

    def check(self, ts_ms: int) -> Denial | None:
        stamps = self._stamps_ms
        if len(stamps) == self.orders_max and stamps[0] > ts_ms - self.window_ms:
            return Denial(
                Code.RATE_LIMITED,
                f"more than {self.orders_max} orders within {self.window_ms} ms",
            )
        return None

    def record(self, ts_ms: int) -> None:
        self._stamps_ms.append(ts_ms)

    @property
    def stamps_ms(self) -> tuple[int, ...]:
        """The remembered timestamps, oldest first: what a snapshot must keep for replay."""
        return tuple(self._stamps_ms)


# -- house liability ---------------------------------------------------------------------------


def check_house_liability(
    limits: MarketLimits, market_liability_minor: int, selection_liability_minor: int
) -> Denial | None:
    cap = limits.max_liability_minor
    if cap is not None and market_liability_minor > cap:
        return Denial(
            Code.LIABILITY_LIMIT,
            f"house liability {format_money(market_liability_minor)} above the market limit "
            f"{format_money(cap)}",
        )
    cap = limits.selection_max_liability_minor
    if cap is not None and selection_liability_minor > cap:
        return Denial(
            Code.LIABILITY_LIMIT,
            f"house liability {format_money(selection_liability_minor)} on the selection above "
            f"its limit {format_money(cap)}",
        )
    return None

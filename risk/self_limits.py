"""A bettor's own responsible-gambling limits and self-exclusion: the state the engine keeps and
the pure rules that decide. The operator's per-user limits (risk/rules.py, `limits.set`) are a
separate thing: both apply, so the stricter one wins.

Six limits per user and currency: deposits, stakes and losses, each per day and per week.

- Windows are calendar ones, in UTC: the day starts at 00:00 UTC and the week on Monday 00:00
  UTC (ISO weeks), as for the operator's stake limits and as Betfair's loss limits and many UK
  operators' deposit limits count. A reset is then a time the bettor can be told exactly, and a
  limit set during a day counts what was already deposited, staked or lost that day: usage is
  kept for every bettor from their first deposit or bet, limit or none.
- Stake used = the stake of every order placed in the window that is matched or still waiting;
  what is cancelled or lapsed before it matched comes back (the window it was placed in gets it
  back, if that window is still the current one). Matched stake stays used, even if the market
  is later voided. A lay's stake is its size (the backer's stake), as on the order.
- Loss used = the net loss of the markets settled in the window (losses minus winnings, after
  commission) plus the worst case of every open position (its hold), so that an order is
  refused if losing everything still open could take the window's net loss past the limit.
- Deposit used = what was credited in the window; withdrawals do not give any of it back.

A limit is lowered (or set where there was none) at once. A raise, or a removal, waits the
cooling-off period (EngineConfig.self_limit_cooling_off_ms, 24 h by default) and then applies
by itself: a command at or after its effective time sees the new value. Asking for no more than
a pending raise (less, the same, or a removal again) keeps that raise's time, whatever the
cooling-off period is by then; asking for more starts a new cooling-off period.

Self-exclusion blocks orders and deposits until a time; it can be extended, never shortened.

Everything is decided from the commands' `ts` (ms since the epoch, UTC) and `seq`: no clock.
"""

from engine.money import format_money
from engine.pickling import restore_slots, slot_state
from engine.rejections import Code

from .rules import MS_PER_DAY, Denial, week_index

# the six limits in wire order; a limit's index is 2 * kind + period
NAMES = ("daily_deposit", "weekly_deposit", "daily_stake", "weekly_stake", "daily_loss",
         "weekly_loss")
INDEX = {name: i for i, name in enumerate(NAMES)}
DEPOSIT, STAKE, LOSS = 0, 1, 2  # kinds
DAY, WEEK = 0, 1  # periods
_KIND_NAMES = ("deposit", "stake", "loss")
_PERIOD_NAMES = ("daily", "weekly")
_PERIOD_NOUNS = ("today", "this week")
_CODES = (Code.SELF_DEPOSIT_LIMIT, Code.SELF_STAKE_LIMIT, Code.SELF_LOSS_LIMIT)
# 1970-01-01 was a Thursday: week `w` (risk/rules.py week_index) starts on day 7w - 3
_EPOCH_WEEKDAY_OFFSET = 3

EXCLUSION_MIN_MS = MS_PER_DAY  # a break shorter than a day is no break
EXCLUSION_DAYS_MAX = 3650


def day_end(ts_ms: int) -> int:
    """The first ms of the UTC day after the one holding `ts_ms`."""
    return (ts_ms // MS_PER_DAY + 1) * MS_PER_DAY


def week_end(ts_ms: int) -> int:
    """The first ms of the ISO week (Monday 00:00 UTC) after the one holding `ts_ms`."""
    return (7 * (week_index(ts_ms) + 1) - _EPOCH_WEEKDAY_OFFSET) * MS_PER_DAY


def format_utc(ts_ms: int) -> str:
    """ms since the epoch -> "2024-05-02T00:00:00Z" (the proleptic Gregorian calendar, by
    arithmetic: the engine reads no clock and imports no datetime)."""
    days, ms = divmod(ts_ms, MS_PER_DAY)
    z = days + 719_468  # days since 0000-03-01
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    s = ms // 1000
    return f"{year:04d}-{month:02d}-{day:02d}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"


class OwnAccount:
    """One bettor's own limits in one currency, and what they used in the current windows.

    `limits[i]` is limit NAMES[i] in force (None: none); `pending[i]` a raise or removal asked
    for, as (value or None for a removal, effective ts), or None. Usage is kept per window
    (deposited, staked, settled net P&L), reset when a command falls past the window's end;
    `day_since_seq` / `week_since_seq` is the first seq counted in the current window, so a
    cancellation knows whether the order it takes stake from was counted there.
    """

    __slots__ = ("limits", "pending", "limited", "day_end_ms", "week_end_ms", "day_since_seq",
                 "week_since_seq", "deposited_day_minor", "deposited_week_minor",
                 "staked_day_minor", "staked_week_minor", "settled_day_minor",
                 "settled_week_minor", "withdrawing_minor")
    __reduce__ = slot_state  # compiled (self_limits.pxd), pickled as the plain class it was
    __setstate__ = restore_slots

    def __init__(self) -> None:
        self.limits = [None] * len(NAMES)
        self.pending = [None] * len(NAMES)
        self.limited = False  # any limit in force or pending: the order path checks only then
        self.day_end_ms = 0  # first ms after the current day window; 0: nothing recorded yet
        self.week_end_ms = 0
        self.day_since_seq = 0
        self.week_since_seq = 0
        self.deposited_day_minor = 0
        self.deposited_week_minor = 0
        self.staked_day_minor = 0
        self.staked_week_minor = 0
        self.settled_day_minor = 0  # net P&L of markets settled in the window: + won, - lost
        self.settled_week_minor = 0
        self.withdrawing_minor = 0  # pending withdrawals: held, but not at risk

    # -- usage ---------------------------------------------------------------------------------

    def roll(self, ts_ms: int, seq: int) -> None:
        """Start new windows when `ts_ms` is past the current ones (a timestamp before them
        counts toward them: an out-of-order one never gives a fresh allowance)."""
        if ts_ms >= self.day_end_ms:
            self.day_end_ms = day_end(ts_ms)
            self.day_since_seq = seq
            self.deposited_day_minor = self.staked_day_minor = self.settled_day_minor = 0
        if ts_ms >= self.week_end_ms:
            self.week_end_ms = week_end(ts_ms)
            self.week_since_seq = seq
            self.deposited_week_minor = self.staked_week_minor = self.settled_week_minor = 0

    def record_stake(self, stake_minor: int, ts_ms: int, seq: int) -> None:
        self.roll(ts_ms, seq)
        self.staked_day_minor += stake_minor
        self.staked_week_minor += stake_minor

    def give_back(self, placed_seq: int, stake_minor: int, ts_ms: int, seq: int) -> None:
        """Unmatched stake of an order placed at `placed_seq` was cancelled or lapsed."""
        self.roll(ts_ms, seq)
        if placed_seq >= self.day_since_seq:
            self.staked_day_minor -= stake_minor
        if placed_seq >= self.week_since_seq:
            self.staked_week_minor -= stake_minor

    def record_deposit(self, amount_minor: int, ts_ms: int, seq: int) -> None:
        self.roll(ts_ms, seq)
        self.deposited_day_minor += amount_minor
        self.deposited_week_minor += amount_minor

    def record_settled(self, pnl_minor: int, ts_ms: int, seq: int) -> None:
        self.roll(ts_ms, seq)
        self.settled_day_minor += pnl_minor
        self.settled_week_minor += pnl_minor

    def used(self, kind: int, period: int, ts_ms: int) -> int:
        """Deposited, staked or settled P&L (by `kind`) in the `period` window holding ts_ms."""
        if period == DAY:
            if ts_ms >= self.day_end_ms:
                return 0
            values = (self.deposited_day_minor, self.staked_day_minor, self.settled_day_minor)
        else:
            if ts_ms >= self.week_end_ms:
                return 0
            values = (self.deposited_week_minor, self.staked_week_minor, self.settled_week_minor)
        return values[kind]

    def counted(self, placed_seq: int, period: int, ts_ms: int) -> bool:
        """Whether an order placed at `placed_seq` is counted in the window holding ts_ms."""
        if period == DAY:
            return ts_ms < self.day_end_ms and placed_seq >= self.day_since_seq
        return ts_ms < self.week_end_ms and placed_seq >= self.week_since_seq

    # -- limits --------------------------------------------------------------------------------

    def limit_at(self, i: int, ts_ms: int):
        """Limit NAMES[i] in force at ts_ms (a pending raise applies from its effective ts)."""
        pending = self.pending[i]
        if pending is not None and ts_ms >= pending[1]:
            return pending[0]
        return self.limits[i]

    def request(self, wanted: dict, ts_ms: int, cooling_off_ms: int) -> None:
        """Apply a bettor's request: {limit index: value, or None to remove it}."""
        for i in range(len(NAMES)):  # raises that are due become the limits in force
            pending = self.pending[i]
            if pending is not None and ts_ms >= pending[1]:
                self.limits[i] = pending[0]
                self.pending[i] = None
        for i, value in wanted.items():
            current, pending = self.limits[i], self.pending[i]
            if value is not None and (current is None or value <= current):
                self.limits[i] = value  # lowered, or set where there was none: at once
                self.pending[i] = None
            elif value is None and current is None:
                self.pending[i] = None  # nothing to remove
            elif pending is not None and (pending[0] is None
                                          or (value is not None and value <= pending[0])):
                self.pending[i] = (value, pending[1])  # no more than already asked: same time
            else:
                self.pending[i] = (value, ts_ms + cooling_off_ms)
        self.limited = any(limit is not None for limit in self.limits)


class SelfLimits:
    """One bettor's self-exclusion and own accounts (currency -> OwnAccount)."""

    __slots__ = ("excluded_until_ms", "accounts")
    __reduce__ = slot_state
    __setstate__ = restore_slots

    def __init__(self) -> None:
        self.excluded_until_ms = 0
        self.accounts: dict[str, OwnAccount] = {}

    def account(self, currency: str) -> OwnAccount:
        acct = self.accounts.get(currency)
        if acct is None:
            acct = self.accounts[currency] = OwnAccount()
        return acct


# -- the checks: None (allow) or a Denial ------------------------------------------------------


def check_excluded(own: SelfLimits, ts_ms: int) -> Denial | None:
    if ts_ms < own.excluded_until_ms:
        return Denial(Code.SELF_EXCLUDED,
                      f"you are self-excluded until {format_utc(own.excluded_until_ms)}: no "
                      f"orders or deposits until then")
    return None


def _window_end(period: int, ts_ms: int) -> int:
    return day_end(ts_ms) if period == DAY else week_end(ts_ms)


def _pending_note(acct: OwnAccount, i: int, ts_ms: int) -> str:
    pending = acct.pending[i]
    if pending is None or ts_ms >= pending[1]:
        return ""
    what = "removal" if pending[0] is None else f"raise to {format_money(pending[0])}"
    return f"; your {what} takes effect at {format_utc(pending[1])}"


def _denial(acct: OwnAccount, kind: int, period: int, ts_ms: int, what: str, limit: int,
            left: int, detail: str = "") -> Denial:
    i = 2 * kind + period
    return Denial(_CODES[kind],
                  f"{what} would pass your {_PERIOD_NAMES[period]} {_KIND_NAMES[kind]} limit "
                  f"{format_money(limit)}: {format_money(max(left, 0))} left "
                  f"{_PERIOD_NOUNS[period]}{detail}, until "
                  f"{format_utc(_window_end(period, ts_ms))}{_pending_note(acct, i, ts_ms)}")


def check_deposit(acct: OwnAccount, amount_minor: int, ts_ms: int) -> Denial | None:
    for period in (DAY, WEEK):
        limit = acct.limit_at(2 * DEPOSIT + period, ts_ms)
        if limit is None:
            continue
        used = acct.used(DEPOSIT, period, ts_ms)
        if used + amount_minor > limit:
            return _denial(acct, DEPOSIT, period, ts_ms,
                           f"deposit {format_money(amount_minor)}", limit, limit - used)
    return None


def check_stake(acct: OwnAccount, stake_minor: int, ts_ms: int,
                replaced_seq: int = -1, replaced_minor: int = 0) -> Denial | None:
    """`stake_minor` more staked now; for a replace, the order placed at `replaced_seq` gives
    `replaced_minor` back in the windows that counted it."""
    for period in (DAY, WEEK):
        limit = acct.limit_at(2 * STAKE + period, ts_ms)
        if limit is None:
            continue
        used = acct.used(STAKE, period, ts_ms)
        if replaced_minor and acct.counted(replaced_seq, period, ts_ms):
            used -= replaced_minor
        if used + stake_minor > limit:
            return _denial(acct, STAKE, period, ts_ms, f"stake {format_money(stake_minor)}",
                           limit, limit - used)
    return None


def check_loss(acct: OwnAccount, at_risk_minor: int, more_minor: int,
               ts_ms: int) -> Denial | None:
    """An order that puts `more_minor` more at risk, on top of `at_risk_minor` (the worst case
    of every open position in this currency)."""
    for period in (DAY, WEEK):
        limit = acct.limit_at(2 * LOSS + period, ts_ms)
        if limit is None:
            continue
        used = at_risk_minor - acct.used(LOSS, period, ts_ms)
        if used + more_minor > limit:
            return _denial(acct, LOSS, period, ts_ms,
                           f"risking {format_money(more_minor)} more", limit, limit - used,
                           f" ({format_money(-acct.used(LOSS, period, ts_ms))} net loss "
                           f"settled, {format_money(at_risk_minor)} at risk)")
    return None

"""The bettors' own limits at the edge (risk/self_limits.py): the SELFLIMITS view (each limit in
force, the raise pending and when it applies, what is used and left in the current window and
when that resets) and the commands of `selflimits.set` and `selfexclude`, shared by the
WebSocket ops and their HTTP mirrors.

A read shows the limits as the next command would meet them: at the time the sequencer would
stamp on it (its clock, never behind the last command), so a raise whose time has come shows
as in force and a window that has ended shows as reset.
"""

from engine import commands as c
from engine import events as e
from engine.money import format_money
from risk.self_limits import DAY, LOSS, NAMES, day_end, week_end

from .views import order_view


def now_ms(exchange) -> int:
    """The ts the next command would be stamped with."""
    sequencer = exchange.sequencer
    return max(sequencer.clock_ms(), sequencer.last_ts)


def _money(minor: int | None) -> str | None:
    return None if minor is None else format_money(minor)


def view(engine, user: str, currency: str, ts: int) -> dict:
    """SELFLIMITS: the user's own limits in `currency` as they stand at `ts` (never before the
    last command: a clock elsewhere, a gateway's, may be a little behind)."""
    ts = max(ts, engine.last_ts)
    own = engine.self_limits.get(user)
    acct = own.accounts.get(currency) if own is not None else None
    wallet = engine.wallets.get((user, currency))
    at_risk = wallet.held if wallet is not None else 0
    if acct is not None:
        at_risk -= acct.withdrawing_minor
    limits = {}
    for i, name in enumerate(NAMES):
        kind, period = divmod(i, 2)
        limit = acct.limit_at(i, ts) if acct is not None else None
        pending = acct.pending[i] if acct is not None else None
        if pending is not None and ts >= pending[1]:
            pending = None  # in force already
        used = acct.used(kind, period, ts) if acct is not None else 0
        entry = {}
        if kind == LOSS:  # used: the net loss settled in the window and what is at risk
            entry = {"settled_loss": format_money(-used), "at_risk": format_money(at_risk)}
            used = at_risk - used
        limits[name] = {
            "limit": _money(limit), "used": format_money(used),
            "left": None if limit is None else format_money(max(limit - used, 0)),
            "resets_ts": day_end(ts) if period == DAY else week_end(ts),
            "pending": None if pending is None else {"limit": _money(pending[0]),
                                                     "effective_ts": pending[1]},
            **entry,
        }
    excluded = own.excluded_until_ms if own is not None else 0
    return {"currency": currency, "excluded_until": excluded if excluded > ts else None,
            "cooling_off_ms": engine.config.self_limit_cooling_off_ms, "limits": limits}


def set_command(user: str, currency: str, req) -> c.SetSelfLimits:
    """The command for a request carrying the six limits as fields: a value sets, an explicit
    null removes, a field left out stays as it is."""
    given = req.model_fields_set
    return c.SetSelfLimits(
        user=user, currency=currency,
        remove=tuple(name for name in NAMES if name in given and getattr(req, name) is None),
        **{f"{name}_minor": getattr(req, name) for name in NAMES})


def exclude_command(user: str, req) -> c.ExcludeSelf:
    return c.ExcludeSelf(user=user, days=req.days or 0, until_ts=req.until or 0)


def excluded_view(engine, events: list) -> dict:
    """What `selfexclude` did: until when, and the orders it cancelled (ORDERs)."""
    excluded = next(ev for ev in events if isinstance(ev, e.SelfExcluded))
    cancelled = dict.fromkeys(ev.order for ev in events if isinstance(ev, e.OrderCancelled))
    return {"excluded_until": excluded.until_ts,
            "cancelled": [order_view(engine, oid) for oid in cancelled]}

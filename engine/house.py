"""The house as a market maker: trader prices -> margin -> shading -> house orders in the book.

The house is an account like any other: its quotes are ordinary orders, its exposure is a
Position. It is exempt from the funds check but never from its liability caps, and the quotes
are sized so that it cannot be matched past them:

  outcome[s] is the house's P&L if s wins. A house LAY on s (liability q) lowers outcome[s]
  only, so with the old quotes pulled, q_s = cap + matched outcome[s] is exactly what is left.
  House BACKs (stake y on s) lower every other outcome by y; when enabled they get half of the
  smallest remainder, shared equally, and the lays get the rest.
  Matching only ever raises outcomes (a matched bet is never worse than the unmatched worst
  case), so the house's worst case stays within the cap whatever bettors do.

The cap bounds the exact liability, stake * (price - 100) / 100, not only the booked win amount
(floored to the cent, fill by fill): lay stakes round down, and each re-quote also takes off
what that flooring left out of the house's earlier lay fills, rounded up to the cent. So no
quote, fill or re-quote takes the house past its cap by even a fraction of a cent.
"""

from pricing.quotes import apply_margin, house_back_prices, lay_size_for_liability, shade

from . import commands as c
from . import events as e
from .order import Order

HOUSE = "house"


class Quotes:
    """What the trader set on a market, and the house orders currently quoting it."""

    __slots__ = ("fair", "margin_bp", "margined", "offered", "orders", "suspended", "unbooked")

    def __init__(self, selections: int) -> None:
        self.fair: dict[str, int] = {}
        self.margin_bp = 0
        self.margined: dict[str, int] = {}  # fair odds with the margin, before shading
        self.offered: list[int] = [0] * selections  # after margin and shading; 0 = none
        self.orders: list[list[str]] = [[] for _ in range(selections)]  # house order ids
        self.suspended = [False] * selections  # risk stopped quoting this selection
        # per selection, hundredths of a minor unit: what flooring left out of the booked
        # liability of house lays already pulled from the book (see `unbooked_hundredths`)
        self.unbooked = [0] * selections

    def __setstate__(self, state: tuple) -> None:
        # a snapshot from before `unbooked` was kept: what rounding left out then is unknown
        self.unbooked = [0] * len(state[1]["offered"])
        for name, value in state[1].items():
            setattr(self, name, value)


def caps(engine, m) -> int:
    """The house's liability cap for one outcome of market `m`."""
    limits = m.limits
    candidates = [engine.config.house_default_liability_minor]
    if limits is not None:
        if limits.max_liability_minor is not None:
            candidates[0] = limits.max_liability_minor
        if limits.selection_max_liability_minor is not None:
            candidates.append(limits.selection_max_liability_minor)
    return min(candidates)


def matched_outcomes(pos, n: int) -> list[int]:
    """House P&L per winning selection from matched bets only."""
    if pos is None:
        return [0] * n
    base = sum(pos.lose)
    return [pos.win[s] - pos.lose[s] + base for s in range(n)]


def unbooked_hundredths(o) -> int:
    """A house LAY's exact matched liability less its booked win amounts (each fill's floored
    to the cent), in hundredths of a minor unit: sum(size * (price - 100)) - 100 * sum(win)."""
    return o.matched_value - 100 * o.matched - 100 * o.matched_win


def unbooked_liability(engine, q, s: int) -> int:
    """What flooring left out of the house's booked liability on selection `s`, in minor units
    rounded up: from lays already pulled and from those still quoting."""
    hundredths = q.unbooked[s]
    for oid in q.orders[s]:
        o = engine.orders[oid]
        if not o.is_back:
            hundredths += unbooked_hundredths(o)
    return -(-hundredths // 100)


def set_prices(engine, m, fair: dict[str, int], margin_bp: int) -> None:
    q = m.quotes
    if q is None:
        q = m.quotes = Quotes(len(m.selection_ids))
    q.fair = dict(fair)
    q.margin_bp = margin_bp
    q.margined = apply_margin(fair, margin_bp)
    q.suspended = [False] * len(m.selection_ids)
    requote(engine, m, range(len(m.selection_ids)))


def requote(engine, m, selections) -> None:
    """Pull the house's quotes on `selections` and post fresh ones, shaded, within the cap.

    Only running selections with a price are quoted: a non-runner never again, and after a
    material one (Engine._remove_selection) none until the trader sets prices again."""
    q = m.quotes
    n = len(m.selection_ids)
    removed = m.removed
    selections = [s for s in selections if s not in removed]
    for s in selections:
        for oid in q.orders[s]:
            o = engine.orders[oid]
            if o.remaining:
                engine._take_off(m, o, o.remaining, "requoted", lapse=False)
            if not o.is_back:
                q.unbooked[s] += unbooked_hundredths(o)  # final: a pulled order fills no more
        q.orders[s] = []
    margined = q.margined
    cap = caps(engine, m)
    outcomes = matched_outcomes(m.positions.get(HOUSE), n)
    budget = [cap + outcomes[s] - unbooked_liability(engine, q, s) for s in range(n)]
    running = m.running()
    backs: dict[str, int] = {}
    back_stake = 0
    if engine.config.house_back_ticks and len(running) > 1 and margined:
        backs = house_back_prices(margined, engine.config.house_back_ticks)
        back_stake = max(0, min(budget[s] for s in running)) // 2 // (len(running) - 1)
    reserved = back_stake * (len(running) - 1)
    for s in selections:
        sid = m.selection_ids[s]
        if sid not in margined:  # no price to quote until the trader sets one
            q.offered[s] = 0
            continue
        loss = -outcomes[s] if outcomes[s] < 0 else 0
        price = shade(margined[sid], loss, cap, engine.config.shading_thresholds)
        size = 0
        if price is not None:
            size = lay_size_for_liability(budget[s] - reserved, price)
        if size <= 0:  # at the cap, or too close to it for even a one-cent quote
            q.offered[s] = 0
            if not q.suspended[s]:
                q.suspended[s] = True
                engine._emit(e.SelectionSuspended(seq=engine._seq, ts=engine._ts, market=m.id,
                                                  selection=sid, house_liability_minor=loss))
            continue
        q.offered[s] = price
        q.orders[s].append(_post(engine, m, s, False, price, size))
        if back_stake > 0 and sid in backs:
            q.orders[s].append(_post(engine, m, s, True, backs[sid], back_stake))


def _post(engine, m, s: int, is_back: bool, price: int, size: int) -> str:
    """Enter one house order through the same path as anyone's (matching included)."""
    wallet = engine.wallet(HOUSE, m.currency)
    pos = m.position(HOUSE, wallet)
    oid = f"o{engine._seq}.{engine._house_order_count}"
    engine._house_order_count += 1
    o = Order(oid, HOUSE, m.id, m.selection_ids[s], s, is_back, price, size, c.PERSIST, c.GTC, 0,
              "", engine._seq, pos, wallet)
    engine._register(m, o)
    engine._admit(m, o, delayed=False)
    return oid


def after_house_matched(engine, m) -> None:
    """Shading: a fill against the house moved its liability; re-price where the tick changed.

    Every selection is checked: a bettor laying into a house BACK on one selection raises the
    house's loss on all the others.
    """
    q = m.quotes
    if q is None:
        return
    cap = caps(engine, m)
    outcomes = matched_outcomes(m.positions.get(HOUSE), len(m.selection_ids))
    stale = []
    for s, sid in enumerate(m.selection_ids):
        if q.suspended[s] or s in m.removed or sid not in q.margined:
            continue
        loss = -outcomes[s] if outcomes[s] < 0 else 0
        if shade(q.margined[sid], loss, cap, engine.config.shading_thresholds) != q.offered[s]:
            stale.append(s)
    if stale:
        # house backs share one budget across selections, so with them on, re-price them all
        requote(engine, m, range(len(m.selection_ids)) if engine.config.house_back_ticks
                else stale)

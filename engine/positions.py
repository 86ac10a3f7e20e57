"""A bettor's own position on a market, read-only: P&L per outcome and the cash-out quote.

Pure-Python helpers over engine state (not compiled, never mutating). For an exchange market a
user's `Position` (engine/exposure.py) keeps, per selection k, `win[k]` / `lose[k]`: the matched
P&L of the bets on k if k wins / loses. So, matched only,

    if_win[k] = sum(lose) + win[k] - lose[k]                 (what settlement pays if k wins)

and with the worst case of the unmatched orders, `edge[k] + const` (the figure the hold is
taken from).

Cash out ("green up") hedges each selection on its own: d[k] = win[k] - lose[k] is how much
better the position does when k wins than when it loses. A lay of x at p on k lowers d[k] by
x + win_amount(x, p) = floor(x * p / 100); a back raises it by the same. Trading each d[k] to
(about) zero makes every outcome pay sum(lose): the same whatever wins. A fraction f trades only
f * |d[k]|. The stake is found by walking the book exactly as matching will (best price first,
FIFO within a price, each maker filled in turn with its own rounded win amount), skipping the
user's own resting orders, which a cash out cancels first; so the P&L a quote shows is, to the
minor unit, what executing it leaves on the state it was computed from.

A removed selection (a non-runner) is no outcome: its bets are void and it is left out of every
figure here, which therefore lists the running selections only, in market order.
"""

from dataclasses import dataclass

from .commands import BACK, LAY, POOL
from .market import FINAL
from .rejections import Code, Rejected


@dataclass(frozen=True, slots=True)
class Leg:
    """One hedging order: a FOK `side` on `selection` for `size_minor` at limit `price` (the
    worst price it reaches), and the (price, size) fills it gets, best first, one per maker."""

    selection: str
    sel: int
    side: str
    price: int
    size_minor: int
    fills: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Quote:
    legs: tuple[Leg, ...]
    cancels: tuple[str, ...]  # the user's unmatched orders on the market, cancelled first
    pnl_before: tuple[int, ...]  # matched P&L per running selection now
    pnl_after: tuple[int, ...]  # matched P&L per running selection once the legs are matched


def exchange_market(engine, market_id: str):
    """The market, if P&L and cash out apply to it; else Rejected with a stable code."""
    m = engine.markets.get(market_id)
    if m is None:
        raise Rejected(Code.UNKNOWN_MARKET, f"no market {market_id!r}")
    if m.type == POOL:
        raise Rejected(Code.BAD_REQUEST,
                       "a pool market pays out of the pool: it has no fixed P&L per outcome")
    if m.status in FINAL:
        raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is {m.status.lower()}")
    return m


def matched_pnl(win: list, lose: list) -> list[int]:
    base = sum(lose)
    return [base + w - lo for w, lo in zip(win, lose)]


def pnl(engine, market_id: str, user: str) -> tuple[list[int], list[int]]:
    """(matched P&L per running selection, the same with the worst case of unmatched orders)."""
    m = exchange_market(engine, market_id)
    running = m.running()
    pos = m.positions.get(user)
    if pos is None:
        zeros = [0] * len(running)
        return zeros, zeros[:]
    matched = matched_pnl(pos.win, pos.lose)
    return [matched[s] for s in running], [pos.edge[s] + pos.const for s in running]


def hedge(m, user: str, sel: int, win: int, lose: int, num: int, den: int) -> Leg | None:
    """The order that trades num/den of selection `sel`'s d = win - lose towards zero against
    its book now (the user's own resting orders skipped), or None when there is nothing to
    trade or nothing to trade with."""
    d = win - lose
    target = abs(d) * num // den
    if target <= 0:
        return None
    is_back = d < 0  # a position that does better when `sel` loses is hedged by backing it
    book = m.books[sel]
    half = book.lays if is_back else book.backs  # a back takes resting lays, best = highest
    prices = reversed(half.levels) if is_back else iter(half.levels)
    fills: list[tuple[int, int]] = []
    size = 0
    price = 0
    for p in prices:
        for o in half.levels[p].orders:
            if not o.remaining or o.user == user:
                continue
            # the largest x with floor(x * p / 100) <= target: never past flat
            x = min(o.remaining, (100 * (target + 1) - 1) // p)
            if x <= 0:
                break
            target -= x * p // 100
            fills.append((p, x))
            size += x
            price = p
            if x < o.remaining:
                break  # this maker is not used up: matching goes no further either
        else:
            continue
        break
    if not size:
        return None
    return Leg(m.selection_ids[sel], sel, BACK if is_back else LAY, price, size, tuple(fills))


def cashout_quote(engine, market_id: str, user: str, num: int = 1, den: int = 1) -> Quote:
    """The legs that cash out num/den of `user`'s matched position on the market at the current
    prices, and the matched P&L per selection they leave. Raises Rejected for a market cash out
    does not apply to; an empty position (or an empty book) gives no legs."""
    if den <= 0 or not 0 < num <= den:
        raise Rejected(Code.BAD_REQUEST, "the fraction must be in (0, 1]")
    m = exchange_market(engine, market_id)
    pos = m.positions.get(user)
    running = m.running()
    if pos is None:
        return Quote((), (), (0,) * len(running), (0,) * len(running))
    win, lose = pos.win[:], pos.lose[:]
    before = matched_pnl(win, lose)
    legs = []
    for sel in running:
        leg = hedge(m, user, sel, win[sel], lose[sel], num, den)
        if leg is None:
            continue
        legs.append(leg)
        for p, x in leg.fills:  # as Position.fill does for the taker, fill by fill
            w = x * (p - 100) // 100
            if leg.side == BACK:
                win[sel] += w
                lose[sel] -= x
            else:
                win[sel] -= w
                lose[sel] += x
    cancels = tuple(o.id for o in m.open_orders.values() if o.user == user)
    after = matched_pnl(win, lose)
    return Quote(tuple(legs), cancels, tuple(before[s] for s in running),
                 tuple(after[s] for s in running))

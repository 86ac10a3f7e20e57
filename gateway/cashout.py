"""Cash out: the `cashout.quote` reply and the steps of a `cashout`.

The quote is engine/positions.py's `cashout_quote`, every leg checked with the engine's own
pre-trade checks (`Engine.preview`), so a quote that would be refused says why now. Executing
is one sequencer group (`Exchange.submit_group`): first the user's unmatched orders on the
market are cancelled, then one FOK order per selection; every step's prepare recomputes its leg
against the very state it meets and refuses it (`CASHOUT_MOVED`) if its price is worse than the
quoted one by more than the tolerance. The first step checks every leg before anything
happens, so a cash out the book no longer allows changes nothing.
"""

from engine import commands as c
from engine.money import format_money, format_odds
from engine.positions import Leg, Quote, cashout_quote, hedge
from engine.rejections import Code, Rejected
from pricing.ladder import INDEX

from .views import format_factor, running_ids


class CashoutError(Exception):
    """A cash out (or a leg of one) that cannot go ahead: code and message for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def leg_command(user: str, market: str, leg: Leg) -> c.PlaceOrder:
    return c.PlaceOrder(user=user, market=market, selection=leg.selection, side=leg.side,
                        price=leg.price, size_minor=leg.size_minor, tif=c.FOK)


def quote(engine, user: str, market: str, fraction: tuple[int, int]) -> Quote:
    """The quote, or CashoutError: the market does not allow it, or a leg would be refused."""
    try:
        q = cashout_quote(engine, market, user, *fraction)
    except Rejected as r:
        raise CashoutError(r.code, r.reason) from None
    for leg in q.legs:
        check = engine.preview(leg_command(user, market, leg))
        if check.code is not None and check.code != Code.FOK_NOT_FILLED:
            # FOK_NOT_FILLED cannot happen once the user's own orders are cancelled: each leg
            # is sized from what others offer
            raise CashoutError(check.code, f"{leg.selection}: {check.reason}")
    return q


def off_ladder(prices: dict[str, int] | None) -> str | None:
    """The first quoted price that is not on the odds ladder (INVALID_ODDS), else None."""
    for price in (prices or {}).values():
        if price not in INDEX:
            return f"{format_odds(price)} is not on the odds ladder"
    return None


def moved(leg: Leg, prices: dict[str, int] | None, tolerance: int) -> str | None:
    """Why `leg` is outside what the bettor accepted (None when it is within): its price is
    more than `tolerance` ladder ticks worse than the quoted price of its selection."""
    if prices is None:
        return None
    quoted = prices.get(leg.selection)
    if quoted is None:
        return f"{leg.selection} now needs an order the quote did not show"
    # a back wants high odds, a lay low ones
    worse = (INDEX[quoted] - INDEX[leg.price] if leg.side == c.BACK
             else INDEX[leg.price] - INDEX[quoted])
    if worse > tolerance:
        return (f"{leg.selection}: {leg.side} at {format_odds(leg.price)} now, quoted "
                f"{format_odds(quoted)}: {worse} ticks worse, tolerance {tolerance}")
    return None


def leg_now(engine, user: str, market: str, sel: int, fraction: tuple[int, int]) -> Leg | None:
    """Selection `sel`'s leg against the state now (its hedge does not depend on other legs)."""
    m = engine.markets[market]
    pos = m.positions.get(user)
    if pos is None:
        return None
    return hedge(m, user, sel, pos.win[sel], pos.lose[sel], *fraction)


def quote_view(engine, market: str, fraction: tuple[int, int], q: Quote) -> dict:
    ids = running_ids(engine.markets[market])
    return {
        "op": "cashout.quote", "market": market, "fraction": format_factor(fraction),
        "orders": [{"selection": leg.selection, "side": leg.side,
                    "price": format_odds(leg.price), "size": format_money(leg.size_minor),
                    "fills": [[format_odds(p), format_money(x)] for p, x in _by_price(leg)]}
                   for leg in q.legs],
        "cancels": list(q.cancels),
        "selections": [{"id": sid, "if_win": format_money(q.pnl_before[i]),
                        "if_win_after": format_money(q.pnl_after[i])}
                       for i, sid in enumerate(ids)],
        "locked": format_money(min(q.pnl_after)),
    }


def _by_price(leg: Leg) -> list[tuple[int, int]]:
    merged: dict[int, int] = {}
    for price, size in leg.fills:
        merged[price] = merged.get(price, 0) + size
    return list(merged.items())

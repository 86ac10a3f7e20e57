"""Server-side bet slips: legs priced against the current books, re-pushed when they change.

A leg's `price` is the best price at which its whole stake can be matched now (walking the
published levels best first); `available` is what is offered at that price or better.
"""

from engine.money import format_money, format_odds, win_amount

OK = "OK"
PRICE_CHANGED = "PRICE_CHANGED"
SUSPENDED = "SUSPENDED"
INSUFFICIENT_LIQUIDITY = "INSUFFICIENT_LIQUIDITY"
CLOSED = "CLOSED"


class Leg:
    __slots__ = ("market", "selection", "side", "stake", "price", "view")

    def __init__(self, market: str, selection: str, side: str, stake: int) -> None:
        self.market = market
        self.selection = selection
        self.side = side
        self.stake = stake
        self.price = 0  # the price shown in the last push (0: none)
        self.view: dict | None = None


class Slip:
    __slots__ = ("legs",)

    def __init__(self, legs: list[Leg]) -> None:
        self.legs = legs

    def markets(self) -> set[str]:
        return {leg.market for leg in self.legs}


def fill_price(levels: list[tuple[int, int]], stake: int) -> tuple[int, int]:
    """(worst price needed to match `stake` from best-first levels, size available up to it);
    price 0 when the levels do not hold the whole stake."""
    got = 0
    for price, size in levels:
        got += size
        if got >= stake:
            return price, got
    return 0, got


def _levels(leg: Leg, state: dict) -> list[tuple[int, int]] | None:
    """The best-first levels this leg would take (resting lays for a back), None if unknown or
    removed (a non-runner)."""
    selection = next((s for s in state["selections"] if s["id"] == leg.selection), None)
    if selection is None or selection["removed"] is not None:
        return None
    return selection["to_back" if leg.side == "back" else "to_lay"]


def fills_exactly(leg: Leg, state: dict) -> bool:
    """Whether the whole stake would match at the price shown and no other: the best price
    offered is the shown one (not better, not worse) and holds the whole stake."""
    levels = _levels(leg, state)
    return bool(levels) and levels[0][0] == leg.price and levels[0][1] >= leg.stake


def price_leg(leg: Leg, state: dict | None) -> tuple[dict, int]:
    """The LEG view and its price (0 when none), against a published market state."""
    view = {"market": leg.market, "selection": leg.selection, "side": leg.side,
            "stake": format_money(leg.stake), "price": None, "available": "0.00",
            "potential_return": None}
    if state is None or state["status"] in ("CLOSED", "SETTLED", "VOIDED", "INACTIVE"):
        view["status"] = CLOSED
        return view, 0
    levels = _levels(leg, state)
    if levels is None:
        view["status"] = CLOSED
        return view, 0
    price, available = fill_price(levels, leg.stake)
    view["available"] = format_money(available)
    if price:
        view["price"] = format_odds(price)
        view["potential_return"] = format_money(leg.stake + win_amount(leg.stake, price))
    if state["status"] == "SUSPENDED":
        view["status"] = SUSPENDED
    elif not price:
        view["status"] = INSUFFICIENT_LIQUIDITY
    elif leg.price and price != leg.price:
        view["status"] = PRICE_CHANGED
    else:
        view["status"] = OK
    return view, price


def reprice(slip: Slip, states: dict[str, dict | None]) -> list[dict] | None:
    """Re-price every leg; the LEG list if any leg changed since the last push, else None."""
    changed = False
    views = []
    for leg in slip.legs:
        view, price = price_leg(leg, states.get(leg.market))
        if view != leg.view:
            changed = True
        leg.view = view
        if price:
            leg.price = price
        views.append(view)
    return views if changed else None

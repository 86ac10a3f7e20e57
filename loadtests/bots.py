"""What the bots decide, without any I/O: which request to send next, and what a reply means.

Kept apart from Locust and gevent so it can be tested (and reasoned about) on its own: every
decision is a function of a `random.Random`, what the bot has seen (market views, its open
orders, its wallet) and its profile. `classify` is the rule that makes "zero failures" mean
zero protocol or transport failures: a business rejection of a well-formed request in a live
market is a success, reported under a name that carries its code.
"""

import random
from dataclasses import dataclass

from pricing.ladder import INDEX, MAX_PRICE, MIN_PRICE, next_tick, prev_tick, round_down

from .book import MarketView, from_hundredths, hundredths
from .world import MARKET_MIN_STAKE, Profile

# Rejections a correct client meets in a live market: they say "no" about money, limits,
# prices or market state, never "you spoke the protocol wrong".
BUSINESS_CODES = frozenset({
    "INSUFFICIENT_FUNDS", "FOK_NOT_FILLED", "PRICE_CHANGED", "MARKET_SUSPENDED",
    "LIABILITY_LIMIT", "STAKE_TOO_LOW", "STAKE_TOO_HIGH", "LIMIT_EXCEEDED", "RATE_LIMITED",
})
# Per op, codes that are races a client cannot avoid: a replace of an order that filled
# completely after the client last heard of it ("nothing left to replace").
RACE_CODES = {"replace": frozenset({"INVALID_SIZE"})}

# odds the bots stay within when they rest orders away from the best price
PRICE_FLOOR = 105
PRICE_CEILING = 5000


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str  # the Locust request name: the op, plus " [CODE]" for a business rejection
    failure: str | None = None  # set for protocol/transport failures only


def classify(op: str, reply: dict, label: str | None = None) -> Outcome:
    """The Locust outcome of one reply to request `op` (reported as `label`, default the op)."""
    name = label or op
    if reply.get("op") == "error":
        code = str(reply.get("code"))
        if code in BUSINESS_CODES or code in RACE_CODES.get(op, ()):
            return Outcome(f"{name} [{code}]")
        return Outcome(f"{name} [{code}]", f"{code}: {reply.get('message', '')}")
    if op == "slip.place":
        codes = [r["error"].get("code") for r in reply.get("results", ()) if "error" in r]
        bad = [c for c in codes if c not in BUSINESS_CODES]
        if bad:
            return Outcome(f"{name} [{bad[0]}]", f"slip leg rejected with {bad[0]}")
        return Outcome(f"{name} [{codes[0]}]" if codes else name)
    return Outcome(name)


def money(minor: int) -> str:
    return from_hundredths(minor)


def clamp_price(price: int | None) -> int | None:
    if price is None:
        return None
    return min(max(price, PRICE_FLOOR), PRICE_CEILING)


def _tick(price: int, ticks: int) -> int:
    """`ticks` steps along the ladder (negative: down), staying on it; an off-ladder price
    (an average of fills) first snaps down onto it."""
    if price not in INDEX:
        price = round_down(price) or MIN_PRICE
    moved = next_tick(price, ticks) if ticks >= 0 else prev_tick(price, -ticks)
    if moved is None:
        return MIN_PRICE if ticks < 0 else MAX_PRICE
    return moved


# -- bettors ----------------------------------------------------------------------------------


class Bettor:
    """One bettor's view of the world and its choices, by profile."""

    def __init__(self, profile: Profile, markets: list[str], rng: random.Random) -> None:
        self.profile = profile
        self.markets = markets
        self.rng = rng
        self.views: dict[str, MarketView] = {m: MarketView(m) for m in markets}
        self.open: dict[str, dict] = {}  # order id -> ORDER, while something remains
        self.available_minor: int | None = None
        self.hedge: tuple[str, str, int, int] | None = None  # scalper: (market, sel, price, size)
        self.resubscribe: set[str] = set()

    # -- what the bot hears -------------------------------------------------------------------

    def on_push(self, msg: dict) -> bool:
        """Take one push in; True if it revealed a gap in a market's seq."""
        op = msg.get("op")
        if op == "mkt":
            view = self.views.get(msg.get("market"))
            if view is not None and not view.apply(msg):
                self.resubscribe.add(view.market)
                return True
        elif op == "ord":
            self.track(msg["order"])
        elif op == "wallet":
            self.available_minor = hundredths(msg["available"])
        return False

    def track(self, order: dict) -> None:
        if order.get("remaining", "0.00") != "0.00":
            self.open[order["order"]] = order
        else:
            self.open.pop(order["order"], None)

    def on_reply(self, op: str, reply: dict) -> None:
        kind = reply.get("op")
        if kind == "placed":
            order = reply["order"]
            self.track(order)
            if (self.profile.name == "scalper" and order["side"] == "back"
                    and order["matched"] != "0.00"):
                self.hedge = (order["market"], order["selection"],
                              hundredths(order["avg_price_matched"]), hundredths(order["matched"]))
        elif kind == "cancelled":
            self.track(reply["order"])
        elif kind == "replaced":
            self.track(reply["cancelled"])
            self.track(reply["order"])
        elif kind == "cancelled_all":
            for order in reply["orders"]:
                self.track(order)
        elif kind == "orders":  # the whole truth: forget what a dropped connection missed
            self.open = {}
            for order in reply["orders"]:
                self.track(order)
        elif kind == "wallet":
            self.available_minor = hundredths(reply["available"])
        elif kind == "subscribed":
            for market in reply.get("markets", ()):
                self.resubscribe.discard(market)

    # -- what the bot does next ---------------------------------------------------------------

    def stake_minor(self) -> int:
        p = self.profile
        low, high = p.large_stakes if self.rng.randrange(100) < p.large_share_pct \
            else p.small_stakes
        whole = self.rng.randint(low, high)
        cents = self.rng.choice((0, 0, 0, 50, 25))
        return max(whole * 100 + cents, hundredths(MARKET_MIN_STAKE))

    def _trusted(self) -> list[MarketView]:
        return [v for v in self.views.values() if v.trusted and v.status == "OPEN"
                and v.selections]

    def place(self) -> dict | None:
        """The next `place` request, or None when nothing is priced yet."""
        if self.hedge is not None:
            market, selection, price, size = self.hedge
            self.hedge = None
            # green up: lay what was backed a tick or two lower (rests until a backer comes)
            return self._order(market, selection, "lay", _tick(price, -self.rng.randint(1, 2)),
                               size)
        views = self._trusted()
        if not views:
            return None
        view = self.rng.choice(views)
        name = self.profile.name
        if name in ("favourite", "scalper"):
            sel = view.favourite() if name == "favourite" else \
                self.rng.choice(list(view.selections.values()))
            if sel is None or sel.best_to_back() is None:
                return None
            req = self._order(view.market, sel.id, "back", sel.best_to_back(), self.stake_minor())
            if name == "favourite" and self.rng.random() < 0.5:
                req["tif"] = "fok"
                if self.rng.random() < 0.5:
                    req["min_fill"] = money(max(hundredths(req["size"]) // 2,
                                                hundredths(MARKET_MIN_STAKE)))
            return req
        sel = self.rng.choice(list(view.selections.values()))
        side = "back" if self.rng.random() < 0.75 else "lay"
        best = sel.best_to_back() if side == "back" else sel.best_to_lay()
        anchor = best or sel.ltp or (sel.best_to_lay() if side == "back" else sel.best_to_back())
        if anchor is None:
            return None
        if best is not None and self.rng.random() < 0.5:
            price = best  # take what is on offer
        else:
            # ask for a little more than is on offer: rests in the book
            ticks = self.rng.randint(1, 3)
            price = _tick(anchor, ticks if side == "back" else -ticks)
        req = self._order(view.market, sel.id, side, price, self.stake_minor())
        if best is not None and price == best and self.rng.random() < 0.2:
            req["tif"] = "fok"
        elif self.rng.random() < 0.3:
            req["persistence"] = "persist"
        return req

    def _order(self, market: str, selection: str, side: str, price: int, size: int) -> dict:
        return {"op": "place", "market": market, "selection": selection, "side": side,
                "price": from_hundredths(clamp_price(price)), "size": money(size)}

    def preview(self) -> dict | None:
        req = self.place()
        if req is None:
            return None
        req["op"] = "preview"
        return req

    def cancel(self) -> dict | None:
        if not self.open:
            return None
        order = self.open[self.rng.choice(list(self.open))]
        req = {"op": "cancel", "order": order["order"]}
        remaining = hundredths(order["remaining"])
        if remaining >= 200 and self.rng.random() < 0.3:
            req["size_reduction"] = money(remaining // 2)
        return req

    def replace(self) -> dict | None:
        if not self.open:
            return None
        order = self.open[self.rng.choice(list(self.open))]
        price = hundredths(order["price"])
        ticks = self.rng.choice((-2, -1, 1, 2))
        new_price = clamp_price(_tick(price, ticks))
        if new_price == price:
            return None
        return {"op": "replace", "order": order["order"], "price": from_hundredths(new_price)}

    def cancel_all(self) -> dict:
        req: dict = {"op": "cancel_all"}
        if self.rng.random() < 0.5:
            req["market"] = self.rng.choice(self.markets)
        return req

    def short_of_money(self) -> bool:
        """Most of the wallet is tied up in resting orders: time to cancel some."""
        return self.available_minor is not None and self.available_minor < 2_000 \
            and bool(self.open)

    def slip(self) -> dict | None:
        views = self._trusted()
        if not views:
            return None
        legs = []
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            view = self.rng.choice(views)
            sel = self.rng.choice(list(view.selections.values()))
            side = "back" if self.rng.random() < 0.85 else "lay"
            legs.append({"market": view.market, "selection": sel.id, "side": side,
                         "stake": money(self.stake_minor())})
        return {"op": "slip.set", "legs": legs}

    def accept(self) -> str:
        return self.rng.choices(("exact", "better", "any"), weights=(4, 3, 3))[0]


# -- traders ----------------------------------------------------------------------------------


class Trader:
    """Moves its markets' fair prices in small random walks, changes limits, suspends."""

    def __init__(self, fair: dict[str, dict[str, int]], rng: random.Random) -> None:
        self.fair = {m: dict(prices) for m, prices in fair.items()}
        self.rng = rng

    def prices(self) -> dict | None:
        if not self.fair:
            return None
        market = self.rng.choice(list(self.fair))
        prices = self.fair[market]
        for sid in self.rng.sample(list(prices), k=self.rng.randint(1, len(prices))):
            moved = _tick(prices[sid], self.rng.choice((-2, -1, 1, 2)))
            prices[sid] = min(max(moved, 120), 2000)
        margin = self.rng.choice(("0.03", "0.05", "0.05", "0.08"))
        return {"op": "prices.set", "market": market, "margin": margin,
                "prices": {sid: from_hundredths(p) for sid, p in prices.items()}}

    def limits(self) -> dict | None:
        if not self.fair:
            return None
        return {"op": "limits.set", "market": self.rng.choice(list(self.fair)),
                "max_liability": money(self.rng.choice((20_000, 40_000, 50_000, 80_000)) * 100),
                "min_stake": MARKET_MIN_STAKE,
                "max_stake": money(self.rng.choice((500, 1000, 1000, 1500)) * 100)}

    def market(self) -> str | None:
        return self.rng.choice(list(self.fair)) if self.fair else None

"""Shared helpers for the engine specification tests (tests/test_engine_*.py).

`Driver` wraps an `Engine`: it stamps every command with a strictly increasing `seq` and a
non-decreasing `ts`, keeps the command log (for replay), and after every command calls
`Engine.validate()` and re-checks the ledger invariants independently. `state_fingerprint`
captures everything a command could change, so "a rejection changes nothing" is one equality.
"""

import dataclasses
from collections import defaultdict, deque

from engine import commands as c
from engine import events as e
from engine.config import EngineConfig
from engine.engine import COMMISSION, EXTERNAL, HOUSE, Engine
from engine.market import FINAL

CUR = "BDT"
T0 = 1_700_000_000_000  # ms since the epoch; any fixed start will do
# tests fire many orders at one timestamp; velocity has its own tests (test_engine_risk.py)
NO_VELOCITY = EngineConfig(velocity_orders_max=0)


class Driver:
    """Feeds commands to one Engine the way the sequencer does."""

    def __init__(self, start_ts: int = T0, config: EngineConfig = NO_VELOCITY) -> None:
        self.eng = Engine(config)
        self.seq = 0
        self.ts = start_ts
        self.log: list[c.Command] = []
        self.event_log: list[list[e.Event]] = []

    # -- time and sequence ------------------------------------------------------------------

    def advance(self, ms: int) -> None:
        assert ms >= 0, "time never goes backwards"
        self.ts += ms

    @property
    def next_order_id(self) -> str:
        """The id the next accepted PlaceOrder/ReplaceOrder will create."""
        return f"o{self.seq + 1}"

    def __call__(self, cmd_type: type[c.Command], **fields) -> list[e.Event]:
        self.seq += 1
        cmd = cmd_type(seq=self.seq, ts=self.ts, **fields)
        events = self.eng.apply(cmd)
        self.log.append(cmd)
        self.event_log.append(list(events))  # a copy: callers may extend theirs
        for ev in events:
            assert (ev.seq, ev.ts) == (cmd.seq, cmd.ts), f"{ev} not stamped with its command"
        self.eng.validate()
        check_invariants(self.eng, events)
        return events

    # -- conveniences -----------------------------------------------------------------------

    def deposit(self, user: str, amount_minor: int, ref: str | None = None,
                currency: str = CUR) -> list[e.Event]:
        return self(c.Deposit, user=user, currency=currency, amount_minor=amount_minor,
                    ref=ref or f"dep-{user}-{self.seq + 1}")

    def create_market(self, market: str = "m1", selections=("s1", "s2", "s3"),
                      open: bool = True, **fields) -> list[e.Event]:
        events = self(c.CreateMarket, market=market, event="e1", name=f"Market {market}",
                      selections=tuple((s, s.upper()) for s in selections), **fields)
        assert not rejection(events), events
        if open:
            events = events + self.status(market, "open")
        return events

    def status(self, market: str = "m1", status: str | None = None, **fields) -> list[e.Event]:
        return self(c.SetMarketStatus, market=market, status=status, **fields)

    def place(self, user: str, side: str, price: int, size_minor: int, selection: str = "s1",
              market: str = "m1", **fields) -> list[e.Event]:
        return self(c.PlaceOrder, user=user, market=market, selection=selection, side=side,
                    price=price, size_minor=size_minor, **fields)

    def back(self, user: str, price: int, size_minor: int, selection: str = "s1",
             market: str = "m1", **fields) -> list[e.Event]:
        return self.place(user, c.BACK, price, size_minor, selection, market, **fields)

    def lay(self, user: str, price: int, size_minor: int, selection: str = "s1",
            market: str = "m1", **fields) -> list[e.Event]:
        return self.place(user, c.LAY, price, size_minor, selection, market, **fields)

    def cancel(self, user: str, order: str, size_reduction_minor: int = 0) -> list[e.Event]:
        return self(c.CancelOrder, user=user, order=order,
                    size_reduction_minor=size_reduction_minor)

    def tick(self) -> list[e.Event]:
        return self(c.Tick)

    def remove(self, selection: str, reduction_bp: int = 0, market: str = "m1") -> list[e.Event]:
        return self(c.RemoveSelection, market=market, selection=selection,
                    reduction_bp=reduction_bp)

    def settle(self, market: str = "m1", winners=("s1",), dead_heat=()) -> list[e.Event]:
        return self(c.SettleMarket, market=market, winners=tuple(winners),
                    dead_heat=tuple(dead_heat))

    # -- reading state ----------------------------------------------------------------------

    def wallet(self, user: str, currency: str = CUR):
        return self.eng.wallets[(user, currency)]

    def balance(self, user: str, currency: str = CUR) -> int:
        w = self.eng.wallets.get((user, currency))
        return w.balance if w is not None else 0

    def held(self, user: str, currency: str = CUR) -> int:
        w = self.eng.wallets.get((user, currency))
        return w.held if w is not None else 0

    def available(self, user: str, currency: str = CUR) -> int:
        return self.balance(user, currency) - self.held(user, currency)

    def order(self, oid: str):
        return self.eng.orders[oid]

    def book(self, selection: str = "s1", market: str = "m1"):
        m = self.eng.markets[market]
        return m.books[m.index[selection]]

    def hold(self, user: str, market: str = "m1") -> int:
        pos = self.eng.markets[market].positions.get(user)
        return pos.hold if pos is not None else 0


def two_backers_two_layers(start_minor: int) -> Driver:
    """Backers b1, b2 and layers l1, l2, each funded with `start_minor`, and an open market m1
    of selections s1, s2, s3."""
    d = Driver()
    for u in ("b1", "b2", "l1", "l2"):
        d.deposit(u, start_minor)
    d.create_market("m1", ("s1", "s2", "s3"))
    return d


def matched_bet(d: Driver, backer: str, layer: str, price: int, size: int,
                selection: str = "s1", market: str = "m1") -> tuple[str, str]:
    """(back order, lay order) of one bet of `size` at `price`: `layer` offers, `backer` takes."""
    lay = accepted(d.lay(layer, price, size, selection=selection, market=market))
    back = accepted(d.back(backer, price, size, selection=selection, market=market))
    assert d.order(back).matched == size
    return back, lay


# -- reading events ---------------------------------------------------------------------------


def of_type(events: list[e.Event], event_type: type) -> list:
    return [ev for ev in events if isinstance(ev, event_type)]


def one(events: list[e.Event], event_type: type):
    found = of_type(events, event_type)
    assert len(found) == 1, f"expected one {event_type.__name__} in {events}"
    return found[0]


def rejection(events: list[e.Event]) -> e.CommandRejected | None:
    found = of_type(events, e.CommandRejected)
    return found[0] if found else None


def placed_id(events: list[e.Event]) -> str:
    return one(events, e.OrderPlaced).order


def fills(events: list[e.Event]) -> list[tuple[str, int, int]]:
    """(maker order, price, size) of every BetMatched, in event order."""
    return [(ev.maker_order, ev.price, ev.size_minor) for ev in of_type(events, e.BetMatched)]


def money_moved(driver: Driver, kind: str | None = None) -> list[e.MoneyMoved]:
    return [ev for events in driver.event_log for ev in events
            if isinstance(ev, e.MoneyMoved) and (kind is None or ev.kind == kind)]


def settlement_entries(d: Driver) -> dict[str, int]:
    """The one settlement movement of the session, account -> amount."""
    (moved,) = money_moved(d, "settlement")
    return dict(moved.entries)


# -- invariants and fingerprints --------------------------------------------------------------


def check_invariants(eng: Engine, events: list[e.Event]) -> None:
    """The ledger and hold invariants, recomputed here independently of `validate()`."""
    for ev in of_type(events, e.MoneyMoved):
        assert sum(amount for _, amount in ev.entries) == 0, f"unbalanced movement {ev}"

    totals: dict[str, int] = defaultdict(int)
    for w in eng.wallets.values():
        totals[w.currency] += w.balance
    assert all(t == 0 for t in totals.values()), f"balances do not sum to zero: {dict(totals)}"

    expected_held: dict[tuple[str, str], int] = defaultdict(int)
    for m in eng.markets.values():
        for user, pos in m.positions.items():
            if m.status in FINAL:
                assert pos.hold == 0, f"{m.id}/{user} still holds {pos.hold} after {m.status}"
            expected_held[(user, m.currency)] += pos.hold
    for user, currency, amount, state in eng.withdrawals.values():
        if state == "pending":
            expected_held[(user, currency)] += amount
    for key, w in eng.wallets.items():
        assert w.held == expected_held.get(key, 0), f"{w}: held != market holds + withdrawals"
        if w.user not in (HOUSE, COMMISSION, EXTERNAL):
            assert w.available >= 0, f"{w} has negative available"

    for m in eng.markets.values():
        for i, book in enumerate(m.books):
            best_lay, best_back = book.lays.best, book.backs.best
            if best_lay is not None and best_back is not None:
                assert best_lay < best_back, f"{m.id}/{m.selection_ids[i]} crossed"


def _half(half) -> tuple:
    return tuple((price, level.total, tuple(o.id for o in level.orders if o.remaining))
                 for price, level in half.levels.items())


def state_fingerprint(eng: Engine) -> tuple:
    """Everything a command can change, as plain comparable values (no pickling involved)."""
    wallets = tuple(sorted((k, w.balance, w.held) for k, w in eng.wallets.items()))
    orders = tuple(sorted(
        (o.id, o.user, o.side, o.price, o.size, o.matched, o.remaining, o.cancelled, o.lapsed,
         o.matched_value, o.matched_win, o.release_ts, o.in_book, o.status)
        for o in eng.orders.values()))
    markets = []
    for mid in sorted(eng.markets):
        m = eng.markets[mid]
        positions = tuple(sorted(
            (u, tuple(p.edge), p.const, p.hold, tuple(p.win), tuple(p.lose))
            for u, p in m.positions.items()))
        books = tuple((_half(b.backs), _half(b.lays), b.backs.best, b.lays.best)
                      for b in m.books)
        markets.append((mid, m.type, m.status, m.in_play, m.bet_delay_ms, books, positions,
                        tuple(sorted(m.open_orders)), tuple(m.pool_stakes), tuple(m.traded),
                        tuple(m.ltp), m.start_ts, tuple(sorted(m.removed.items()))))
    return (wallets, orders, tuple(markets),
            tuple(sorted(eng.refs.items())),
            tuple(sorted(eng.retired_refs.items())),
            tuple(sorted(eng.retired_orders.items())),
            tuple(sorted(eng.deposits.items())),
            tuple(sorted((k, tuple(v)) for k, v in eng.withdrawals.items())),
            tuple(sorted(eng.delayed)))


def expect_rejected(driver: Driver, code: str, cmd_type: type[c.Command],
                    **fields) -> e.CommandRejected:
    """Apply a command that must be rejected with `code` and must change no state at all."""
    before = state_fingerprint(driver.eng)
    events = driver(cmd_type, **fields)
    after = state_fingerprint(driver.eng)
    assert len(events) == 1 and isinstance(events[0], e.CommandRejected), events
    assert events[0].code == code, f"expected {code}, got {events[0].code}: {events[0].reason}"
    assert after == before, "a rejected command changed state"
    return events[0]


def expect_place_rejected(driver: Driver, code: str, user: str, side: str, price: int,
                          size_minor: int, selection: str = "s1", market: str = "m1",
                          **fields) -> e.CommandRejected:
    return expect_rejected(driver, code, c.PlaceOrder, user=user, market=market,
                           selection=selection, side=side, price=price, size_minor=size_minor,
                           **fields)


# -- risk and house state (tests/test_engine_risk.py, tests/test_engine_house.py) -------------


_EXCHANGE_STATE = frozenset({"config", "markets", "orders", "wallets", "refs", "retired_refs",
                             "retired_orders", "deposits", "withdrawals", "delayed", "last_seq",
                             "last_ts", "_seq", "_ts", "_events", "_touched"})


def _plain(value, depth: int = 0):
    """Any limits/totals/quotes object as nested tuples of plain values, comparable with ==."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    assert depth < 8, f"{type(value).__name__} nests too deep for a fingerprint"
    if isinstance(value, dict):
        return tuple(sorted(((_plain(k, depth + 1), _plain(v, depth + 1))
                             for k, v in value.items()), key=repr))
    if isinstance(value, (list, tuple, deque)):
        return tuple(_plain(v, depth + 1) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted((_plain(v, depth + 1) for v in value), key=repr))
    names = [n for cls in type(value).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(value, "__dict__", {}))
    if dataclasses.is_dataclass(value):  # compiled dataclasses have neither
        names += [f.name for f in dataclasses.fields(value) if f.name not in names]
    return (type(value).__name__,
            tuple((n, _plain(getattr(value, n, None), depth + 1)) for n in names))


def risk_fingerprint(eng: Engine) -> tuple:
    """What `state_fingerprint` leaves out: trader limits, running stake totals, velocity stamps
    and house quotes, read generically (every engine attribute that is not exchange state, and
    each market's `limits` and `quotes`) so it follows the engine's internal layout."""
    names = [n for cls in type(eng).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(eng, "__dict__", {}))
    engine_side = tuple((n, _plain(getattr(eng, n, None)))
                        for n in sorted(set(names) - _EXCHANGE_STATE))
    market_side = tuple((mid, _plain(getattr(m, "limits", None)),
                         _plain(getattr(m, "quotes", None)))
                        for mid, m in sorted(eng.markets.items()))
    return engine_side, market_side


def expect_denied(driver: Driver, code: str, cmd_type: type[c.Command],
                  **fields) -> e.CommandRejected:
    """`expect_rejected`, and the limits, running totals and house quotes are unchanged too."""
    before = risk_fingerprint(driver.eng)
    rejected = expect_rejected(driver, code, cmd_type, **fields)
    assert risk_fingerprint(driver.eng) == before, "a rejected command changed risk state"
    return rejected


def expect_place_denied(driver: Driver, code: str, user: str, side: str, price: int,
                        size_minor: int, selection: str = "s1", market: str = "m1",
                        **fields) -> e.CommandRejected:
    return expect_denied(driver, code, c.PlaceOrder, user=user, market=market,
                         selection=selection, side=side, price=price, size_minor=size_minor,
                         **fields)


def accepted(events: list[e.Event]) -> str:
    """The id of the order a PlaceOrder created; fails with the rejection if there was one."""
    rejected = rejection(events)
    assert rejected is None, f"rejected {rejected.code}: {rejected.reason}"
    return placed_id(events)


def house_resting(driver: Driver, selection: str = "s1", market: str = "m1",
                  is_back: bool = False) -> list[tuple[str, int, int]]:
    """(order id, price, remaining) of the house's resting orders on one side of a selection."""
    book = driver.book(selection, market)
    half = book.backs if is_back else book.lays
    return [(o.id, price, o.remaining)
            for price, level in half.levels.items()
            for o in level.orders if o.remaining and o.user == HOUSE]


def market_limits(d: Driver, market: str = "m1", **fields) -> list[e.Event]:
    """Set market limits and insist they were accepted."""
    events = d(c.SetMarketLimits, market=market, **fields)
    assert rejection(events) is None, events
    return events

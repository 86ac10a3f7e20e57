"""The ledger and book invariants over a long seeded session of mixed commands: every movement
balances, balances sum to zero, only deposits and withdrawals move the users' money in or out of
the exchange, holds match the positions, and no book is ever crossed (the Driver checks all of
this and calls Engine.validate() after every command)."""

import gc
import random
from functools import lru_cache

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import COMMISSION, EXTERNAL, HOUSE
from engine.exposure import Position
from engine.order import Order
from engine.wallet import Wallet
from pricing.ladder import TICKS

from tests.engine_helpers import Driver, of_type

USERS = ("u1", "u2", "u3", "u4", "u5")
PRICES = TICKS[90:115]  # 1.91 .. 2.40: dense enough that orders cross


@lru_cache(maxsize=None)  # each seed's session is run once and only read by the tests
def random_session(seed: int, steps: int = 400) -> Driver:
    rng = random.Random(seed)
    d = Driver()
    for u in USERS:
        d.deposit(u, rng.randrange(5_000, 50_000))
    markets = ["m0"]
    d.create_market("m0", ("a", "b", "c"))
    settled = set()
    for step in range(steps):
        d.advance(rng.choice((0, 0, 10, 1000, 6000)))
        roll = rng.random()
        live = [m for m in markets if m not in settled]
        if not live or roll < 0.03:
            mid = f"m{len(markets)}"
            markets.append(mid)
            d.create_market(mid, ("a", "b", "c"))
            continue
        m = rng.choice(live)
        user = rng.choice(USERS)
        if roll < 0.60:
            d.place(user, rng.choice((c.BACK, c.LAY)), rng.choice(PRICES),
                    rng.choice((100, 333, 500, 1001, 2500)), selection=rng.choice("abc"),
                    market=m, persistence=rng.choice((c.LAPSE, c.PERSIST)),
                    tif=rng.choice((c.GTC, c.GTC, c.FOK)))
        elif roll < 0.72:
            mine = [o.id for o in d.eng.orders.values() if o.user == user and o.remaining]
            if mine:
                d.cancel(user, rng.choice(mine), rng.choice((0, 0, 50, 250)))
        elif roll < 0.77:
            mine = [o.id for o in d.eng.orders.values() if o.user == user and o.remaining]
            if mine:
                d(c.ReplaceOrder, user=user, order=rng.choice(mine), price=rng.choice(PRICES))
        elif roll < 0.80:
            d(c.CancelAll, user=user, market=rng.choice(("", m)))
        elif roll < 0.84:
            d.status(m, rng.choice(("open", "suspended")))
        elif roll < 0.86:
            d.status(m, in_play=True, bet_delay_ms=rng.choice((0, 5000)))
        elif roll < 0.89:
            d.tick()
        elif roll < 0.92:
            d.deposit(user, rng.randrange(100, 10_000))
        elif roll < 0.95:
            d(c.RequestWithdrawal, user=user, currency="BDT", amount_minor=rng.randrange(1, 5000))
            pending = [w for w, v in d.eng.withdrawals.items() if v[3] == "pending"]
            if pending:
                finish = rng.choice((c.ApproveWithdrawal, c.RejectWithdrawal))
                d(finish, withdrawal=rng.choice(pending))
        elif roll < 0.98:
            winners = rng.choice((("a",), ("b",), ("a", "b"), ("a", "b", "c")))
            d.settle(m, winners)
            settled.add(m)
        else:
            d(c.VoidMarket, market=m)
            settled.add(m)
    return d


@pytest.mark.parametrize("seed", range(6))
def test_money_only_enters_or_leaves_through_deposits_and_withdrawals(seed):
    d = random_session(seed)
    deposited = sum(ev.entries[1][1] for ev in (
        x for events in d.event_log for x in of_type(events, e.MoneyMoved))
        if ev.kind == "deposit")
    withdrawn = sum(ev.amount_minor for events in d.event_log
                    for ev in of_type(events, e.WithdrawalApproved))
    assert d.balance(EXTERNAL) == withdrawn - deposited
    inside = sum(d.balance(u) for u in USERS) + d.balance(HOUSE) + d.balance(COMMISSION)
    assert inside == deposited - withdrawn


@pytest.mark.parametrize("seed", range(6))
def test_every_order_accounts_for_its_whole_size(seed):
    d = random_session(seed)
    for o in d.eng.orders.values():
        assert o.matched + o.remaining + o.cancelled + o.lapsed == o.size
        assert min(o.matched, o.remaining, o.cancelled, o.lapsed) >= 0


@pytest.mark.parametrize("seed", range(6))
def test_an_order_holds_nothing_that_could_lead_back_to_an_order(seed):
    """engine/order.py leaves orders out of the cyclic collector: that is safe only while no
    order can be part of a reference cycle. Its fields are strings, numbers, None, its Position
    (lists of numbers and a Wallet) and its Wallet (strings and numbers)."""
    d = random_session(seed)
    assert d.eng.orders
    for o in d.eng.orders.values():
        assert not gc.is_tracked(o)
        for name in Order.__slots__:
            value = getattr(o, name)
            if name == "pos":
                assert type(value) is Position and value.wallet is o.wallet
                assert all(type(x) is int for part in (value.edge, value.win, value.lose)
                           for x in part)
            elif name == "wallet":
                assert type(value) is Wallet
                assert {type(value.user), type(value.currency)} == {str}
            else:
                assert value is None or type(value) in (str, int, bool), (name, value)


@pytest.mark.parametrize("seed", range(6))
def test_every_fill_is_at_the_makers_price_and_within_the_takers_limit(seed):
    d = random_session(seed)
    placed = {}  # from the events, since settled markets' orders leave engine memory
    for events in d.event_log:
        for p in of_type(events, e.OrderPlaced):
            placed[p.order] = p
        for m in of_type(events, e.BetMatched):
            taker, maker = placed[m.taker_order], placed[m.maker_order]
            assert m.price == maker.price
            assert (m.price >= taker.price) if taker.side == "back" else (m.price <= taker.price)
            assert m.win_minor == m.size_minor * (m.price - 100) // 100

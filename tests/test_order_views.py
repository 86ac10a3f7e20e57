"""A listing of orders (`orders`, the HTTP positions view) says exactly what each order's own
ORDER says, while each price level is walked once for all the listed orders resting in it
(views.order_views, HalfBook.queues_ahead)."""

from hypothesis import given
from hypothesis import strategies as st

from engine import commands as c
from engine.config import EngineConfig
from engine.engine import Engine
from gateway.views import order_view, order_views, queues_ahead
from tests.test_engine_properties import SETTINGS, Session, _setup, _step


def _one_by_one(engine, oids) -> list[dict]:
    return [order_view(engine, oid) for oid in oids]


@SETTINGS
@given(st.data())
def test_a_listing_equals_each_order_rendered_alone_after_every_command(data):
    s = Session()
    _setup(s, data)
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        _step(s, data)
        engine = s.engine
        everything = list(engine.orders) + list(engine.retired_orders)
        assert order_views(engine, everything) == _one_by_one(engine, everything)
        by_user: dict[str, list[str]] = {}
        for oid, o in engine.orders.items():
            by_user.setdefault(o.user, []).append(oid)
        for oids in by_user.values():
            assert order_views(engine, oids) == _one_by_one(engine, oids)


def _deep_level() -> tuple[Engine, list[str]]:
    """One back level at 3.00 of 400 orders: every tenth is x's, the others y's and z's; some
    of them cancelled (left in the queue, lazily), some partly cancelled, the front ones
    partly matched."""
    engine = Engine(EngineConfig(velocity_orders_max=0))
    seq = iter(range(1, 10_000))

    def apply(cls, **fields):
        return engine.apply(cls(seq=next(seq), ts=1_700_000_000_000, **fields))

    apply(c.CreateMarket, market="m", event="e", name="n", selections=(("a", "A"), ("b", "B")))
    apply(c.SetMarketStatus, market="m", status="open")
    for user in "xyz":
        apply(c.Deposit, user=user, currency="BDT", amount_minor=10**9, ref=f"d{user}")
    mine = []
    for i in range(400):
        user = "x" if i % 10 == 0 else "yz"[i % 2]
        placed = apply(c.PlaceOrder, user=user, market="m", selection="a", side="back",
                       price=300, size_minor=100 + i)[0]
        if user == "x":
            mine.append(placed.order)
        elif i % 7 == 0:
            apply(c.CancelOrder, user=user, order=placed.order)
        elif i % 11 == 0:
            apply(c.CancelOrder, user=user, order=placed.order, size_reduction_minor=50)
    apply(c.CancelOrder, user="x", order=mine[5])  # one of x's own, out of the book
    apply(c.PlaceOrder, user="z", market="m", selection="a", side="lay", price=300,
          size_minor=1_000)  # takes the front of the queue
    return engine, mine


def test_orders_spread_through_a_deep_level_each_get_the_size_ahead_of_them():
    engine, mine = _deep_level()
    level = engine.markets["m"].books[0].backs.levels[300]
    assert level.dead > 0  # lazily cancelled entries are walked over
    listed = order_views(engine, mine)
    assert listed == _one_by_one(engine, mine)
    ahead = queues_ahead(engine, mine)
    assert mine[5] not in ahead  # cancelled: it rests nowhere
    resting = [oid for oid in mine if engine.orders[oid].in_book]
    assert [ahead[oid] for oid in resting] == sorted(ahead[oid] for oid in resting)
    expected = {}
    run = 0
    for o in level.orders:
        if o.user == "x" and o.in_book:  # x's cancelled one is still in the deque
            expected[o.id] = run
        run += o.remaining
    assert ahead == expected
    assert ahead[resting[-1]] > 0

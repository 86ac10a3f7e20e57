"""ORDER written straight to JSON (gateway/order_json.py, the order path's replies) says exactly
what `views.order_view` says, for every order of generated trading sessions."""

import orjson
from hypothesis import given
from hypothesis import strategies as st

from engine import commands as c
from engine.engine import Engine
from gateway.order_json import order_json
from gateway.views import order_view
from tests.test_engine_properties import SETTINGS, Session, _setup, _step


def _check_every_order(engine: Engine) -> None:
    for oid in list(engine.orders) + list(engine.retired_orders):
        assert orjson.loads(order_json(engine, oid)) == order_view(engine, oid), oid


@SETTINGS
@given(st.data())
def test_every_order_renders_as_its_view_after_every_command(data):
    s = Session()
    _setup(s, data)
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        _step(s, data)
        _check_every_order(s.engine)


def test_ids_and_refs_that_need_escaping_are_escaped():
    engine = Engine()
    seq = iter(range(1, 100))

    def apply(cls, **fields):
        return engine.apply(cls(seq=next(seq), ts=1_700_000_000_000, **fields))

    market, selection = 'm"1\\', "s\n1"
    apply(c.CreateMarket, market=market, event="e", name="n", selections=((selection, "S"),))
    apply(c.SetMarketStatus, market=market, status="open")
    apply(c.Deposit, user="u", currency="BDT", amount_minor=10_000, ref="d")
    for ref in ('q"uote', "back\\slash", "ctl\x01", "ünï", ""):
        apply(c.PlaceOrder, user="u", market=market, selection=selection, side=c.BACK,
              price=250, size_minor=100, ref=ref)
    _check_every_order(engine)
    assert len(engine.orders) == 5


def test_amounts_either_side_of_the_small_amounts_table_render_as_their_view():
    """order_json keeps the texts of amounts under 1,000.00 in a list and bigger ones in a dict
    (the generated sessions above stake less than that)."""
    engine = Engine()
    seq = iter(range(1, 100))

    def apply(cls, **fields):
        return engine.apply(cls(seq=next(seq), ts=1_700_000_000_000, **fields))

    apply(c.CreateMarket, market="m", event="e", name="n", selections=(("s", "S"),))
    apply(c.SetMarketStatus, market="m", status="open")
    for user in ("a", "b"):
        apply(c.Deposit, user=user, currency="BDT", amount_minor=10**12, ref=f"d{user}")
    for size in (99_999, 100_000, 100_001, 12_345_678):
        apply(c.PlaceOrder, user="a", market="m", selection="s", side=c.BACK, price=100_000,
              size_minor=size)
        apply(c.PlaceOrder, user="b", market="m", selection="s", side=c.LAY, price=101,
              size_minor=size)
    # and some of them matched: amounts that are sums of the above
    apply(c.PlaceOrder, user="b", market="m", selection="s", side=c.LAY, price=100_000,
          size_minor=150_000)
    _check_every_order(engine)
    texts = {orjson.loads(order_json(engine, oid))["size"] for oid in engine.orders}
    assert {"999.99", "1000.00", "1000.01", "123456.78"} <= texts

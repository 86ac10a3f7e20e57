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

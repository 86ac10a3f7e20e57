"""A settled or voided market is retired: the engine forgets its orders and positions, so memory
follows the open markets, not every bet ever placed (the journal and Postgres keep it). Only a
small final record of each order with a ref stays, since a ref is for ever
(tests/test_engine_refs.py)."""

from engine import commands as c
from engine import events as e
from tests.engine_helpers import Driver


def _market(d: Driver, market: str = "m") -> None:
    d(c.CreateMarket, market=market, event="e", name=market,
      selections=(("a", "A"), ("b", "B")))
    d(c.SetMarketStatus, market=market, status="open")


def _funded(d: Driver, *users: str) -> None:
    for user in users:
        d(c.Deposit, user=user, currency="BDT", amount_minor=100_000, ref=f"dep-{user}")


def test_settling_forgets_the_markets_orders_and_positions_but_not_other_markets():
    d = Driver()
    _market(d, "m")
    _market(d, "other")
    _funded(d, "x", "y")
    d(c.PlaceOrder, user="x", market="m", selection="a", side=c.BACK, price=300,
      size_minor=1_000, ref="mine")
    d(c.PlaceOrder, user="y", market="m", selection="a", side=c.LAY, price=300,
      size_minor=1_000)
    d(c.PlaceOrder, user="x", market="other", selection="a", side=c.BACK, price=300,
      size_minor=500)
    d(c.SettleMarket, market="m", winners=("a",))
    assert {o.market for o in d.eng.orders.values()} == {"other"}
    assert d.eng.markets["m"].positions == {} and ("x", "mine") not in d.eng.refs
    assert list(d.eng.retired_refs) == [("x", "mine")]  # the ref's record, not the order
    assert d.eng.wallets[("x", "BDT")].balance == 100_000 + 2_000 - 100  # won 20.00, 5% fee
    assert d.eng.wallets[("x", "BDT")].held == 500  # only the other market's order


def test_a_ref_repeated_after_the_void_is_the_original_order_not_a_place_on_a_closed_market():
    d = Driver()
    _market(d)
    _funded(d, "x")
    fields = dict(user="x", market="m", selection="a", side=c.BACK, price=300,
                  size_minor=1_000, ref="r1")
    oid = d.next_order_id
    d(c.PlaceOrder, **fields)
    d(c.VoidMarket, market="m")
    events = d(c.PlaceOrder, **fields)
    assert events == [e.PlaceRepeated(seq=d.seq, ts=d.ts, order=oid, user="x")]


def test_a_place_without_a_ref_on_a_retired_market_is_refused_as_not_open():
    d = Driver()
    _market(d)
    _funded(d, "x")
    d(c.VoidMarket, market="m")
    events = d(c.PlaceOrder, user="x", market="m", selection="a", side=c.BACK, price=300,
               size_minor=1_000)
    assert [type(ev) for ev in events] == [e.CommandRejected]
    assert events[0].code == "MARKET_NOT_OPEN"


def test_a_bet_delay_timer_outliving_its_voided_market_is_ignored():
    d = Driver()
    _market(d)
    _funded(d, "x")
    d(c.SetMarketStatus, market="m", in_play=True, bet_delay_ms=5_000)
    d(c.PlaceOrder, user="x", market="m", selection="a", side=c.BACK, price=300,
      size_minor=1_000, persistence=c.PERSIST)
    d(c.VoidMarket, market="m")
    d.advance(6_000)
    assert [type(ev) for ev in d(c.Tick)] == []
    assert d.eng.wallets[("x", "BDT")].held == 0


def test_open_orders_share_their_user_selection_persistence_and_tif_strings():
    """Snapshots pickle a shared string once: orders that each kept the command's own copy made
    a 900,000-order snapshot 1.7 MB larger (104.3 MB) and its unpickling allocate 1.8 million
    more strings."""
    d = Driver()
    d(c.CreateMarket, market="m", event="e", name="m",
      selections=(("home", "Home"), ("away", "Away")))
    d(c.SetMarketStatus, market="m", status="open")
    _funded(d, "bettor")
    for _ in range(2):  # each command brings its own, equal strings
        d(c.PlaceOrder, user="".join(["bet", "tor"]), market="m",
          selection="".join(["ho", "me"]), side=c.BACK, price=300, size_minor=1_000,
          persistence="".join(["per", "sist"]), tif="".join(["g", "tc"]))
    first, second = d.eng.orders.values()
    assert first.user is second.user is d.eng.wallets[("bettor", "BDT")].user
    assert first.selection is second.selection is d.eng.markets["m"].selection_ids[0]
    assert first.persistence is second.persistence is c.PERSIST
    assert first.tif is second.tif is c.GTC

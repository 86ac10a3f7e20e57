"""Markets: creation, the status flow INACTIVE -> OPEN <-> SUSPENDED -> CLOSED -> SETTLED/VOIDED,
and which commands each status refuses."""

from engine import commands as c
from engine import events as e
from engine.market import CLOSED, INACTIVE, OPEN, SETTLED, SUSPENDED, VOIDED
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_place_rejected,
    expect_rejected,
    one,
    placed_id,
    rejection,
)


def funded(*users: str, amount: int = 100_000) -> Driver:
    d = Driver()
    for u in users:
        d.deposit(u, amount)
    return d


# -- creation ---------------------------------------------------------------------------------


def test_create_exchange_market_starts_inactive_with_default_commission():
    d = Driver()
    events = d.create_market("m1", ("s1", "s2"), open=False)
    created = one(events, e.MarketCreated)
    assert (created.market, created.type, created.currency) == ("m1", c.EXCHANGE, "BDT")
    assert created.selections == (("s1", "S1"), ("s2", "S2"))
    assert created.commission_bp == 500
    m = d.eng.markets["m1"]
    assert m.status == INACTIVE and m.type == c.EXCHANGE and not m.in_play
    assert m.selection_ids == ["s1", "s2"]


def test_create_pool_market_with_default_take():
    d = Driver()
    created = one(d.create_market("p1", ("a", "b"), open=False, type=c.POOL), e.MarketCreated)
    assert created.type == c.POOL and created.take_bp == 1000
    assert d.eng.markets["p1"].type == c.POOL
    assert d.eng.markets["p1"].status == INACTIVE


def test_a_market_carries_its_scheduled_start_time():
    d = Driver()
    created = one(d.create_market("m1", open=False, start_ts=1_767_225_600_000), e.MarketCreated)
    assert created.start_ts == d.eng.markets["m1"].start_ts == 1_767_225_600_000
    assert one(d.create_market("m2", open=False), e.MarketCreated).start_ts is None


def test_a_start_time_that_is_not_ms_since_the_epoch_is_rejected():
    d = Driver()
    for start_ts in (-1, 253_402_300_800_000):  # before 1970, after the year 9999
        expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m1", event="e1",
                        name="n", selections=(("s1", "A"),), start_ts=start_ts)


def test_creating_an_existing_market_again_is_rejected():
    d = Driver()
    d.create_market("m1", open=False)
    expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m1", event="e1", name="again",
                    selections=(("x", "X"),))


def test_market_needs_distinct_selections():
    d = Driver()
    expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m1", event="e1", name="n",
                    selections=(("s1", "A"), ("s1", "B")))
    expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m1", event="e1", name="n",
                    selections=())


def test_unknown_market_type_is_rejected():
    d = Driver()
    expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m1", event="e1", name="n",
                    selections=(("s1", "A"),), type="casino")


# -- the status flow --------------------------------------------------------------------------


def test_status_flow_open_suspend_reopen_close_settle():
    d = funded("u1")
    d.create_market("m1", open=False)
    m = d.eng.markets["m1"]
    for status, expected in (("open", OPEN), ("suspended", SUSPENDED), ("open", OPEN),
                             ("suspended", SUSPENDED), ("closed", CLOSED)):
        changed = one(d.status("m1", status), e.MarketStatusChanged)
        assert changed.status == expected and m.status == expected
    events = d.settle("m1", ("s1",))
    assert one(events, e.MarketSettled).winners == ("s1",)
    assert one(events, e.MarketStatusChanged).status == SETTLED
    assert m.status == SETTLED


def test_closed_market_can_be_voided():
    d = Driver()
    d.create_market("m1")
    d.status("m1", "closed")
    events = d(c.VoidMarket, market="m1")
    one(events, e.MarketVoided)
    assert one(events, e.MarketStatusChanged).status == VOIDED
    assert d.eng.markets["m1"].status == VOIDED


def test_a_closed_market_cannot_reopen():
    d = Driver()
    d.create_market("m1")
    d.status("m1", "closed")
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.SetMarketStatus, market="m1", status="open")
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.SetMarketStatus, market="m1", status="suspended")
    assert d.eng.markets["m1"].status == CLOSED


def test_a_settled_market_cannot_change_status():
    d = Driver()
    d.create_market("m1")
    d.settle("m1", ("s1",))
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.SetMarketStatus, market="m1", status="open")


def test_unknown_status_name_is_rejected():
    d = Driver()
    d.create_market("m1")
    expect_rejected(d, Code.BAD_REQUEST, c.SetMarketStatus, market="m1", status="inactive")
    expect_rejected(d, Code.BAD_REQUEST, c.SetMarketStatus, market="m1", status="settled")


def test_in_play_cannot_be_turned_off():
    d = Driver()
    d.create_market("m1")
    assert one(d.status("m1", in_play=True), e.MarketStatusChanged).in_play is True
    expect_rejected(d, Code.BAD_REQUEST, c.SetMarketStatus, market="m1", in_play=False)
    assert d.eng.markets["m1"].in_play


def test_bet_delay_must_be_within_a_minute():
    d = Driver()
    d.create_market("m1")
    expect_rejected(d, Code.BAD_REQUEST, c.SetMarketStatus, market="m1", bet_delay_ms=60_001)
    expect_rejected(d, Code.BAD_REQUEST, c.SetMarketStatus, market="m1", bet_delay_ms=-1)


def test_settling_twice_is_rejected():
    d = Driver()
    d.create_market("m1")
    d.settle("m1", ("s1",))
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.SettleMarket, market="m1", winners=("s2",))
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.VoidMarket, market="m1")


def test_voiding_a_settled_market_or_settling_a_voided_one_is_rejected():
    d = Driver()
    d.create_market("m1")
    d(c.VoidMarket, market="m1")
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.SettleMarket, market="m1", winners=("s1",))
    expect_rejected(d, Code.MARKET_NOT_OPEN, c.VoidMarket, market="m1")


def test_settle_needs_known_distinct_winners():
    d = Driver()
    d.create_market("m1")
    expect_rejected(d, Code.UNKNOWN_SELECTION, c.SettleMarket, market="m1", winners=("zz",))
    expect_rejected(d, Code.BAD_REQUEST, c.SettleMarket, market="m1", winners=())
    expect_rejected(d, Code.BAD_REQUEST, c.SettleMarket, market="m1", winners=("s1", "s1"))


def test_settling_an_open_market_closes_it_first_and_lapses_unmatched_orders():
    d = funded("u1")
    d.create_market("m1")
    oid = placed_id(d.back("u1", 250, 1000))
    events = d.settle("m1", ("s1",))
    lapsed = one(events, e.OrderLapsed)
    assert (lapsed.order, lapsed.size_minor, lapsed.reason) == (oid, 1000, "closed")
    assert d.eng.markets["m1"].status == SETTLED
    assert d.held("u1") == 0 and d.balance("u1") == 100_000


# -- unknown ids ------------------------------------------------------------------------------


def test_unknown_market_is_rejected_everywhere():
    d = funded("u1")
    expect_place_rejected(d, Code.UNKNOWN_MARKET, "u1", c.BACK, 200, 100, market="nope")
    expect_rejected(d, Code.UNKNOWN_MARKET, c.SetMarketStatus, market="nope", status="open")
    expect_rejected(d, Code.UNKNOWN_MARKET, c.SettleMarket, market="nope", winners=("s1",))
    expect_rejected(d, Code.UNKNOWN_MARKET, c.VoidMarket, market="nope")
    expect_rejected(d, Code.UNKNOWN_MARKET, c.CancelAll, user="u1", market="nope")


def test_unknown_selection_is_rejected():
    d = funded("u1")
    d.create_market("m1")
    expect_place_rejected(d, Code.UNKNOWN_SELECTION, "u1", c.BACK, 200, 100, selection="s9")


# -- which statuses take orders ---------------------------------------------------------------


def test_placing_on_an_inactive_market_is_market_not_open():
    d = funded("u1")
    d.create_market("m1", open=False)
    expect_place_rejected(d, Code.MARKET_NOT_OPEN, "u1", c.BACK, 200, 100)


def test_placing_on_a_suspended_market_is_market_suspended():
    d = funded("u1")
    d.create_market("m1")
    d.status("m1", "suspended")
    expect_place_rejected(d, Code.MARKET_SUSPENDED, "u1", c.BACK, 200, 100)
    expect_place_rejected(d, Code.MARKET_SUSPENDED, "u1", c.LAY, 200, 100)


def test_placing_on_a_closed_market_is_market_not_open():
    d = funded("u1")
    d.create_market("m1")
    d.status("m1", "closed")
    expect_place_rejected(d, Code.MARKET_NOT_OPEN, "u1", c.BACK, 200, 100)


def test_placing_on_a_settled_market_is_market_not_open():
    d = funded("u1")
    d.create_market("m1")
    d.settle("m1", ("s1",))
    expect_place_rejected(d, Code.MARKET_NOT_OPEN, "u1", c.BACK, 200, 100)


def test_reopened_market_takes_orders_again():
    d = funded("u1")
    d.create_market("m1")
    d.status("m1", "suspended")
    d.status("m1", "open")
    assert rejection(d.back("u1", 200, 100)) is None


def test_suspension_keeps_resting_orders_in_the_book():
    d = funded("u1")
    d.create_market("m1")
    oid = placed_id(d.back("u1", 250, 1000))
    d.status("m1", "suspended")
    assert d.order(oid).remaining == 1000
    assert d.book().backs.depth(1) == [(250, 1000)]


def test_closing_lapses_every_unmatched_order_lapse_and_persist_alike():
    d = funded("u1", "u2")
    d.create_market("m1")
    a = placed_id(d.back("u1", 250, 1000))
    b = placed_id(d.lay("u2", 200, 500, persistence=c.PERSIST))
    events = d.status("m1", "closed")
    lapsed = {ev.order: (ev.size_minor, ev.reason) for ev in events if isinstance(ev, e.OrderLapsed)}
    assert lapsed == {a: (1000, "closed"), b: (500, "closed")}
    for oid in (a, b):
        o = d.order(oid)
        assert o.remaining == 0 and o.lapsed == o.size
    assert d.book().backs.best is None and d.book().lays.best is None
    assert d.held("u1") == 0 and d.held("u2") == 0

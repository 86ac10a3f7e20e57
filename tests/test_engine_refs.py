"""Customer refs: the same user, ref and fields is the same order, never two, for ever: a ref
outlives the settlement or void that retires its order."""

import pickle

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import Engine
from engine.rejections import Code
from gateway.views import order_view

from tests.engine_helpers import (
    NO_VELOCITY,
    Driver,
    expect_place_rejected,
    one,
    placed_id,
    risk_fingerprint,
    state_fingerprint,
)


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("u1", "u2", "u3"):
        d.deposit(u, 100_000)
    d.create_market("m1")
    return d


def test_repeat_with_same_ref_and_fields_returns_the_original_order(d):
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    orders_before = len(d.eng.orders)
    before = state_fingerprint(d.eng)
    events = d.back("u1", 250, 1000, ref="slip-1")
    assert events == [e.PlaceRepeated(seq=d.seq, ts=d.ts, order=oid, user="u1")]
    assert len(d.eng.orders) == orders_before
    assert state_fingerprint(d.eng) == before
    assert d.held("u1") == 1000


def test_repeat_after_the_original_matched_still_returns_it_without_a_new_bet(d):
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    d.lay("u2", 250, 1000)
    before = state_fingerprint(d.eng)
    assert one(d.back("u1", 250, 1000, ref="slip-1"), e.PlaceRepeated).order == oid
    assert state_fingerprint(d.eng) == before


def test_repeat_is_recognised_even_after_the_market_suspended(d):
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    d.status("m1", "suspended")
    assert one(d.back("u1", 250, 1000, ref="slip-1"), e.PlaceRepeated).order == oid


@pytest.mark.parametrize("changed", [
    {"price": 260},
    {"size_minor": 1001},
    {"selection": "s2"},
    {"side": c.LAY},
    {"persistence": c.PERSIST},
    {"tif": c.FOK},
])
def test_same_ref_with_different_fields_is_duplicate_ref(d, changed):
    d.back("u1", 250, 1000, ref="slip-1")
    fields = dict(user="u1", side=c.BACK, price=250, size_minor=1000, selection="s1",
                  ref="slip-1")
    fields.update(changed)
    expect_place_rejected(d, Code.DUPLICATE_REF, **fields)


def test_another_user_may_use_the_same_ref(d):
    first = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    second = placed_id(d.back("u2", 250, 1000, ref="slip-1"))
    assert first != second
    assert d.order(second).user == "u2"
    assert d.book().backs.depth(1) == [(250, 2000)]


def test_a_rejected_place_does_not_claim_its_ref(d):
    d.status("m1", "suspended")
    expect_place_rejected(d, Code.MARKET_SUSPENDED, "u1", c.BACK, 250, 1000, ref="slip-1")
    d.status("m1", "open")
    oid = placed_id(d.back("u1", 260, 500, ref="slip-1"))
    assert d.order(oid).price == 260


def test_orders_without_a_ref_are_never_deduplicated(d):
    a = placed_id(d.back("u1", 250, 1000))
    b = placed_id(d.back("u1", 250, 1000))
    assert a != b
    assert d.held("u1") == 2000


# -- a ref outlives its market: settled and voided markets retire their orders, not their refs --


def _settled_with_a_ref(d: Driver) -> str:
    """u1 backs 10.00 @ 2.50 with ref slip-1, u2 lays 6.00 of it, s1 wins: the order ends 6.00
    matched and 4.00 lapsed, and the market is retired."""
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    d.lay("u2", 250, 600)
    d.settle("m1", ("s1",))
    assert oid not in d.eng.orders
    return oid


def test_a_repeat_after_settlement_returns_the_original_order_and_changes_nothing(d):
    oid = _settled_with_a_ref(d)
    before = state_fingerprint(d.eng)
    events = d.back("u1", 250, 1000, ref="slip-1")
    assert events == [e.PlaceRepeated(seq=d.seq, ts=d.ts, order=oid, user="u1")]
    assert state_fingerprint(d.eng) == before  # no order, no hold, no money moved


def test_a_repeat_after_the_market_was_voided_returns_the_original_order(d):
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    d(c.VoidMarket, market="m1")
    before = state_fingerprint(d.eng)
    assert d.back("u1", 250, 1000, ref="slip-1") == [
        e.PlaceRepeated(seq=d.seq, ts=d.ts, order=oid, user="u1")]
    assert state_fingerprint(d.eng) == before


def test_a_repeat_long_after_settlement_still_returns_the_original_order(d):
    oid = _settled_with_a_ref(d)
    for i in range(2, 6):  # many markets later
        d.create_market(f"m{i}")
        d.back("u1", 250, 100, market=f"m{i}", ref=f"slip-{i}")
        d(c.VoidMarket, market=f"m{i}")
    assert one(d.back("u1", 250, 1000, ref="slip-1"), e.PlaceRepeated).order == oid


@pytest.mark.parametrize("changed", [
    {"market": "m2"},
    {"price": 260},
    {"size_minor": 1001},
    {"selection": "s2"},
    {"side": c.LAY},
    {"persistence": c.PERSIST},
    {"tif": c.FOK},
])
def test_a_settled_orders_ref_with_different_fields_is_duplicate_ref(d, changed):
    _settled_with_a_ref(d)
    d.create_market("m2")  # open: the ref, not the market, is what refuses the place
    fields = dict(user="u1", side=c.BACK, price=250, size_minor=1000, selection="s1",
                  market="m1", ref="slip-1")
    fields.update(changed)
    expect_place_rejected(d, Code.DUPLICATE_REF, **fields)


def test_another_user_may_still_use_a_settled_orders_ref(d):
    _settled_with_a_ref(d)
    d.create_market("m2")
    assert placed_id(d.back("u3", 250, 1000, market="m2", ref="slip-1"))


def test_retired_refs_survive_a_snapshot(d):
    oid = _settled_with_a_ref(d)
    restored = pickle.loads(pickle.dumps(d.eng, protocol=pickle.HIGHEST_PROTOCOL))
    assert state_fingerprint(restored) == state_fingerprint(d.eng)
    repeat = c.PlaceOrder(seq=d.seq + 1, ts=d.ts, user="u1", market="m1", selection="s1",
                          side=c.BACK, price=250, size_minor=1000, ref="slip-1")
    assert restored.apply(repeat) == [e.PlaceRepeated(seq=d.seq + 1, ts=d.ts, order=oid,
                                                      user="u1")]


def test_retired_refs_are_rebuilt_identically_by_replay(d):
    _settled_with_a_ref(d)
    d(c.VoidMarket, market="m1")  # rejected: already settled
    d.create_market("m2")
    d.back("u1", 300, 500, market="m2", ref="slip-2")
    d(c.VoidMarket, market="m2")
    one(d.back("u1", 250, 1000, ref="slip-1"), e.PlaceRepeated)
    expect_place_rejected(d, Code.DUPLICATE_REF, "u1", c.BACK, 300, 500, ref="slip-1")
    fresh = Engine(NO_VELOCITY)
    for cmd, events in zip(d.log, d.event_log, strict=True):
        assert fresh.apply(cmd) == events
    fresh.validate()
    assert state_fingerprint(fresh) == state_fingerprint(d.eng)
    assert risk_fingerprint(fresh) == risk_fingerprint(d.eng)


def test_the_reply_to_a_repeat_after_settlement_is_the_original_order_in_its_final_state(d):
    oid = _settled_with_a_ref(d)
    d.back("u1", 250, 1000, ref="slip-1")
    assert order_view(d.eng, oid) == {
        "order": oid, "market": "m1", "selection": "s1", "side": "back", "price": "2.50",
        "size": "10.00", "matched": "6.00", "remaining": "0.00", "cancelled": "0.00",
        "lapsed": "4.00", "avg_price_matched": "2.50", "status": "EXECUTION_COMPLETE",
        "persistence": "lapse", "ref": "slip-1", "placed_seq": int(oid[1:]),
        "queue_ahead": "0.00"}


def test_a_snapshot_from_before_refs_outlived_their_markets_restores_with_none_retired(d):
    oid = placed_id(d.back("u1", 250, 1000, ref="slip-1"))
    state = d.eng.__getstate__()
    del state["retired_refs"], state["retired_orders"]  # what such a snapshot holds
    restored = Engine.__new__(Engine)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    assert restored.retired_refs == {} and restored.retired_orders == {}
    settle = c.SettleMarket(seq=d.seq + 1, ts=d.ts, market="m1", winners=("s1",))
    assert restored.apply(settle) == d.eng.apply(settle)
    restored.validate()
    assert restored.retired_refs == {("u1", "slip-1"): oid}

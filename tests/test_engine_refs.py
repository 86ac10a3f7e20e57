"""Customer refs: the same user, ref and fields is the same order, never two."""

import pytest

from engine import commands as c
from engine import events as e
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_place_rejected,
    one,
    placed_id,
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

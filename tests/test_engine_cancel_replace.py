"""Cancel (whole or by size reduction), replace and cancel-all: what each frees, what it keeps,
and that nobody can touch another user's orders."""

import pytest

from engine import commands as c
from engine import events as e
from engine.order import EXECUTION_COMPLETE
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_rejected,
    fills,
    of_type,
    one,
    placed_id,
    rejection,
    state_fingerprint,
)


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("u1", "u2", "u3"):
        d.deposit(u, 100_000)
    d.create_market("m1")
    d.create_market("m2")
    return d


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_takes_all_that_remains_off_and_releases_the_hold(d):
    oid = placed_id(d.lay("u1", 300, 1000))
    assert d.held("u1") == 2000
    events = d.cancel("u1", oid)
    ev = one(events, e.OrderCancelled)
    assert (ev.order, ev.size_minor, ev.reason) == (oid, 1000, "requested")
    o = d.order(oid)
    assert (o.remaining, o.cancelled, o.status) == (0, 1000, EXECUTION_COMPLETE)
    assert d.book().lays.best is None
    assert d.held("u1") == 0


def test_cancel_of_a_partly_matched_order_cancels_only_the_remainder(d):
    oid = placed_id(d.lay("u1", 250, 1000))
    d.back("u2", 250, 300)
    d.cancel("u1", oid)
    o = d.order(oid)
    assert (o.matched, o.remaining, o.cancelled) == (300, 0, 700)
    assert d.hold("u1") == 450  # liability of the matched 3.00 at 2.50


def test_size_reduction_cancels_part_and_keeps_the_rest_resting(d):
    oid = placed_id(d.back("u1", 250, 1000))
    one(d.cancel("u1", oid, size_reduction_minor=400), e.OrderCancelled)
    o = d.order(oid)
    assert (o.remaining, o.cancelled) == (600, 400)
    assert d.book().backs.depth(1) == [(250, 600)]
    assert d.held("u1") == 600


def test_size_reduction_keeps_queue_priority(d):
    first = placed_id(d.lay("u1", 250, 1000))
    second = placed_id(d.lay("u2", 250, 1000))
    d.cancel("u1", first, size_reduction_minor=400)
    assert d.book().lays.queue_ahead(d.order(second)) == 600
    assert fills(d.back("u3", 250, 700)) == [(first, 250, 600), (second, 250, 100)]


def test_size_reduction_beyond_the_remainder_cancels_what_remains(d):
    oid = placed_id(d.back("u1", 250, 1000))
    ev = one(d.cancel("u1", oid, size_reduction_minor=5000), e.OrderCancelled)
    assert ev.size_minor == 1000
    assert d.order(oid).cancelled == 1000


def test_negative_size_reduction_is_rejected(d):
    oid = placed_id(d.back("u1", 250, 1000))
    expect_rejected(d, Code.INVALID_SIZE, c.CancelOrder, user="u1", order=oid,
                    size_reduction_minor=-1)


def test_cancelling_another_users_order_is_unknown_order_and_changes_nothing(d):
    oid = placed_id(d.back("u1", 250, 1000))
    expect_rejected(d, Code.UNKNOWN_ORDER, c.CancelOrder, user="u2", order=oid)
    expect_rejected(d, Code.UNKNOWN_ORDER, c.CancelOrder, user="u2", order=oid,
                    size_reduction_minor=100)
    assert d.order(oid).remaining == 1000


def test_cancelling_a_nonexistent_order_is_unknown_order(d):
    expect_rejected(d, Code.UNKNOWN_ORDER, c.CancelOrder, user="u1", order="o999")


# -- replace ----------------------------------------------------------------------------------


def test_replace_moves_the_remainder_to_a_new_order_at_the_new_price(d):
    old = placed_id(d.back("u1", 250, 1000))
    d.lay("u2", 250, 300)
    new = d.next_order_id
    events = d(c.ReplaceOrder, user="u1", order=old, price=260)
    rep = one(events, e.OrderReplaced)
    assert (rep.order, rep.new_order) == (old, new)
    cancelled = one(events, e.OrderCancelled)
    assert (cancelled.order, cancelled.size_minor, cancelled.reason) == (old, 700, "replaced")
    placed = one(events, e.OrderPlaced)
    assert (placed.order, placed.price, placed.size_minor) == (new, 260, 700)
    o_old, o_new = d.order(old), d.order(new)
    assert (o_old.matched, o_old.remaining, o_old.cancelled) == (300, 0, 700)
    assert (o_new.price, o_new.size, o_new.remaining, o_new.side) == (260, 700, 700, c.BACK)
    assert d.book().backs.depth(3) == [(260, 700)]


def test_replace_loses_queue_priority(d):
    moved = placed_id(d.lay("u1", 260, 500))
    waiting = placed_id(d.lay("u2", 250, 500))
    new = d.next_order_id
    d(c.ReplaceOrder, user="u1", order=moved, price=250)
    assert d.book().lays.queue_ahead(d.order(new)) == 500
    assert fills(d.back("u3", 250, 500)) == [(waiting, 250, 500)]
    assert d.order(new).remaining == 500


def test_replace_to_a_crossing_price_matches_at_once(d):
    lay = placed_id(d.lay("u2", 250, 500))
    old = placed_id(d.back("u1", 260, 500))
    events = d(c.ReplaceOrder, user="u1", order=old, price=250)
    assert fills(events) == [(lay, 250, 500)]


def test_replace_keeps_persistence(d):
    old = placed_id(d.back("u1", 250, 500, persistence=c.PERSIST))
    new = d.next_order_id
    d(c.ReplaceOrder, user="u1", order=old, price=260)
    assert d.order(new).persistence == c.PERSIST


def test_replace_of_a_lay_re_holds_at_the_new_liability(d):
    old = placed_id(d.lay("u1", 300, 1000))
    assert d.held("u1") == 2000
    d(c.ReplaceOrder, user="u1", order=old, price=400)
    assert d.held("u1") == 3000


def test_replace_beyond_available_funds_is_rejected(d):
    d.deposit("poor", 1000)
    old = placed_id(d.lay("poor", 200, 1000))  # liability 10.00: everything
    expect_rejected(d, Code.INSUFFICIENT_FUNDS, c.ReplaceOrder, user="poor", order=old,
                    price=202)


def test_replace_of_another_users_order_is_unknown_order(d):
    old = placed_id(d.back("u1", 250, 500))
    expect_rejected(d, Code.UNKNOWN_ORDER, c.ReplaceOrder, user="u2", order=old, price=260)


def test_replace_of_a_complete_order_is_rejected(d):
    d.lay("u2", 250, 500)
    old = placed_id(d.back("u1", 250, 500))
    expect_rejected(d, Code.INVALID_SIZE, c.ReplaceOrder, user="u1", order=old, price=260)


def test_replace_on_a_suspended_market_is_rejected(d):
    old = placed_id(d.back("u1", 250, 500))
    d.status("m1", "suspended")
    expect_rejected(d, Code.MARKET_SUSPENDED, c.ReplaceOrder, user="u1", order=old, price=260)


# -- cancel all -------------------------------------------------------------------------------


def test_cancel_all_in_one_market_leaves_other_markets_and_users_alone(d):
    a = placed_id(d.back("u1", 250, 500))
    b = placed_id(d.lay("u1", 200, 500, selection="s2"))
    other_market = placed_id(d.back("u1", 250, 500, market="m2"))
    other_user = placed_id(d.back("u2", 260, 500))
    events = d(c.CancelAll, user="u1", market="m1")
    assert {ev.order for ev in of_type(events, e.OrderCancelled)} == {a, b}
    assert d.order(a).cancelled == 500 and d.order(b).cancelled == 500
    assert d.order(other_market).remaining == 500
    assert d.order(other_user).remaining == 500
    assert d.hold("u1", "m1") == 0 and d.hold("u1", "m2") == 500


def test_cancel_all_without_a_market_cancels_in_every_market(d):
    a = placed_id(d.back("u1", 250, 500))
    b = placed_id(d.back("u1", 250, 500, market="m2"))
    other_user = placed_id(d.back("u2", 260, 500))
    events = d(c.CancelAll, user="u1")
    assert {ev.order for ev in of_type(events, e.OrderCancelled)} == {a, b}
    assert d.held("u1") == 0
    assert d.order(other_user).remaining == 500


def test_cancel_all_with_nothing_open_changes_nothing(d):
    before = state_fingerprint(d.eng)
    events = d(c.CancelAll, user="u1")
    assert rejection(events) is None
    assert state_fingerprint(d.eng) == before

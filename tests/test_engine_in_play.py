"""In play: LAPSE orders lapse at the in-play turn, PERSIST orders survive; in-play orders wait
out the bet delay before reaching the book and die if the market suspends meanwhile."""

import pytest

from engine import commands as c
from engine import events as e
from engine.market import SUSPENDED

from tests.engine_helpers import Driver, fills, of_type, one, placed_id, rejection

DELAY = 5000


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("u1", "u2", "u3"):
        d.deposit(u, 100_000)
    d.create_market("m1")
    return d


@pytest.fixture
def live(d) -> Driver:
    """An open in-play market with a 5 s bet delay."""
    d.status("m1", in_play=True, bet_delay_ms=DELAY)
    return d


# -- persistence at the in-play turn ----------------------------------------------------------


def test_lapse_orders_lapse_at_the_in_play_turn(d):
    oid = placed_id(d.back("u1", 250, 1000, persistence=c.LAPSE))
    events = d.status("m1", in_play=True)
    ev = one(events, e.OrderLapsed)
    assert (ev.order, ev.size_minor, ev.reason) == (oid, 1000, "in_play")
    o = d.order(oid)
    assert (o.remaining, o.lapsed, o.cancelled) == (0, 1000, 0)
    assert d.book().backs.best is None
    assert d.held("u1") == 0


def test_lapse_is_the_default_persistence(d):
    oid = placed_id(d.back("u1", 250, 1000))
    d.status("m1", in_play=True)
    assert d.order(oid).lapsed == 1000


def test_persist_orders_survive_the_in_play_turn(d):
    oid = placed_id(d.lay("u1", 250, 1000, persistence=c.PERSIST))
    events = d.status("m1", in_play=True)
    assert of_type(events, e.OrderLapsed) == []
    assert d.order(oid).remaining == 1000
    assert d.book().lays.depth(1) == [(250, 1000)]
    assert d.held("u1") == 1500


def test_in_play_turn_lapses_only_the_unmatched_part(d):
    oid = placed_id(d.back("u1", 250, 1000))
    d.lay("u2", 250, 400)
    d.status("m1", in_play=True)
    o = d.order(oid)
    assert (o.matched, o.remaining, o.lapsed) == (400, 0, 600)
    assert d.held("u1") == 400


def test_the_in_play_turn_happens_once(d):
    d.status("m1", in_play=True)
    oid = placed_id(d.back("u1", 250, 1000))
    events = d.status("m1", in_play=True)
    assert of_type(events, e.OrderLapsed) == []
    assert d.order(oid).remaining == 1000


def test_at_close_every_unmatched_order_lapses_persist_too(d):
    lapse = placed_id(d.back("u1", 250, 1000))
    persist = placed_id(d.back("u2", 260, 1000, persistence=c.PERSIST))
    d.status("m1", in_play=True)  # lapse goes here; persist survives
    events = d.status("m1", "closed")
    ev = one(events, e.OrderLapsed)
    assert (ev.order, ev.size_minor, ev.reason) == (persist, 1000, "closed")
    assert d.order(persist).lapsed == 1000 and d.order(lapse).lapsed == 1000
    assert d.held("u2") == 0


# -- bet delay --------------------------------------------------------------------------------


def test_in_play_order_waits_out_the_bet_delay(live):
    d = live
    placed_at = d.ts
    events = d.back("u1", 250, 1000)
    placed = one(events, e.OrderPlaced)
    assert placed.release_ts == placed_at + DELAY
    o = d.order(placed.order)
    assert o.remaining == 1000 and not o.in_book
    assert d.book().backs.best is None
    assert d.held("u1") == 1000  # money is held while it waits
    assert d.eng.next_release_ts() == placed_at + DELAY


def test_delayed_order_is_not_in_the_book_one_ms_early(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000))
    d.advance(DELAY - 1)
    events = d.tick()
    assert of_type(events, e.OrderReleased) == []
    assert d.book().backs.best is None
    assert not d.order(oid).in_book


def test_delayed_order_reaches_the_book_when_its_delay_has_passed(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000))
    d.advance(DELAY)
    events = d.tick()
    assert one(events, e.OrderReleased).order == oid
    assert d.order(oid).in_book and d.order(oid).release_ts == 0
    assert d.book().backs.depth(1) == [(250, 1000)]
    assert d.eng.next_release_ts() is None


def test_a_delayed_order_cannot_be_matched_while_it_waits(live):
    d = live
    d.back("u1", 250, 1000)
    d.advance(DELAY)
    d.tick()  # u1's back rests now
    d.lay("u2", 250, 1000)  # this one waits
    d.advance(1000)
    events = d.back("u3", 250, 1000)  # delayed as well: nothing matches yet
    assert fills(events) == []
    assert d.book().lays.best is None


def test_released_order_matches_like_any_other(live):
    d = live
    d.back("u1", 250, 1000)
    d.advance(DELAY)
    d.tick()
    d.advance(10)
    lay = placed_id(d.lay("u2", 250, 600))
    d.advance(DELAY)
    events = d.tick()
    assert one(events, e.OrderReleased).order == lay
    assert [(p, s) for _, p, s in fills(events)] == [(250, 600)]
    assert d.book().backs.depth(1) == [(250, 400)]


def test_any_later_command_releases_due_orders(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000))
    d.advance(DELAY + 1)
    events = d.deposit("u3", 1)
    assert one(events, e.OrderReleased).order == oid
    assert d.order(oid).in_book


def test_delayed_orders_are_released_in_time_order(live):
    d = live
    first = placed_id(d.lay("u1", 250, 500))
    d.advance(100)
    second = placed_id(d.lay("u2", 250, 500))
    d.advance(DELAY)
    events = d.tick()
    assert [ev.order for ev in of_type(events, e.OrderReleased)] == [first, second]
    assert d.book().lays.queue_ahead(d.order(second)) == 500


def test_delayed_order_is_cancelled_if_the_market_suspends_meanwhile(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000))
    d.advance(1000)
    events = d.status("m1", "suspended")
    ev = one(events, e.OrderCancelled)
    assert (ev.order, ev.size_minor, ev.reason) == (oid, 1000, "suspended")
    assert d.held("u1") == 0
    d.advance(DELAY)
    d.status("m1", "open")
    events = d.tick()
    assert of_type(events, e.OrderReleased) == []
    assert d.book().backs.best is None
    assert d.order(oid).cancelled == 1000


def test_suspension_keeps_orders_that_already_reached_the_book(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000, persistence=c.PERSIST))
    d.advance(DELAY)
    d.tick()
    d.status("m1", "suspended")
    assert d.eng.markets["m1"].status == SUSPENDED
    assert d.order(oid).remaining == 1000 and d.order(oid).in_book


def test_delayed_order_can_be_cancelled_while_it_waits(live):
    d = live
    oid = placed_id(d.back("u1", 250, 1000))
    one(d.cancel("u1", oid), e.OrderCancelled)
    d.advance(DELAY)
    assert of_type(d.tick(), e.OrderReleased) == []
    assert d.book().backs.best is None


def test_delayed_fok_is_checked_when_it_is_released(live):
    d = live
    d.lay("u2", 250, 300, persistence=c.PERSIST)
    d.advance(DELAY)
    d.tick()
    fok = placed_id(d.back("u1", 250, 1000, tif=c.FOK))  # accepted now, judged at release
    d.advance(DELAY)
    events = d.tick()
    assert fills(events) == []
    assert one(events, e.OrderCancelled).reason == "fok"
    assert d.order(fok).cancelled == 1000


def test_bet_delay_applies_only_in_play(d):
    d.status("m1", bet_delay_ms=DELAY)
    oid = placed_id(d.back("u1", 250, 1000))
    assert d.order(oid).in_book
    assert rejection(d.status("m1", in_play=True)) is None


def test_in_play_without_delay_goes_straight_to_the_book(d):
    d.status("m1", in_play=True)
    oid = placed_id(d.back("u1", 250, 1000))
    assert d.order(oid).in_book


def test_replacing_in_play_waits_out_the_delay_again(live):
    d = live
    old = placed_id(d.back("u1", 250, 1000, persistence=c.PERSIST))
    d.advance(DELAY)
    d.tick()
    d.advance(10)
    new = d.next_order_id
    events = d(c.ReplaceOrder, user="u1", order=old, price=260)
    assert one(events, e.OrderPlaced).release_ts == d.ts + DELAY
    assert d.book().backs.best is None
    d.advance(DELAY)
    d.tick()
    assert d.book().backs.depth(1) == [(260, 1000)]
    assert d.order(new).in_book

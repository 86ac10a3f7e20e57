"""Matching: price-time priority, price improvement at the maker's price, partial fills,
multi-level sweeps best first, and a book that is never crossed afterwards."""

import pytest

from engine import commands as c
from engine import events as e
from engine.order import EXECUTABLE, EXECUTION_COMPLETE
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_place_rejected,
    fills,
    of_type,
    one,
    placed_id,
    rejection,
)


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("backer", "layer", "l1", "l2", "l3", "b1", "b2", "b3"):
        d.deposit(u, 1_000_000)
    d.create_market("m1")
    return d


def test_order_that_finds_nothing_rests_in_the_book(d):
    oid = placed_id(d.back("backer", 250, 1000))
    o = d.order(oid)
    assert (o.matched, o.remaining, o.status) == (0, 1000, EXECUTABLE)
    assert d.book().backs.depth(3) == [(250, 1000)]
    assert d.book().lays.depth(3) == []


def test_back_and_lay_at_the_same_price_match(d):
    lay = placed_id(d.lay("layer", 250, 1000))
    events = d.back("backer", 250, 1000)
    back = placed_id(events)
    m = one(events, e.BetMatched)
    assert (m.taker_order, m.taker_side, m.maker_order, m.price, m.size_minor) == (
        back, c.BACK, lay, 250, 1000)
    assert (m.taker_user, m.maker_user) == ("backer", "layer")
    for oid in (lay, back):
        o = d.order(oid)
        assert (o.matched, o.remaining, o.status) == (1000, 0, EXECUTION_COMPLETE)
    assert d.book().lays.best is None and d.book().backs.best is None


def test_earlier_lay_at_the_same_price_fills_first(d):
    first = placed_id(d.lay("l1", 250, 500))
    second = placed_id(d.lay("l2", 250, 500))
    events = d.back("backer", 250, 700)
    assert fills(events) == [(first, 250, 500), (second, 250, 200)]
    assert d.order(first).remaining == 0
    assert d.order(second).remaining == 300


def test_earlier_back_at_the_same_price_fills_first(d):
    first = placed_id(d.back("b1", 300, 400))
    second = placed_id(d.back("b2", 300, 400))
    assert fills(d.lay("layer", 300, 400)) == [(first, 300, 400)]
    assert d.order(second).remaining == 400


def test_better_price_beats_earlier_time(d):
    early = placed_id(d.lay("l1", 240, 500))
    better = placed_id(d.lay("l2", 250, 500))
    assert fills(d.back("backer", 240, 500)) == [(better, 250, 500)]
    assert d.order(early).remaining == 500


def test_back_taker_gets_the_makers_higher_odds(d):
    lay = placed_id(d.lay("layer", 250, 1000))
    events = d.back("backer", 200, 1000)
    m = one(events, e.BetMatched)
    assert (m.maker_order, m.price, m.size_minor) == (lay, 250, 1000)
    assert m.win_minor == 1500  # 10.00 at 2.50, not at 2.00
    back = d.order(placed_id(events))
    assert back.matched_value == 1000 * 250 and back.matched_win == 1500


def test_lay_taker_gets_the_makers_lower_odds(d):
    back = placed_id(d.back("backer", 200, 1000))
    m = one(d.lay("layer", 300, 1000), e.BetMatched)
    assert (m.maker_order, m.price, m.win_minor) == (back, 200, 1000)


def test_price_improvement_lowers_the_layers_hold_to_the_matched_liability(d):
    d.back("backer", 200, 1000)
    d.lay("layer", 300, 1000)  # would risk 20.00 at 3.00, matched at 2.00 risks 10.00
    assert d.hold("layer") == 1000
    assert d.held("layer") == 1000


def test_back_does_not_match_a_lay_at_lower_odds(d):
    d.lay("layer", 240, 1000)
    assert fills(d.back("backer", 250, 1000)) == []
    assert d.book().lays.depth(1) == [(240, 1000)]
    assert d.book().backs.depth(1) == [(250, 1000)]


def test_lay_does_not_match_a_back_at_higher_odds(d):
    d.back("backer", 260, 1000)
    assert fills(d.lay("layer", 250, 1000)) == []
    assert d.book().lays.best == 250 and d.book().backs.best == 260


def test_partial_fill_rests_the_remainder_at_the_takers_price(d):
    lay = placed_id(d.lay("layer", 250, 400))
    events = d.back("backer", 250, 1000)
    back = d.order(placed_id(events))
    assert fills(events) == [(lay, 250, 400)]
    assert (back.matched, back.remaining, back.status) == (400, 600, EXECUTABLE)
    assert d.book().backs.depth(3) == [(250, 600)]
    assert d.book().lays.depth(3) == []


def test_partially_filled_maker_keeps_its_place(d):
    first = placed_id(d.lay("l1", 250, 1000))
    second = placed_id(d.lay("l2", 250, 1000))
    d.back("b1", 250, 300)
    assert fills(d.back("b2", 250, 800)) == [(first, 250, 700), (second, 250, 100)]


def test_back_sweeps_lays_best_price_first(d):
    a = placed_id(d.lay("l1", 230, 500))
    b = placed_id(d.lay("l2", 250, 500))
    c_ = placed_id(d.lay("l3", 240, 500))
    events = d.back("backer", 230, 1200)
    assert fills(events) == [(b, 250, 500), (c_, 240, 500), (a, 230, 200)]
    assert [m.win_minor for m in of_type(events, e.BetMatched)] == [750, 700, 260]
    assert d.order(a).remaining == 300
    assert d.book().lays.depth(3) == [(230, 300)]
    assert d.book().backs.best is None


def test_lay_takes_the_lowest_resting_backs_first(d):
    high = placed_id(d.back("b1", 310, 500))
    low = placed_id(d.back("b2", 300, 500))
    mid = placed_id(d.back("b3", 305, 500))
    events = d.lay("layer", 310, 1200)
    assert fills(events) == [(low, 300, 500), (mid, 305, 500), (high, 310, 200)]
    assert d.book().backs.depth(3) == [(310, 300)]


def test_sweep_stops_at_the_takers_limit_and_rests_the_rest(d):
    d.lay("l1", 250, 500)
    d.lay("l2", 240, 500)
    d.lay("l3", 230, 500)
    events = d.back("backer", 240, 1500)
    assert [(p, s) for _, p, s in fills(events)] == [(250, 500), (240, 500)]
    assert d.book().lays.depth(3) == [(230, 500)]
    assert d.book().backs.depth(3) == [(240, 500)]


def test_book_is_not_crossed_after_a_sweep(d):
    for user, price in (("l1", 250), ("l2", 240), ("l3", 230)):
        d.lay(user, price, 500)
    for user, price in (("b1", 260), ("b2", 270)):
        d.back(user, price, 500)
    d.back("backer", 240, 2000)
    d.lay("layer", 280, 2000)
    for book in d.eng.markets["m1"].books:
        if book.lays.best is not None and book.backs.best is not None:
            assert book.lays.best < book.backs.best


def test_depth_lists_levels_best_first(d):
    for user, price in (("l1", 230), ("l2", 250), ("l3", 240)):
        d.lay(user, price, 100)
    for user, price in (("b1", 300), ("b2", 260), ("b3", 280)):
        d.back(user, price, 100)
    assert d.book().lays.depth(2) == [(250, 100), (240, 100)]
    assert d.book().backs.depth(5) == [(260, 100), (280, 100), (300, 100)]


def test_selections_have_separate_books(d):
    d.lay("layer", 250, 1000, selection="s2")
    assert fills(d.back("backer", 250, 1000, selection="s1")) == []
    assert d.book("s1").backs.depth(1) == [(250, 1000)]
    assert d.book("s2").lays.depth(1) == [(250, 1000)]


def test_taker_matches_against_own_resting_order_consistently(d):
    d.lay("backer", 250, 500)
    events = d.back("backer", 250, 500)
    assert rejection(events) is None
    assert len(fills(events)) == 1


# -- time in force ----------------------------------------------------------------------------


def test_gtc_rests_what_does_not_match(d):
    d.lay("layer", 250, 300)
    back = d.order(placed_id(d.back("backer", 250, 1000, tif=c.GTC)))
    assert (back.matched, back.remaining, back.cancelled) == (300, 700, 0)


def test_fok_fills_the_whole_size_when_available(d):
    d.lay("l1", 250, 600)
    d.lay("l2", 240, 600)
    events = d.back("backer", 240, 1000, tif=c.FOK)
    back = d.order(placed_id(events))
    assert (back.matched, back.remaining, back.cancelled) == (1000, 0, 0)
    assert of_type(events, e.OrderCancelled) == []


def test_fok_with_min_fill_takes_what_is_there_and_cancels_the_rest(d):
    maker = d.next_order_id
    d.lay("l1", 250, 600)
    before = d.available("backer")
    events = d.back("backer", 250, 1000, tif=c.FOK, min_fill_minor=500)
    back = d.order(placed_id(events))
    assert fills(events) == [(maker, 250, 600)]
    assert (back.matched, back.remaining, back.cancelled, back.status) == (
        600, 0, 400, EXECUTION_COMPLETE)
    cancelled = one(events, e.OrderCancelled)
    assert (cancelled.size_minor, cancelled.reason) == (400, "fok")
    assert d.book().backs.best is None  # nothing of a FOK ever rests
    assert d.available("backer") == before - 600


def test_fok_with_min_fill_exactly_available_is_accepted(d):
    d.lay("l1", 250, 500)
    back = d.order(placed_id(d.back("backer", 250, 1000, tif=c.FOK, min_fill_minor=500)))
    assert (back.matched, back.cancelled) == (500, 500)


def test_fok_without_enough_is_rejected_and_changes_nothing(d):
    d.lay("l1", 250, 400)
    d.lay("l2", 230, 400)  # below the limit: does not count
    expect_place_rejected(d, Code.FOK_NOT_FILLED, "backer", c.BACK, 240, 1000, tif=c.FOK)
    expect_place_rejected(d, Code.FOK_NOT_FILLED, "backer", c.BACK, 240, 1000, tif=c.FOK,
                          min_fill_minor=401)
    assert d.book().lays.depth(3) == [(250, 400), (230, 400)]


def test_lay_fok_without_enough_is_rejected(d):
    d.back("b1", 200, 300)
    expect_place_rejected(d, Code.FOK_NOT_FILLED, "layer", c.LAY, 200, 500, tif=c.FOK)


def test_min_fill_larger_than_size_is_invalid(d):
    d.lay("l1", 250, 5000)
    expect_place_rejected(d, Code.INVALID_SIZE, "backer", c.BACK, 250, 1000, tif=c.FOK,
                          min_fill_minor=1001)


def test_min_fill_without_fok_is_a_bad_request(d):
    expect_place_rejected(d, Code.BAD_REQUEST, "backer", c.BACK, 250, 1000, tif=c.GTC,
                          min_fill_minor=500)

"""Queue position: `queue_ahead(order)` is exactly the size resting ahead of it at its price."""

import pytest

from tests.engine_helpers import Driver, placed_id


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("a", "b", "c", "x", "taker"):
        d.deposit(u, 100_000)
    d.create_market("m1")
    return d


@pytest.fixture
def three_lays(d):
    """Lays at 2.50 of 5.00, 3.00 and 2.00, in that order."""
    return d, [placed_id(d.lay(u, 250, size)) for u, size in (("a", 500), ("b", 300), ("c", 200))]


def test_first_in_queue_has_nothing_ahead(three_lays):
    d, (a, b, c_) = three_lays
    assert d.book().lays.queue_ahead(d.order(a)) == 0


def test_queue_ahead_sums_the_orders_placed_earlier_at_the_price(three_lays):
    d, (a, b, c_) = three_lays
    lays = d.book().lays
    assert lays.queue_ahead(d.order(b)) == 500
    assert lays.queue_ahead(d.order(c_)) == 800


def test_orders_at_other_prices_do_not_count(three_lays):
    d, (a, b, c_) = three_lays
    d.lay("x", 260, 1000)
    d.lay("x", 240, 1000)
    assert d.book().lays.queue_ahead(d.order(c_)) == 800


def test_queue_ahead_shrinks_when_an_order_ahead_partially_matches(three_lays):
    d, (a, b, c_) = three_lays
    d.back("taker", 250, 200)
    lays = d.book().lays
    assert d.order(a).remaining == 300
    assert lays.queue_ahead(d.order(b)) == 300
    assert lays.queue_ahead(d.order(c_)) == 600


def test_queue_ahead_shrinks_when_an_order_ahead_fully_matches(three_lays):
    d, (a, b, c_) = three_lays
    d.back("taker", 250, 600)  # all of a, 1.00 of b
    lays = d.book().lays
    assert lays.queue_ahead(d.order(b)) == 0
    assert lays.queue_ahead(d.order(c_)) == 200


def test_queue_ahead_shrinks_when_an_order_ahead_is_cancelled(three_lays):
    d, (a, b, c_) = three_lays
    d.cancel("b", b)
    assert d.book().lays.queue_ahead(d.order(c_)) == 500


def test_queue_ahead_shrinks_when_an_order_ahead_is_reduced(three_lays):
    d, (a, b, c_) = three_lays
    d.cancel("a", a, size_reduction_minor=150)
    lays = d.book().lays
    assert lays.queue_ahead(d.order(b)) == 350
    assert lays.queue_ahead(d.order(c_)) == 650


def test_orders_behind_do_not_count(three_lays):
    d, (a, b, c_) = three_lays
    d.lay("x", 250, 9999)
    assert d.book().lays.queue_ahead(d.order(b)) == 500


def test_queue_ahead_holds_for_backs_too(d):
    first = placed_id(d.back("a", 300, 700))
    second = placed_id(d.back("b", 300, 400))
    third = placed_id(d.back("c", 300, 100))
    d.lay("taker", 300, 250)
    backs = d.book().backs
    assert backs.queue_ahead(d.order(first)) == 0
    assert backs.queue_ahead(d.order(second)) == 450
    assert backs.queue_ahead(d.order(third)) == 850


def test_queue_ahead_stays_exact_after_many_cancellations_ahead(d):
    """Enough dead entries ahead to make the level compact itself."""
    d.deposit("many", 1_000_000)
    ahead = [placed_id(d.lay("many", 250, 100)) for _ in range(40)]
    mine = placed_id(d.lay("x", 250, 100))
    for oid in ahead[:35]:
        d.cancel("many", oid)
    assert d.book().lays.queue_ahead(d.order(mine)) == 500
    d.back("taker", 250, 250)
    assert d.book().lays.queue_ahead(d.order(mine)) == 250

"""The odds ladder as the engine enforces it: on-ladder prices are accepted, anything else is
INVALID_ODDS, and ticks step correctly across band edges."""

import pytest

from engine import commands as c
from engine.rejections import Code
from pricing.ladder import MAX_PRICE, MIN_PRICE, TICKS, is_valid, next_tick, prev_tick

from tests.engine_helpers import Driver, expect_place_rejected, expect_rejected, placed_id, rejection


@pytest.fixture
def d() -> Driver:
    d = Driver()
    d.deposit("u1", 10_000_000)
    d.create_market("m1")
    return d


@pytest.mark.parametrize("price", [201, 299, 301, 401, 1010, 100001, 100, 99, 0, -200])
def test_off_ladder_odds_are_rejected_for_backs(d, price):
    expect_place_rejected(d, Code.INVALID_ODDS, "u1", c.BACK, price, 100)


@pytest.mark.parametrize("price", [201, 100001, 100])
def test_off_ladder_odds_are_rejected_for_lays(d, price):
    expect_place_rejected(d, Code.INVALID_ODDS, "u1", c.LAY, price, 100)


@pytest.mark.parametrize("price", [101, 199, 200, 202, 300, 305, 410, 620, 1050, 2100, 3200,
                                   5500, 11000, 100000])
def test_on_ladder_odds_are_accepted(d, price):
    assert rejection(d.back("u1", price, 100)) is None
    assert d.book().backs.best == price


def test_replace_to_off_ladder_odds_is_rejected(d):
    oid = placed_id(d.back("u1", 250, 100))
    expect_rejected(d, Code.INVALID_ODDS, c.ReplaceOrder, user="u1", order=oid, price=251)


def test_ladder_spans_1_01_to_1000_in_350_ticks():
    assert (MIN_PRICE, MAX_PRICE) == (101, 100000)
    assert len(TICKS) == 350
    assert list(TICKS) == sorted(set(TICKS))
    assert all(is_valid(p) for p in TICKS)


@pytest.mark.parametrize(("edge", "below", "above"), [
    (200, 199, 202),
    (300, 298, 305),
    (400, 395, 410),
    (600, 590, 620),
    (1000, 980, 1050),
    (2000, 1950, 2100),
    (3000, 2900, 3200),
    (5000, 4800, 5500),
    (10000, 9500, 11000),
])
def test_next_and_prev_tick_at_band_edges(edge, below, above):
    assert next_tick(edge) == above
    assert prev_tick(edge) == below
    assert next_tick(below) == edge
    assert prev_tick(above) == edge


def test_no_tick_beyond_the_ends_of_the_ladder():
    assert prev_tick(101) is None
    assert next_tick(100000) is None
    assert next_tick(99000) == 100000
    assert prev_tick(102) == 101

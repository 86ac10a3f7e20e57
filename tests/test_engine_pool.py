"""Pool (parimutuel) markets: stakes form a pool, the house keeps the take, winners share the
rest pro rata rounded down with the breakage to the house; nobody on the winner = refunds."""

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import COMMISSION, HOUSE
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_place_rejected,
    money_moved,
    one,
    placed_id,
)

START = 100_000


@pytest.fixture
def d() -> Driver:
    d = Driver()
    for u in ("a", "b", "c"):
        d.deposit(u, START)
    d.create_market("p1", ("s1", "s2", "s3"), type=c.POOL)
    return d


def pool_bet(d: Driver, user: str, selection: str, stake: int) -> str:
    return placed_id(d.back(user, 200, stake, selection=selection, market="p1"))


def test_a_pool_bet_goes_into_the_pool_at_once(d):
    oid = pool_bet(d, "a", "s1", 700)
    o = d.order(oid)
    assert (o.matched, o.remaining, o.status) == (700, 0, "EXECUTION_COMPLETE")
    assert d.eng.markets["p1"].pool_stakes == [700, 0, 0]
    assert d.book("s1", "p1").backs.best is None


def test_a_pool_bet_holds_its_stake(d):
    pool_bet(d, "a", "s1", 700)
    pool_bet(d, "a", "s2", 300)
    assert d.held("a") == 1000  # unlike an exchange, every pool stake is at risk


def test_a_pool_bet_above_available_is_insufficient_funds(d):
    pool_bet(d, "a", "s1", START - 100)
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "a", c.BACK, 200, 101, market="p1")


def test_laying_on_a_pool_market_is_a_bad_request(d):
    expect_place_rejected(d, Code.BAD_REQUEST, "a", c.LAY, 200, 100, market="p1")


def test_pool_winners_share_the_pool_less_the_take_pro_rata(d):
    pool_bet(d, "a", "s1", 700)
    pool_bet(d, "b", "s1", 1100)
    pool_bet(d, "c", "s2", 1533)
    d.settle("p1", ("s1",))
    # pool 33.33; take 10% = 3.333 -> 3.33; net 30.00 shared over 18.00 on s1:
    #   a: 7.00/18.00 x 30.00 = 11.666.. -> 11.66 (+4.66)
    #   b: 11.00/18.00 x 30.00 = 18.333.. -> 18.33 (+7.33)
    #   c loses 15.33; breakage 30.00 - 29.99 = 0.01 -> house gets 3.34
    (moved,) = money_moved(d, "settlement")
    assert dict(moved.entries) == {"a": 466, "b": 733, "c": -1533, HOUSE: 334}
    assert d.balance("a") == START + 466
    assert d.balance("b") == START + 733
    assert d.balance("c") == START - 1533
    assert d.balance(HOUSE) == 334
    assert d.balance(COMMISSION) == 0  # the take is the house's margin; no commission on pools
    assert all(d.held(u) == 0 for u in ("a", "b", "c"))


def test_pool_take_is_per_market(d):
    d.create_market("p2", ("s1", "s2"), type=c.POOL, take_bp=2000)
    d.back("a", 200, 1000, selection="s1", market="p2")
    d.back("b", 200, 1000, selection="s2", market="p2")
    d.settle("p2", ("s1",))
    # pool 20.00, take 20% = 4.00, a alone on s1 gets 16.00
    (moved,) = money_moved(d, "settlement")
    assert dict(moved.entries) == {"a": 600, "b": -1000, HOUSE: 400}


def test_pool_odds_do_not_matter(d):
    d.back("a", 101, 1000, selection="s1", market="p1")
    d.back("b", 1000, 1000, selection="s1", market="p1")
    d.back("c", 200, 1000, selection="s2", market="p1")
    d.settle("p1", ("s1",))
    (moved,) = money_moved(d, "settlement")
    # pool 30.00, take 3.00, 27.00 split 50/50 -> 13.50 each
    assert dict(moved.entries) == {"a": 350, "b": 350, "c": -1000, HOUSE: 300}


def test_pool_is_refunded_when_nobody_backed_the_winner(d):
    pool_bet(d, "a", "s1", 700)
    pool_bet(d, "b", "s2", 1100)
    events = d.settle("p1", ("s3",))
    assert [ev for ev in events if isinstance(ev, e.MoneyMoved)] == []
    for u in ("a", "b", "c"):
        assert (d.balance(u), d.held(u)) == (START, 0)
    assert d.balance(HOUSE) == 0


def test_a_user_backing_the_winner_and_a_loser_is_paid_the_net(d):
    pool_bet(d, "a", "s1", 1000)
    pool_bet(d, "a", "s2", 1000)
    pool_bet(d, "b", "s2", 2000)
    d.settle("p1", ("s1",))
    # pool 40.00, take 4.00, a alone on s1 gets 36.00 back for 20.00 staked
    (moved,) = money_moved(d, "settlement")
    assert dict(moved.entries) == {"a": 1600, "b": -2000, HOUSE: 400}


def test_voiding_a_pool_refunds_every_stake(d):
    pool_bet(d, "a", "s1", 700)
    pool_bet(d, "b", "s2", 1100)
    d(c.VoidMarket, market="p1")
    for u in ("a", "b"):
        assert (d.balance(u), d.held(u)) == (START, 0)


def test_pool_market_status_rules_apply(d):
    d.status("p1", "suspended")
    expect_place_rejected(d, Code.MARKET_SUSPENDED, "a", c.BACK, 200, 100, market="p1")
    d.status("p1", "closed")
    expect_place_rejected(d, Code.MARKET_NOT_OPEN, "a", c.BACK, 200, 100, market="p1")
    events = d.settle("p1", ("s1",))
    assert one(events, e.MarketSettled).market == "p1"

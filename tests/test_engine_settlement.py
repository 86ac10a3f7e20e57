"""Settlement of exchange markets: win amounts, payouts, commission on net winnings, dead heats,
voids, released holds, and a ledger that balances to the cent."""

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import COMMISSION, EXTERNAL, HOUSE
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_rejected,
    matched_bet,
    money_moved,
    of_type,
    one,
    placed_id,
    rejection,
    settlement_entries,
    two_backers_two_layers,
)

START = 100_000


@pytest.fixture
def d() -> Driver:
    return two_backers_two_layers(START)


def commission_entries(d: Driver) -> dict[str, int]:
    moved = money_moved(d, "commission")
    return dict(moved[0].entries) if moved else {}


# -- win amounts ------------------------------------------------------------------------------


def test_win_amount_is_stake_times_odds_minus_one_rounded_down(d):
    d.lay("l1", 202, 333)
    events = d.back("b1", 202, 333)
    m = one(events, e.BetMatched)
    assert m.win_minor == 339  # 3.33 x 1.02 = 3.3966 -> 3.39
    back, lay = d.order(m.taker_order), d.order(m.maker_order)
    assert back.matched_win == lay.matched_win == 339
    assert d.hold("l1") == 339


def test_backer_profit_equals_layer_liability_at_settlement(d):
    matched_bet(d, "b1", "l1", 202, 333)
    d.settle("m1", ("s1",))
    assert settlement_entries(d) == {"b1": 339, "l1": -339}


@pytest.mark.parametrize(("price", "stake", "win"), [
    (101, 99, 0),  # 0.99 x 0.01 = 0.0099 -> 0.00
    (101, 100, 1),
    (155, 777, 427),  # 7.77 x 0.55 = 4.2735
    (305, 1001, 2052),  # 10.01 x 2.05 = 20.5205
    (100000, 1, 999),  # 0.01 x 999 = 9.99
])
def test_win_amount_examples(d, price, stake, win):
    d.deposit("big", 10_000_000)
    d.lay("big", price, stake)
    assert one(d.back("b1", price, stake), e.BetMatched).win_minor == win


# -- payouts ----------------------------------------------------------------------------------


def test_backer_of_the_winner_gets_stake_plus_win_less_commission(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    assert d.available("b1") == START - 1000
    d.settle("m1", ("s1",))
    # win 20.00; commission 5% = 1.00; the 10.00 stake was only held, so it comes back too
    assert (d.balance("b1"), d.held("b1")) == (START + 2000 - 100, 0)
    assert d.available("b1") - (START - 1000) == 1000 + 2000 - 100


def test_layer_of_the_winner_loses_the_liability(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    d.settle("m1", ("s1",))
    assert (d.balance("l1"), d.held("l1")) == (START - 2000, 0)


def test_backer_of_a_loser_loses_the_stake_and_the_layer_wins_it(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    d.settle("m1", ("s2",))
    assert (d.balance("b1"), d.held("b1")) == (START - 1000, 0)
    assert (d.balance("l1"), d.held("l1")) == (START + 1000 - 50, 0)


def test_settlement_is_one_balanced_movement_between_the_bettors(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    events = d.settle("m1", ("s1",))
    (moved,) = [ev for ev in events if isinstance(ev, e.MoneyMoved) and ev.kind == "settlement"]
    assert (moved.ref, moved.currency) == ("m1", "BDT")
    assert dict(moved.entries) == {"b1": 2000, "l1": -2000}
    assert sum(amount for _, amount in moved.entries) == 0


def test_unmatched_orders_are_not_paid(d):
    d.back("b1", 300, 1000)
    d.lay("l1", 200, 1000, selection="s2")
    d.settle("m1", ("s1",))
    assert money_moved(d, "settlement")[0].entries == ()
    assert d.balance("b1") == START and d.balance("l1") == START


def test_a_user_with_several_bets_is_paid_the_net(d):
    matched_bet(d, "b1", "l1", 300, 1000, selection="s1")  # s1 wins: +20.00
    matched_bet(d, "b1", "l2", 400, 500, selection="s2")  # s1 wins: -5.00
    d.settle("m1", ("s1",))
    assert settlement_entries(d) == {"b1": 1500, "l1": -2000, "l2": 500}


# -- commission -------------------------------------------------------------------------------


def test_commission_is_charged_on_net_winnings_and_goes_to_the_commission_account(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    events = d.settle("m1", ("s1",))
    (fee,) = [ev for ev in events if isinstance(ev, e.MoneyMoved) and ev.kind == "commission"]
    assert dict(fee.entries) == {"b1": -100, COMMISSION: 100}
    assert d.balance(COMMISSION) == 100


def test_commission_is_on_the_net_market_result_not_each_bet(d):
    matched_bet(d, "b1", "l1", 300, 1000, selection="s1")  # +20.00 if s1
    matched_bet(d, "b1", "l2", 300, 1000, selection="s2")  # -10.00 if s1
    d.settle("m1", ("s1",))
    # b1 nets +10.00 -> 0.50; l2 nets +10.00 -> 0.50; l1 lost and pays none
    assert commission_entries(d) == {"b1": -50, "l2": -50, COMMISSION: 100}
    assert d.balance("b1") == START + 1000 - 50
    assert d.balance("l2") == START + 1000 - 50
    assert d.balance("l1") == START - 2000


def test_losers_pay_no_commission(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    d.settle("m1", ("s2",))
    assert commission_entries(d) == {"l1": -50, COMMISSION: 50}
    assert d.balance("b1") == START - 1000


def test_commission_is_rounded_down_to_the_cent(d):
    matched_bet(d, "b1", "l1", 202, 333)
    d.settle("m1", ("s1",))
    assert commission_entries(d) == {"b1": -16, COMMISSION: 16}  # 5% of 3.39 = 0.1695


def test_no_commission_movement_when_nobody_owes_any(d):
    matched_bet(d, "b1", "l1", 101, 100)  # wins 0.01, 5% of which is 0
    d.settle("m1", ("s1",))
    assert money_moved(d, "commission") == []


def test_commission_rate_is_per_market(d):
    d.create_market("m2", ("s1", "s2"), commission_bp=200)
    matched_bet(d, "b1", "l1", 300, 1000, market="m2")
    d.settle("m2", ("s1",))
    assert commission_entries(d) == {"b1": -40, COMMISSION: 40}  # 2% of 20.00


def test_commission_bp_outside_0_to_10000_is_rejected(d):
    expect_rejected(d, Code.BAD_REQUEST, c.CreateMarket, market="m9", event="e", name="n",
                    selections=(("s1", "A"),), commission_bp=10_001)


# -- dead heats -------------------------------------------------------------------------------


def test_dead_heat_pays_the_factor_of_the_stake_at_the_matched_price(d):
    matched_bet(d, "b1", "l1", 300, 1000, selection="s1")
    matched_bet(d, "b2", "l2", 400, 1000, selection="s2")
    d.settle("m1", ("s1", "s2"), dead_heat=(("s1", 1, 2), ("s2", 1, 2)))
    # b1: 5.00 wins at 3.00 (+10.00), 5.00 loses (-5.00) -> +5.00, commission 0.25
    # b2: 5.00 wins at 4.00 (+15.00), 5.00 loses (-5.00) -> +10.00, commission 0.50
    assert settlement_entries(d) == {"b1": 500, "b2": 1000, "l1": -500, "l2": -1000}
    assert commission_entries(d) == {"b1": -25, "b2": -50, COMMISSION: 75}
    assert d.balance("b1") == START + 500 - 25
    assert d.balance("b2") == START + 1000 - 50
    assert d.balance("l1") == START - 500
    assert d.balance("l2") == START - 1000
    assert d.balance(HOUSE) == 0


def test_dead_heat_backer_of_a_non_winner_still_loses(d):
    matched_bet(d, "b1", "l1", 300, 1000, selection="s3")
    d.settle("m1", ("s1", "s2"), dead_heat=(("s1", 1, 2), ("s2", 1, 2)))
    assert settlement_entries(d) == {"b1": -1000, "l1": 1000}


def test_several_winners_without_factors_share_one_place_equally(d):
    matched_bet(d, "b1", "l1", 300, 1000, selection="s1")
    d.settle("m1", ("s1", "s2"))
    assert settlement_entries(d) == {"b1": 500, "l1": -500}


def test_dead_heat_with_an_odd_cent_rounds_each_result_down(d):
    matched_bet(d, "b1", "l1", 305, 1001, selection="s1")  # win 20.52 (20.5205 rounded down)
    d.settle("m1", ("s1", "s2"), dead_heat=(("s1", 1, 2), ("s2", 1, 2)))
    # b1: 5.005 wins its half of 20.52 (+10.26), 5.005 loses -> +5.255: rounded down to 5.25
    # l1: -5.255 rounded down to -5.26; the cent between them is the house's breakage
    assert settlement_entries(d) == {"b1": 525, "l1": -526, HOUSE: 1}
    assert commission_entries(d) == {"b1": -26, COMMISSION: 26}  # 5% of 5.25 = 0.2625


def test_dead_heat_breakage_goes_to_the_house(d):
    matched_bet(d, "b1", "l1", 250, 1000, selection="s1")
    d.settle("m1", ("s1", "s2", "s3"))  # three-way dead heat, 1/3 each
    # b1: 3.333.. wins at 2.50 (+5.00), 6.666.. loses -> -1.666..: floored to -1.67
    # l1: +1.666.. floored to +1.66; the cent left over is the house's
    assert settlement_entries(d) == {"b1": -167, "l1": 166, HOUSE: 1}
    assert commission_entries(d) == {"l1": -8, COMMISSION: 8}


@pytest.mark.parametrize("dead_heat", [
    (("s1", 1, 2),),  # does not cover s2
    (("s1", 1, 2), ("s2", 1, 3)),  # does not sum to one
    (("s1", 1, 2), ("s3", 1, 2)),  # s3 did not win
    (("s1", 0, 2), ("s2", 2, 2)),  # zero factor
    (("s1", 1, 0), ("s2", 1, 2)),  # zero denominator
    (("s1", 1, 2), ("s1", 1, 2), ("s2", 1, 2)),  # s1 twice
])
def test_malformed_dead_heat_factors_are_rejected(d, dead_heat):
    matched_bet(d, "b1", "l1", 300, 1000)
    expect_rejected(d, Code.BAD_REQUEST, c.SettleMarket, market="m1", winners=("s1", "s2"),
                    dead_heat=dead_heat)


# -- void -------------------------------------------------------------------------------------


def test_void_returns_everything(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    matched_bet(d, "b2", "l2", 250, 700, selection="s2")
    before = {u: d.balance(u) for u in ("b1", "b2", "l1", "l2")}
    events = d(c.VoidMarket, market="m1")
    assert of_type(events, e.MoneyMoved) == []
    for u in ("b1", "b2", "l1", "l2"):
        assert (d.balance(u), d.held(u)) == (before[u], 0)
    assert d.balance(COMMISSION) == 0 and d.balance(HOUSE) == 0


def test_void_lapses_unmatched_orders(d):
    oid = placed_id(d.back("b1", 300, 1000))
    events = d(c.VoidMarket, market="m1")
    ev = one(events, e.OrderLapsed)
    assert (ev.order, ev.size_minor, ev.reason) == (oid, 1000, "voided")
    assert d.book().backs.best is None


def test_void_from_suspended_is_allowed(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    d.status("m1", "suspended")
    assert rejection(d(c.VoidMarket, market="m1")) is None
    assert d.held("b1") == 0


# -- holds and the ledger ---------------------------------------------------------------------


def test_all_holds_of_the_market_are_zero_after_settlement(d):
    matched_bet(d, "b1", "l1", 300, 1000)
    d.back("b2", 400, 500, selection="s2")
    d.lay("l2", 200, 500, selection="s3", persistence=c.PERSIST)
    d.settle("m1", ("s2",))
    for pos in d.eng.markets["m1"].positions.values():
        assert pos.hold == 0
    for u in ("b1", "b2", "l1", "l2"):
        assert d.held(u) == 0


def test_settlement_releases_only_that_markets_holds(d):
    d.create_market("m2", ("s1", "s2"))
    matched_bet(d, "b1", "l1", 300, 1000)
    d.back("b1", 300, 700, market="m2")
    d.settle("m1", ("s1",))
    assert d.held("b1") == 700


def test_ledger_balances_through_a_whole_market_lifecycle():
    d = Driver()
    users = ("a", "b", "c", "x")
    for i, u in enumerate(users):
        d.deposit(u, 50_000 + i * 1111)
    d.create_market("m1", ("s1", "s2", "s3"))
    d.lay("a", 202, 333)
    d.back("b", 202, 500)  # 3.33 matched, 1.67 rests
    d.lay("c", 305, 1001, selection="s2")
    d.back("x", 300, 2000, selection="s2")
    d.lay(HOUSE, 410, 1234, selection="s3")
    d.back("a", 400, 999, selection="s3")
    d.back("c", 202, 700)
    d.lay("x", 202, 900)
    d(c.RequestWithdrawal, user="x", currency="BDT", amount_minor=1234)
    d.settle("m1", ("s1", "s2"), dead_heat=(("s1", 2, 3), ("s2", 1, 3)))
    d(c.ApproveWithdrawal, withdrawal=f"w{d.seq - 1}")

    for moved in money_moved(d):
        assert sum(amount for _, amount in moved.entries) == 0
    total = sum(w.balance for w in d.eng.wallets.values())
    assert total == 0
    deposits = sum(50_000 + i * 1111 for i in range(len(users)))
    assert d.balance(EXTERNAL) == -deposits + 1234
    assert sum(d.balance(u) for u in users) + d.balance(HOUSE) + d.balance(COMMISSION) == (
        deposits - 1234)
    assert all(w.held == 0 for w in d.eng.wallets.values())


def test_the_house_pays_no_commission_on_its_winnings(d):
    d.lay(HOUSE, 300, 1000)
    d.back("b1", 300, 1000)
    d.settle("m1", ("s2",))
    assert settlement_entries(d) == {"b1": -1000, HOUSE: 1000}
    assert money_moved(d, "commission") == []
    assert d.balance(HOUSE) == 1000

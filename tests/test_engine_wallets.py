"""Wallets and exposure: what is held for backs and lays, hedges and dutch books that free money,
INSUFFICIENT_FUNDS that changes nothing, and held = market holds + pending withdrawals."""

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import EXTERNAL, HOUSE
from engine.money import MAX_MINOR
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    expect_place_rejected,
    expect_rejected,
    placed_id,
    rejection,
)


@pytest.fixture
def d() -> Driver:
    d = Driver()
    d.create_market("m1", ("s1", "s2"))
    return d


# -- holds ------------------------------------------------------------------------------------


def test_back_holds_its_stake(d):
    d.deposit("u1", 5000)
    d.back("u1", 300, 1000)
    assert (d.balance("u1"), d.held("u1"), d.available("u1")) == (5000, 1000, 4000)


def test_lay_holds_its_liability(d):
    d.deposit("u1", 5000)
    d.lay("u1", 300, 1000)  # 10.00 at 3.00 risks 20.00
    assert (d.held("u1"), d.available("u1")) == (2000, 3000)


def test_lay_liability_is_rounded_down_to_the_cent(d):
    d.deposit("u1", 5000)
    d.lay("u1", 202, 333)  # 3.33 x 1.02 = 3.3966
    assert d.held("u1") == 339


def test_hold_stays_the_same_when_the_bet_matches_at_its_own_price(d):
    d.deposit("b", 5000)
    d.deposit("l", 5000)
    d.lay("l", 300, 1000)
    d.back("b", 300, 1000)
    assert d.held("b") == 1000
    assert d.held("l") == 2000


def test_back_with_exactly_the_available_balance_is_accepted(d):
    d.deposit("u1", 1000)
    assert rejection(d.back("u1", 300, 1000)) is None
    assert d.available("u1") == 0


def test_back_above_available_is_insufficient_funds_and_changes_nothing(d):
    d.deposit("u1", 1000)
    d.back("u1", 300, 600)
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "u1", c.BACK, 300, 401)


def test_lay_whose_liability_exceeds_available_is_insufficient_funds(d):
    d.deposit("u1", 1999)
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "u1", c.LAY, 300, 1000)


def test_user_without_a_wallet_cannot_bet_and_gets_no_wallet(d):
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "nobody", c.BACK, 300, 100)
    assert ("nobody", "BDT") not in d.eng.wallets
    assert "nobody" not in d.eng.markets["m1"].positions


def test_zero_or_negative_size_is_invalid(d):
    d.deposit("u1", 1000)
    expect_place_rejected(d, Code.INVALID_SIZE, "u1", c.BACK, 300, 0)
    expect_place_rejected(d, Code.INVALID_SIZE, "u1", c.BACK, 300, -100)


def test_a_size_or_deposit_above_the_wire_maximum_is_invalid(d):
    """The engine keeps money in C long long (engine.pxd): amounts beyond what the wire carries
    are refused as bad input, never left to overflow, and the wire maximum itself is fine."""
    d(c.Deposit, user="u1", currency="BDT", amount_minor=MAX_MINOR, ref="big")
    assert d.balance("u1") == MAX_MINOR
    expect_rejected(d, Code.INVALID_SIZE, c.Deposit, user="u2", currency="BDT",
                    amount_minor=MAX_MINOR + 1, ref="bigger")
    expect_rejected(d, Code.INVALID_SIZE, c.Deposit, user="u2", currency="BDT",
                    amount_minor=2**70, ref="huge")
    expect_place_rejected(d, Code.INVALID_SIZE, "u1", c.BACK, 300, MAX_MINOR + 1)
    expect_place_rejected(d, Code.INVALID_SIZE, "u1", c.LAY, 300, 2**70)
    placed_id(d.back("u1", 101, MAX_MINOR))


def test_unknown_side_is_a_bad_request(d):
    d.deposit("u1", 1000)
    expect_place_rejected(d, Code.BAD_REQUEST, "u1", "buy", 300, 100)


def test_unmatched_backs_on_different_selections_hold_the_worst_case(d):
    d.deposit("u1", 5000)
    d.back("u1", 300, 1000, selection="s1")
    d.back("u1", 300, 1000, selection="s2")
    # whichever wins, at worst the other selection's stake is lost (the winner's can only win)
    assert d.held("u1") == 1000


def test_unmatched_back_and_lay_on_one_selection_do_not_net(d):
    """Unmatched orders count at their worst: neither may match."""
    d.deposit("u1", 5000)
    d.back("u1", 300, 1000)
    d.lay("u1", 200, 1000)
    # s1 wins: back unmatched (0) + lay matched (-10.00); s1 loses: back matched (-10.00)
    assert d.held("u1") == 1000


# -- hedging and dutching ---------------------------------------------------------------------


@pytest.fixture
def hedged(d):
    """u backs 10.00 at 3.00 (matched), then lays 10.00 at 2.00 (matched)."""
    for user in ("u", "layer", "backer"):
        d.deposit(user, 10_000)
    d.lay("layer", 300, 1000)
    d.back("u", 300, 1000)
    return d


def test_matched_back_holds_the_stake_before_the_hedge(hedged):
    # outcomes: s1 wins +20.00, s2 wins -10.00
    assert hedged.held("u") == 1000
    assert hedged.available("u") == 9000


def test_hedging_lay_after_a_matched_back_frees_the_money(hedged):
    d = hedged
    d.back("backer", 200, 1000)
    d.lay("u", 200, 1000)
    # back: s1 +20.00 / s2 -10.00; lay at 2.00: s1 -10.00 / s2 +10.00
    # net: s1 +10.00, s2 0.00 -> hold max(0, -min(1000, 0)) = 0
    pos = d.eng.markets["m1"].positions["u"]
    assert [pos.edge[i] + pos.const for i in range(2)] == [1000, 0]
    assert d.hold("u") == 0
    assert d.held("u") == 0
    assert d.available("u") == 10_000


def test_hedging_lay_needs_no_extra_funds_while_unmatched(hedged):
    d = hedged
    events = d(c.RequestWithdrawal, user="u", currency="BDT", amount_minor=9000)
    assert rejection(events) is None
    assert d.available("u") == 0
    # unmatched lay at 2.00: s1 wins +20.00 - 10.00; s2 wins -10.00 -> still 10.00 held
    assert rejection(d.lay("u", 200, 1000)) is None
    assert d.hold("u") == 1000


def test_partial_hedge_frees_part_of_the_hold(hedged):
    d = hedged
    d.back("backer", 200, 400)
    d.lay("u", 200, 1000)
    # matched lay 4.00 at 2.00 (liability 4.00), unmatched 6.00 (liability 6.00)
    # s1 wins: +20.00 - 4.00 - 6.00 = +10.00; s2 wins: -10.00 + 4.00 = -6.00
    assert d.hold("u") == 600


def test_dutching_every_selection_holds_less_than_the_stakes(d):
    d.deposit("u", 10_000)
    d.deposit("layer", 10_000)
    d.lay("layer", 250, 1000, selection="s1")
    d.lay("layer", 250, 1000, selection="s2")
    d.back("u", 250, 1000, selection="s1")
    d.back("u", 250, 1000, selection="s2")
    # either winner: +15.00 - 10.00 = +5.00 -> nothing at risk
    assert d.hold("u") == 0
    # the layer: -15.00 + 10.00 = -5.00 whichever wins
    assert d.hold("layer") == 500


def test_dutching_three_selections_at_short_odds_holds_the_worst_loss():
    d = Driver()
    d.create_market("m1", ("s1", "s2", "s3"))
    d.deposit("u", 10_000)
    d.deposit("layer", 10_000)
    for s in ("s1", "s2", "s3"):
        d.lay("layer", 250, 1000, selection=s)
        d.back("u", 250, 1000, selection=s)
    # s_k wins: +15.00 - 10.00 - 10.00 = -5.00; stakes sum to 30.00
    assert d.hold("u") == 500
    assert d.held("u") == 500 < 3000
    # layer: s_k wins: -15.00 + 10.00 + 10.00 = +5.00
    assert d.hold("layer") == 0


def test_bets_in_different_markets_do_not_net(d):
    d.create_market("m2", ("s1", "s2"))
    d.deposit("u", 10_000)
    d.back("u", 300, 1000, market="m1")
    d.lay("u", 300, 1000, market="m2")
    assert d.held("u") == 1000 + 2000


def test_held_is_the_sum_of_market_holds_and_pending_withdrawals(d):
    d.create_market("m2", ("s1", "s2"))
    d.deposit("u", 10_000)
    d.deposit("x", 10_000)
    d.back("u", 300, 1000, market="m1")
    d.lay("u", 250, 1000, market="m2")
    d.lay("x", 300, 400, market="m1")  # partly matches u's back
    d(c.RequestWithdrawal, user="u", currency="BDT", amount_minor=700)
    markets = d.eng.markets
    assert d.held("u") == markets["m1"].positions["u"].hold + markets["m2"].positions["u"].hold + 700
    assert d.held("u") == 1000 + 1500 + 700


def test_house_is_exempt_from_the_funds_check(d):
    assert rejection(d.lay(HOUSE, 300, 100_000)) is None
    assert d.held(HOUSE) == 200_000


# -- deposits ---------------------------------------------------------------------------------


def test_deposit_credits_the_user_from_external(d):
    events = d.deposit("u1", 2500, ref="pay-1")
    moved = [ev for ev in events if isinstance(ev, e.MoneyMoved)]
    assert len(moved) == 1
    assert (moved[0].kind, moved[0].ref) == ("deposit", "pay-1")
    assert sorted(moved[0].entries) == [(EXTERNAL, -2500), ("u1", 2500)]
    assert d.balance("u1") == 2500 and d.balance(EXTERNAL) == -2500


def test_repeated_deposit_ref_credits_once(d):
    d.deposit("u1", 2500, ref="pay-1")
    events = d.deposit("u1", 2500, ref="pay-1")
    assert [type(ev) for ev in events] == [e.DepositRepeated]
    assert (events[0].ref, events[0].user) == ("pay-1", "u1")
    assert d.balance("u1") == 2500


def test_deposit_ref_reused_with_another_amount_is_duplicate_ref(d):
    d.deposit("u1", 2500, ref="pay-1")
    expect_rejected(d, Code.DUPLICATE_REF, c.Deposit, user="u1", currency="BDT",
                    amount_minor=2600, ref="pay-1")
    expect_rejected(d, Code.DUPLICATE_REF, c.Deposit, user="u2", currency="BDT",
                    amount_minor=2500, ref="pay-1")
    assert d.balance("u1") == 2500


def test_deposit_must_be_positive_and_carry_a_ref(d):
    expect_rejected(d, Code.INVALID_SIZE, c.Deposit, user="u1", currency="BDT",
                    amount_minor=0, ref="pay-0")
    expect_rejected(d, Code.BAD_REQUEST, c.Deposit, user="u1", currency="BDT",
                    amount_minor=100, ref="")


def test_no_deposit_into_system_accounts(d):
    expect_rejected(d, Code.FORBIDDEN, c.Deposit, user=HOUSE, currency="BDT",
                    amount_minor=100, ref="pay-h")


# -- withdrawals ------------------------------------------------------------------------------


@pytest.fixture
def rich(d):
    d.deposit("u1", 10_000)
    return d


def test_withdrawal_request_holds_the_amount(rich):
    d = rich
    events = d(c.RequestWithdrawal, user="u1", currency="BDT", amount_minor=4000)
    req = [ev for ev in events if isinstance(ev, e.WithdrawalRequested)][0]
    assert (req.withdrawal, req.amount_minor) == (f"w{d.seq}", 4000)
    assert (d.balance("u1"), d.held("u1"), d.available("u1")) == (10_000, 4000, 6000)


def test_held_withdrawal_money_cannot_be_bet(rich):
    d = rich
    d(c.RequestWithdrawal, user="u1", currency="BDT", amount_minor=9500)
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "u1", c.BACK, 200, 501)


def test_approved_withdrawal_moves_the_money_to_external(rich):
    d = rich
    d(c.RequestWithdrawal, user="u1", currency="BDT", amount_minor=4000)
    wid = f"w{d.seq}"
    events = d(c.ApproveWithdrawal, withdrawal=wid)
    moved = [ev for ev in events if isinstance(ev, e.MoneyMoved)][0]
    assert moved.kind == "withdrawal"
    assert sorted(moved.entries) == [(EXTERNAL, 4000), ("u1", -4000)]
    assert (d.balance("u1"), d.held("u1")) == (6000, 0)
    assert d.balance(EXTERNAL) == -6000


def test_rejected_withdrawal_releases_the_hold(rich):
    d = rich
    d(c.RequestWithdrawal, user="u1", currency="BDT", amount_minor=4000)
    d(c.RejectWithdrawal, withdrawal=f"w{d.seq}")
    assert (d.balance("u1"), d.held("u1"), d.available("u1")) == (10_000, 0, 10_000)


def test_withdrawal_above_available_is_insufficient_funds(rich):
    d = rich
    d.back("u1", 200, 3000)
    expect_rejected(d, Code.INSUFFICIENT_FUNDS, c.RequestWithdrawal, user="u1",
                    currency="BDT", amount_minor=7001)
    assert rejection(d(c.RequestWithdrawal, user="u1", currency="BDT",
                       amount_minor=7000)) is None


def test_withdrawal_can_be_finished_once(rich):
    d = rich
    d(c.RequestWithdrawal, user="u1", currency="BDT", amount_minor=4000)
    wid = f"w{d.seq}"
    d(c.ApproveWithdrawal, withdrawal=wid)
    expect_rejected(d, Code.BAD_REQUEST, c.ApproveWithdrawal, withdrawal=wid)
    expect_rejected(d, Code.BAD_REQUEST, c.RejectWithdrawal, withdrawal=wid)
    expect_rejected(d, Code.BAD_REQUEST, c.ApproveWithdrawal, withdrawal="w999")


def test_withdrawal_of_nothing_is_invalid(rich):
    expect_rejected(rich, Code.INVALID_SIZE, c.RequestWithdrawal, user="u1", currency="BDT",
                    amount_minor=0)


# -- holds after partial fills ----------------------------------------------------------------


def test_partly_matched_lay_holds_matched_and_unmatched_liability(d):
    d.deposit("u", 10_000)
    d.deposit("backer", 10_000)
    d.back("backer", 250, 400)
    d.lay("u", 300, 1000)
    # matched 4.00 at 2.50: liability 6.00; unmatched 6.00 at 3.00: liability 12.00
    # s1 wins: -6.00 - 12.00 = -18.00; s2 wins: +4.00
    assert d.hold("u") == 1800
    assert d.held("backer") == 400


def test_partly_matched_back_holds_the_whole_stake_at_worst(d):
    d.deposit("u", 10_000)
    d.deposit("layer", 10_000)
    d.lay("layer", 250, 400)
    d.back("u", 200, 1000)
    # matched 4.00 at 2.50 wins 6.00; unmatched 6.00 at 2.00
    # s1 wins: +6.00 (+0 unmatched); s2 wins: -4.00 - 6.00 = -10.00
    assert d.hold("u") == 1000
    assert d.hold("layer") == 600


def test_cancelling_the_unmatched_part_shrinks_the_hold_to_the_matched_risk(d):
    d.deposit("u", 10_000)
    d.deposit("backer", 10_000)
    d.back("backer", 250, 400)
    oid = placed_id(d.lay("u", 300, 1000))
    d.cancel("u", oid)
    assert d.hold("u") == 600
    assert d.held("u") == 600


def test_wallets_are_per_currency(d):
    d.deposit("u", 10_000, currency="USD")
    expect_place_rejected(d, Code.INSUFFICIENT_FUNDS, "u", c.BACK, 200, 100)
    d.create_market("usd", ("s1", "s2"), currency="USD")
    assert rejection(d.back("u", 200, 100, market="usd")) is None
    assert d.held("u", "USD") == 100
    assert d.held("u", "BDT") == 0

"""Non-runners (`RemoveSelection`): a selection that will not run is removed with a reduction
factor. Its unmatched orders lapse and its matched bets are void; every bet matched earlier on
the other selections has its odds reduced by the factor (Betfair's rule: odds x (1 - factor),
never below 1.01), fill by fill, the win amount recomputed as matching computes it; a factor of
2.5% or more also lapses the unmatched lays on the others; holds are the worst case of the
outcomes that are left."""

import pickle

import pytest

from engine import commands as c
from engine import events as e
from engine.engine import HOUSE, Engine
from engine.market import Market
from engine.money import reduced_price, win_amount
from engine.positions import cashout_quote, pnl
from engine.rejections import Code

from tests.engine_helpers import (
    Driver,
    accepted,
    expect_place_rejected,
    expect_rejected,
    house_resting,
    matched_bet,
    of_type,
    one,
    rejection,
    settlement_entries,
    state_fingerprint,
    two_backers_two_layers,
)

START = 100_000


@pytest.fixture
def d() -> Driver:
    return two_backers_two_layers(START)


# -- the reduced price -----------------------------------------------------------------------


@pytest.mark.parametrize("price, bp, reduced", [
    (800, 2500, 600),  # Betfair's own example: 8.0 with a 25% factor becomes 6.0
    (252, 1234, 220),  # 2.52 x 0.8766 = 2.209... rounded down to the hundredth
    (105, 9000, 101),  # never below 1.01
    (101, 5000, 101),
    (340, 0, 340),  # a zero factor changes nothing
])
def test_the_reduced_price_is_odds_times_one_minus_the_factor_rounded_down(price, bp, reduced):
    assert reduced_price(price, bp) == reduced


# -- the removed selection --------------------------------------------------------------------


def test_the_removed_selections_unmatched_orders_lapse_and_free_their_hold(d):
    back = accepted(d.back("b1", 300, 2_000, selection="s3"))
    lay = accepted(d.lay("l1", 250, 1_000, selection="s3"))
    assert d.held("b1") == 2_000 and d.held("l1") == 1_500
    events = d.remove("s3", 1_000)
    lapsed = {ev.order: (ev.size_minor, ev.reason) for ev in of_type(events, e.OrderLapsed)}
    assert lapsed == {back: (2_000, "removed"), lay: (1_000, "removed")}
    assert d.order(back).lapsed == 2_000 and d.order(lay).lapsed == 1_000
    assert d.held("b1") == d.held("l1") == 0
    assert not d.book("s3").backs.levels and not d.book("s3").lays.levels


def test_the_removed_selections_matched_bets_are_void_stakes_back_nothing_paid(d):
    matched_bet(d, "b1", "l1", 400, 1_000, selection="s3")  # void: s3 does not run
    matched_bet(d, "b2", "l2", 200, 1_000, selection="s1")
    d.remove("s3")
    assert d.held("b1") == d.held("l1") == 0  # nothing at risk on a void bet
    d.settle(winners=("s1",))
    settled = settlement_entries(d)
    assert "b1" not in settled and "l1" not in settled  # void: stakes kept, nothing paid
    assert settled["b2"] == 1_000 and settled["l2"] == -1_000
    assert d.balance("b1") == d.balance("l1") == START


def test_an_order_on_a_removed_selection_is_refused_and_changes_nothing(d):
    d.remove("s3")
    rejected = expect_place_rejected(d, Code.SELECTION_REMOVED, "b1", c.BACK, 300, 100,
                                     selection="s3")
    assert "s3" in rejected.reason
    d.status("m1", "suspended")  # market state comes first, as the error table says
    expect_place_rejected(d, Code.MARKET_SUSPENDED, "b1", c.BACK, 300, 100, selection="s3")


def test_a_removed_selection_cannot_win_or_be_priced(d):
    d.remove("s3")
    expect_rejected(d, Code.SELECTION_REMOVED, c.SettleMarket, market="m1", winners=("s3",))
    expect_rejected(d, Code.SELECTION_REMOVED, c.SetPrices, market="m1",
                    prices=(("s1", 200), ("s2", 300), ("s3", 900)))
    expect_rejected(d, Code.BAD_REQUEST, c.SetPrices, market="m1", prices=(("s1", 200),))
    assert rejection(d(c.SetPrices, market="m1", prices=(("s1", 200), ("s2", 300)))) is None
    assert rejection(d.settle(winners=("s1",))) is None


# -- repricing the others ---------------------------------------------------------------------


def test_earlier_bets_on_the_others_are_repriced_by_the_factor_and_settle_at_it(d):
    back, lay = matched_bet(d, "b1", "l1", 800, 1_000)
    assert d.order(back).matched_win == 7_000 and d.held("l1") == 7_000
    events = d.remove("s3", 2_500)
    repriced = one(events, e.BetRepriced)
    assert (repriced.was_price, repriced.price, repriced.win_minor) == (800, 600, 5_000)
    assert (repriced.taker_order, repriced.maker_order) == (back, lay)
    for oid in (back, lay):
        o = d.order(oid)
        assert (o.matched_win, o.matched_value) == (5_000, 600 * 1_000)
    assert d.held("l1") == 5_000 and d.held("b1") == 1_000  # the layer's liability shrank
    d.settle(winners=("s1",))
    settled = settlement_entries(d)
    assert settled == {"b1": 5_000, "l1": -5_000}


def test_each_fill_is_repriced_on_its_own_with_its_own_rounded_win(d):
    # one back order matched in two fills: the win is recomputed per fill, as matching does
    d.lay("l1", 252, 333)
    d.lay("l2", 250, 777)
    back = accepted(d.back("b1", 250, 1_110))
    d.remove("s3", 1_234)
    wins = [ev.win_minor for ev in of_type(d.event_log[-1], e.BetRepriced)]
    assert wins == [win_amount(333, 220), win_amount(777, reduced_price(250, 1_234))]
    assert d.order(back).matched_win == sum(wins)  # not win_amount(1_110, average)


def test_bets_matched_after_a_removal_keep_their_price(d):
    d.remove("s3", 2_500)
    back, _ = matched_bet(d, "b1", "l1", 800, 1_000)
    assert d.order(back).matched_win == 7_000


def test_successive_removals_compound_on_bets_matched_before_both(d):
    d.create_market("m2", ("a", "b", "c", "d"))
    d.lay("l1", 800, 1_000, selection="a", market="m2")
    back = accepted(d.back("b1", 800, 1_000, selection="a", market="m2"))
    d.remove("c", 2_500, market="m2")
    d.lay("l2", 800, 1_000, selection="a", market="m2")
    later = accepted(d.back("b2", 800, 1_000, selection="a", market="m2"))
    d.remove("d", 2_500, market="m2")
    assert d.order(back).matched_value == 450 * 1_000  # 8.00 -> 6.00 -> 4.50
    assert d.order(later).matched_value == 600 * 1_000  # matched after the first: 8.00 -> 6.00


def test_a_dutched_position_needs_no_hold_once_the_only_losing_outcome_is_gone(d):
    matched_bet(d, "b1", "l1", 300, 1_000, selection="s1")
    matched_bet(d, "b1", "l2", 300, 1_000, selection="s2")
    assert d.held("b1") == 2_000  # s3 winning loses both stakes
    d.remove("s3")
    assert d.held("b1") == 0  # whichever of s1 and s2 wins, b1 is level or better
    matched, _ = pnl(d.eng, "m1", "b1")
    assert matched == [1_000, 1_000]  # the running selections only


def test_a_users_first_order_after_a_removal_holds_only_for_outcomes_that_can_happen(d):
    d.remove("s3")
    accepted(d.lay("l1", 200, 1_000, selection="s1"))
    assert d.held("l1") == 1_000  # s1 wins: liability; s2 wins: +0 unmatched; no s3 outcome
    accepted(d.back("l1", 300, 600, selection="s2"))
    assert d.held("l1") == 1_000 + 600


# -- the unmatched orders on the others -------------------------------------------------------


def test_unmatched_orders_on_the_others_keep_their_prices_below_the_material_factor(d):
    back = accepted(d.back("b1", 300, 1_000, selection="s1"))
    lay = accepted(d.lay("l1", 250, 1_000, selection="s2"))
    events = d.remove("s3", 249)
    assert not of_type(events, e.OrderLapsed)
    assert d.order(back).remaining == d.order(lay).remaining == 1_000
    assert d.order(lay).price == 250


def test_a_material_factor_lapses_the_unmatched_lays_on_the_others_but_not_the_backs(d):
    back = accepted(d.back("b1", 300, 1_000, selection="s1"))
    lay = accepted(d.lay("l1", 250, 1_000, selection="s2"))
    part = accepted(d.lay("l2", 250, 1_000, selection="s1"))
    accepted(d.back("b2", 250, 400, selection="s1"))  # part of l2's lay is matched
    events = d.remove("s3", 250)
    lapsed = {ev.order: (ev.size_minor, ev.reason) for ev in of_type(events, e.OrderLapsed)}
    assert lapsed == {lay: (1_000, "removed"), part: (600, "removed")}
    assert d.order(back).remaining == 1_000
    assert d.order(part).matched == 400  # what was matched stands (repriced)


# -- the house --------------------------------------------------------------------------------


def test_the_house_requotes_the_runners_at_its_prices_after_a_small_factor(d):
    d(c.SetMarketLimits, market="m1", max_liability_minor=10_000)
    d(c.SetPrices, market="m1", prices=(("s1", 200), ("s2", 300), ("s3", 600)))
    assert house_resting(d, "s3")
    d.remove("s3", 100)
    assert not house_resting(d, "s3")
    assert house_resting(d, "s1") and house_resting(d, "s2")
    q = d.eng.markets["m1"].quotes
    assert q.offered[2] == 0 and q.offered[0] and q.offered[1]


def test_after_a_material_factor_the_house_quotes_again_only_once_prices_are_set(d):
    d(c.SetMarketLimits, market="m1", max_liability_minor=10_000)
    d(c.SetPrices, market="m1", prices=(("s1", 200), ("s2", 300), ("s3", 600)))
    accepted(d.back("b1", 190, 500, selection="s1"))  # takes a house lay: the house has a bet
    d.remove("s3", 2_000)
    assert not any(house_resting(d, s) for s in ("s1", "s2", "s3"))
    d(c.SetMarketLimits, market="m1", max_liability_minor=20_000)  # a requote: still no price
    assert not any(house_resting(d, s) for s in ("s1", "s2", "s3"))
    d(c.SetPrices, market="m1", prices=(("s1", 170), ("s2", 240)))
    assert house_resting(d, "s1") and house_resting(d, "s2") and not house_resting(d, "s3")
    assert d.hold(HOUSE) <= 20_000


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fields, code", [
    ({"market": "nope", "selection": "s1"}, Code.UNKNOWN_MARKET),
    ({"market": "m1", "selection": "nope"}, Code.UNKNOWN_SELECTION),
    ({"market": "m1", "selection": "s1", "reduction_bp": 10_000}, Code.BAD_REQUEST),
    ({"market": "m1", "selection": "s1", "reduction_bp": -1}, Code.BAD_REQUEST),
    ({"market": "pool", "selection": "a"}, Code.BAD_REQUEST),
    ({"market": "done", "selection": "a"}, Code.MARKET_NOT_OPEN),
    ({"market": "two", "selection": "a"}, Code.BAD_REQUEST),  # the last running one
    ({"market": "m1", "selection": "s3"}, Code.SELECTION_REMOVED),
])
def test_a_bad_removal_is_refused_with_its_code_and_changes_nothing(d, fields, code):
    d.create_market("pool", ("a", "b"), type=c.POOL)
    d.create_market("done", ("a", "b"))
    d.settle(market="done", winners=("b",))
    d.create_market("two", ("a", "b"))
    d.remove("b", market="two")
    matched_bet(d, "b1", "l1", 300, 1_000)
    d.remove("s3", 500)
    expect_rejected(d, code, c.RemoveSelection, **fields)


def test_a_closed_market_takes_a_late_non_runner_before_it_is_settled(d):
    back, _ = matched_bet(d, "b1", "l1", 800, 1_000)
    d.status("m1", "closed")
    assert rejection(d.remove("s2", 2_500)) is None
    assert d.order(back).matched_win == 5_000
    d.settle(winners=("s1",))
    assert settlement_entries(d) == {"b1": 5_000, "l1": -5_000}


def test_conservation_holds_through_removal_and_settlement_to_the_minor_unit(d):
    for price, size, sel in ((252, 333, "s1"), (340, 777, "s2"), (510, 101, "s3"),
                             (202, 999, "s1")):
        matched_bet(d, "b1", "l1", price, size, selection=sel)
        matched_bet(d, "b2", "l2", price, size + 1, selection=sel)
    d.remove("s3", 1_777)
    d.settle(winners=("s2",))
    users = sum(d.balance(u) for u in ("b1", "b2", "l1", "l2"))
    house_and_fees = sum(d.balance(a) for a in ("house", "commission"))
    assert users + house_and_fees == 4 * START  # balances sum to zero with external's -4 x START


# -- P&L and cash out see only the runners ----------------------------------------------------


def test_pnl_and_cash_out_leave_the_removed_selection_out(d):
    matched_bet(d, "b1", "l1", 300, 1_000, selection="s1")
    d.back("b2", 200, 5_000, selection="s1")  # what b1 can lay to cash out
    d.remove("s2", 0)
    matched, with_unmatched = pnl(d.eng, "m1", "b1")
    assert len(matched) == len(with_unmatched) == 2
    quote = cashout_quote(d.eng, "m1", "b1")
    assert len(quote.pnl_before) == len(quote.pnl_after) == 2
    assert [leg.selection for leg in quote.legs] == ["s1"]


# -- replay and old snapshots -----------------------------------------------------------------


def test_replay_of_a_session_with_removals_gives_the_same_events_and_state(d):
    matched_bet(d, "b1", "l1", 800, 1_000)
    accepted(d.back("b2", 300, 500, selection="s2"))
    d.remove("s3", 2_500)
    matched_bet(d, "b2", "l2", 600, 500)
    d.remove("s2", 1_000)
    again = Engine(d.eng.config)
    for cmd, events in zip(d.log, d.event_log):
        assert again.apply(cmd) == events
    assert state_fingerprint(again) == state_fingerprint(d.eng)
    restored = pickle.loads(pickle.dumps(d.eng))
    restored.validate()
    assert state_fingerprint(restored) == state_fingerprint(d.eng)
    assert [f[2:] for f in restored.markets["m1"].fills] == [
        f[2:] for f in d.eng.markets["m1"].fills]


def _as_old_snapshot(engine: Engine) -> Engine:
    """The engine restored as from a snapshot taken before markets kept removals, start times
    and fills (their pickled state lacked those slots)."""
    state = pickle.loads(pickle.dumps(engine.__getstate__()))
    markets = {}
    for mid, m in state["markets"].items():
        slots = dict(m.__reduce__()[2][1])
        for name in ("removed", "start_ts", "fills"):
            del slots[name]
        old = Market.__new__(Market)
        old.__setstate__((None, slots))
        markets[mid] = old
    state["markets"] = markets
    restored = Engine.__new__(Engine)
    restored.__setstate__(state)
    return restored


def test_a_market_from_an_old_snapshot_that_matched_nothing_records_its_fills_from_then_on(d):
    d.create_market("m2", ("a", "b", "c"))
    matched_bet(d, "b1", "l1", 300, 1_000)
    old = _as_old_snapshot(d.eng)
    assert old.markets["m1"].fills is None  # matched before fills were kept: unknown
    assert old.markets["m2"].fills == []  # nothing matched yet: nothing unknown
    assert old.markets["m1"].removed == {} and old.markets["m1"].start_ts is None
    old.validate()


def test_a_market_whose_fills_are_unknown_refuses_a_reduction_but_takes_a_zero_factor(d):
    matched_bet(d, "b1", "l1", 300, 1_000)
    old = _as_old_snapshot(d.eng)
    before = state_fingerprint(old)
    refused = old.apply(c.RemoveSelection(seq=d.seq + 1, ts=d.ts, market="m1",
                                          selection="s3", reduction_bp=500))
    assert rejection(refused).code == Code.BAD_REQUEST and state_fingerprint(old) == before
    taken = old.apply(c.RemoveSelection(seq=d.seq + 2, ts=d.ts, market="m1", selection="s3"))
    assert rejection(taken) is None and not of_type(taken, e.BetRepriced)
    old.validate()

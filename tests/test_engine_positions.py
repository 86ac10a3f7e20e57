"""A bettor's P&L per outcome and the cash-out quote (engine/positions.py), as specifications.

Matched P&L per selection is what settlement would pay if that selection won (checked by
settling pickled copies of the engine, before commission); the cash-out quote is, to the minor
unit, what executing it leaves (cancel the user's unmatched orders, then one FOK order per leg,
each recomputed against the state it meets), with money conserved and validate() holding.
"""

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.positions import cashout_quote, hedge, matched_pnl, pnl
from engine.rejections import Code, Rejected
from pricing.ladder import TICKS
from tests.engine_helpers import CUR, Driver, accepted, of_type, rejection

SELECTIONS = ("s1", "s2", "s3")
PRICES = tuple(TICKS[i] for i in range(90, 125))  # 1.91 .. 2.50: dense, so orders cross
OTHERS = ("bob", "carol", "dave")
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

orders = st.lists(st.tuples(st.sampled_from(("alice",) + OTHERS), st.sampled_from(SELECTIONS),
                            st.sampled_from((c.BACK, c.LAY)), st.sampled_from(PRICES),
                            st.integers(1, 5_000)), min_size=4, max_size=40)
# what others leave resting (or match) afterwards: the book a cash out trades against
books = st.lists(st.tuples(st.sampled_from(OTHERS), st.sampled_from(SELECTIONS),
                           st.sampled_from((c.BACK, c.LAY)), st.sampled_from(PRICES),
                           st.integers(1, 5_000)), max_size=20)


def _session(trades, commission_bp: int = 0) -> Driver:
    d = Driver()
    d.create_market("m1", selections=SELECTIONS, commission_bp=commission_bp)
    for user in ("alice",) + OTHERS:
        d.deposit(user, 10_000_000)
    for user, sel, side, price, size in trades:
        d.place(user, side, price, size, selection=sel)
    return d


def _settled_copy(d: Driver, winner: str):
    twin = pickle.loads(pickle.dumps(d.eng))
    events = twin.apply(c.SettleMarket(seq=d.seq + 1, ts=d.ts, market="m1", winners=(winner,),
                                       dead_heat=()))
    assert rejection(events) is None
    twin.validate()
    return twin, events


def _paid(d: Driver, twin, events, user: str) -> int:
    """The user's balance change at settlement, commission added back."""
    fee = sum(-amount for ev in of_type(events, e.MoneyMoved) if ev.kind == "commission"
              for acct, amount in ev.entries if acct == user)
    w = twin.wallets[(user, CUR)]
    return w.balance - d.balance(user) + fee


# -- P&L per selection ------------------------------------------------------------------------


@SETTINGS
@given(trades=orders, commission_bp=st.sampled_from((0, 500)))
def test_matched_pnl_of_each_selection_is_what_settlement_pays_if_it_wins(trades, commission_bp):
    d = _session(trades, commission_bp)
    users = list(d.eng.markets["m1"].positions)
    pnls = {user: pnl(d.eng, "m1", user)[0] for user in users}
    for k, winner in enumerate(SELECTIONS):
        twin, events = _settled_copy(d, winner)
        for user in users:
            assert _paid(d, twin, events, user) == pnls[user][k], (user, winner)


@SETTINGS
@given(trades=orders)
def test_pnl_with_unmatched_is_the_worst_case_the_hold_covers(trades):
    d = _session(trades)
    m = d.eng.markets["m1"]
    for user, pos in m.positions.items():
        matched, with_unmatched = pnl(d.eng, "m1", user)
        assert all(w <= mt for w, mt in zip(with_unmatched, matched)), "unmatched only costs"
        assert max(0, -min(with_unmatched)) == pos.hold


def test_pnl_of_a_user_without_bets_is_zero_everywhere():
    d = _session([])
    assert pnl(d.eng, "m1", "nobody") == ([0, 0, 0], [0, 0, 0])


def test_pnl_of_a_back_and_its_lay_hedge():
    d = _session([])
    accepted(d.lay("bob", 300, 1_000))
    accepted(d.back("alice", 300, 1_000))  # alice: +20.00 if s1 wins, -10.00 otherwise
    assert pnl(d.eng, "m1", "alice")[0] == [2_000, -1_000, -1_000]
    accepted(d.lay("alice", 250, 1_000, selection="s2"))  # resting: at worst -15.00 if s2 wins
    assert pnl(d.eng, "m1", "alice") == ([2_000, -1_000, -1_000], [2_000, -2_500, -1_000])


def test_pnl_and_cash_out_refuse_unknown_pool_and_settled_markets():
    d = _session([])
    d(c.CreateMarket, market="pool", event="e", name="p", type=c.POOL,
      selections=(("a", "A"), ("b", "B")))
    for market, code in (("nope", Code.UNKNOWN_MARKET), ("pool", Code.BAD_REQUEST)):
        with pytest.raises(Rejected) as refused:
            pnl(d.eng, market, "alice")
        assert refused.value.code == code
        with pytest.raises(Rejected):
            cashout_quote(d.eng, market, "alice")
    d.settle("m1", ("s1",))
    with pytest.raises(Rejected) as refused:
        cashout_quote(d.eng, "m1", "alice")
    assert refused.value.code == Code.MARKET_NOT_OPEN


@pytest.mark.parametrize("num,den", [(0, 1), (2, 1), (1, 0), (-1, 2)])
def test_a_fraction_outside_zero_to_one_is_refused(num, den):
    d = _session([])
    with pytest.raises(Rejected) as refused:
        cashout_quote(d.eng, "m1", "alice", num, den)
    assert refused.value.code == Code.BAD_REQUEST


# -- cash out ---------------------------------------------------------------------------------


def execute(d: Driver, user: str, num: int = 1, den: int = 1) -> list:
    """What the `cashout` op does: cancel the user's unmatched orders on the market, then for
    each selection the hedge recomputed against the state it meets, as a FOK order."""
    d(c.CancelAll, user=user, market="m1")
    legs = []
    m = d.eng.markets["m1"]
    for sel in range(len(m.selection_ids)):
        pos = m.positions[user]
        leg = hedge(m, user, sel, pos.win[sel], pos.lose[sel], num, den)
        if leg is None:
            continue
        events = d.place(user, leg.side, leg.price, leg.size_minor,
                         selection=leg.selection, tif=c.FOK)
        assert rejection(events) is None, rejection(events)
        fills = tuple((ev.price, ev.size_minor) for ev in of_type(events, e.BetMatched))
        assert fills == leg.fills
        legs.append(leg)
    return legs


def _total(d: Driver) -> int:
    return sum(w.balance for w in d.eng.wallets.values())


@SETTINGS
@given(trades=orders, book=books,
       fraction=st.sampled_from(((1, 1), (1, 2), (1, 3), (3, 4))))
def test_executing_a_cash_out_quote_leaves_exactly_the_quoted_pnl(trades, book, fraction):
    d = _session(trades + book)
    if "alice" not in d.eng.markets["m1"].positions:
        return
    quote = cashout_quote(d.eng, "m1", "alice", *fraction)
    assert quote.pnl_before == tuple(pnl(d.eng, "m1", "alice")[0])
    total = _total(d)
    legs = execute(d, "alice", *fraction)
    assert tuple(legs) == quote.legs
    matched, with_unmatched = pnl(d.eng, "m1", "alice")
    assert tuple(matched) == quote.pnl_after
    assert with_unmatched == matched, "nothing of alice's is left unmatched"
    assert _total(d) == total  # Driver validates every command (holds, books, sizes) too


@SETTINGS
@given(trades=orders)
def test_a_full_cash_out_against_a_deep_book_locks_the_same_pnl_on_every_outcome(trades):
    d = _session(trades)
    if "alice" not in d.eng.markets["m1"].positions:
        return
    d.deposit("eve", 10**9)
    for sel in SELECTIONS:  # plenty on both sides of every selection, from someone else
        accepted(d.back("eve", 400, 1_000_000, selection=sel))
        accepted(d.lay("eve", 150, 1_000_000, selection=sel))
    quote = cashout_quote(d.eng, "m1", "alice")
    execute(d, "alice")
    after = pnl(d.eng, "m1", "alice")[0]
    # each selection ends within one minor unit of stake of flat: outcomes differ by rounding.
    # A back takes lays dearest first, so what it left is less than a unit at its last price;
    # a lay takes backs cheapest first, and may have used up a maker exactly and found the next
    # level too dear for even one unit: what it left is less than a unit there (eve's 4.00 at
    # the most)
    pos = d.eng.markets["m1"].positions["alice"]
    for leg in quote.legs:
        bound = leg.price if leg.side == c.BACK else 400
        assert abs(pos.win[leg.sel] - pos.lose[leg.sel]) * 100 < bound
    assert max(after) - min(after) <= 2 * len(SELECTIONS) * 4


def test_cash_out_of_a_winning_back_lays_at_the_current_price_and_locks_the_profit():
    d = _session([])
    accepted(d.lay("bob", 300, 1_000))
    accepted(d.back("alice", 300, 1_000))  # backed s1 at 3.00 for 10.00
    accepted(d.back("carol", 200, 5_000))  # s1 now 2.00 to lay
    quote = cashout_quote(d.eng, "m1", "alice")
    (leg,) = quote.legs
    assert (leg.selection, leg.side, leg.price, leg.size_minor) == ("s1", c.LAY, 200, 1_500)
    assert quote.pnl_after == (500, 500, 500)  # 5.00 whatever wins
    execute(d, "alice")
    assert pnl(d.eng, "m1", "alice")[0] == [500, 500, 500]


def test_a_half_cash_out_trades_half_and_leaves_the_rest_riding():
    d = _session([])
    accepted(d.lay("bob", 300, 1_000))
    accepted(d.back("alice", 300, 1_000))
    accepted(d.back("carol", 200, 5_000))
    quote = cashout_quote(d.eng, "m1", "alice", 1, 2)
    assert [(leg.side, leg.size_minor) for leg in quote.legs] == [(c.LAY, 750)]
    assert quote.pnl_after == (1_250, -250, -250)


def test_cash_out_skips_the_users_own_resting_orders_and_lists_them_as_cancelled():
    d = _session([])
    accepted(d.lay("bob", 300, 1_000))
    accepted(d.back("alice", 300, 1_000))
    own = accepted(d.back("alice", 190, 2_000))  # alice's own back, the best to lay against
    accepted(d.back("carol", 200, 5_000))
    quote = cashout_quote(d.eng, "m1", "alice")
    assert quote.cancels == (own,)
    assert quote.legs[0].fills == ((200, 1_500),)
    execute(d, "alice")
    assert pnl(d.eng, "m1", "alice")[0] == list(quote.pnl_after)


def test_with_nothing_to_trade_against_a_quote_has_no_legs_and_changes_nothing():
    d = _session([])
    accepted(d.lay("bob", 300, 1_000))
    accepted(d.back("alice", 300, 1_000))
    quote = cashout_quote(d.eng, "m1", "alice")
    assert quote.legs == () and quote.pnl_after == quote.pnl_before


def test_matched_pnl_formula():
    assert matched_pnl([2_000, 0], [-1_000, 0]) == [2_000, -1_000]

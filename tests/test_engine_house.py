"""House quoting: trader prices -> margin -> house LAY (and optionally BACK) orders in the book,
sized from the liability cap, shaded as liability builds, suspended at the cap.

The house is an ordinary account in the book (`HOUSE`), exempt from the funds check but never
from its liability cap. Its quote orders have ids "o<seq>.<n>". A house LAY of stake x at price p
risks x * (p - 100) // 100 if the selection wins; its worst case over all outcomes is its hold.
The cap bounds the unrounded x * (p - 100) / 100 too, summed over every fill: quote stakes round
down, so no fill takes the house past its cap by even a fraction of a cent.
"""

from fractions import Fraction

import pytest

from engine import commands as c
from engine import events as e
from engine.config import EngineConfig
from engine.engine import HOUSE
from engine.rejections import Code
from pricing.ladder import is_valid, next_tick, prev_tick
from tests.engine_helpers import (
    Driver,
    accepted,
    market_limits,
    expect_denied,
    expect_place_denied,
    fills,
    house_resting,
    of_type,
    one,
    rejection,
)

RICH = 10_000_000
CAP = 10_000  # 100.00: the market's house liability cap in most tests
EVEN = (("s1", 300), ("s2", 300), ("s3", 300))  # a fair 3-way book: 1/3 + 1/3 + 1/3


def liability(size: int, price: int) -> int:
    return size * (price - 100) // 100


def exact_liability(size: int, price: int) -> Fraction:
    """What a LAY of `size` at `price` risks before rounding: stake x (odds - 1)."""
    return Fraction(size * (price - 100), 100)


def largest_within(size: int, price: int, limit_minor: int) -> bool:
    """`size` is the largest LAY stake at `price` whose unrounded liability fits the limit."""
    return exact_liability(size, price) <= limit_minor < exact_liability(size + 1, price)


def make_driver(cap: int | None = CAP, **config) -> Driver:
    d = Driver(config=EngineConfig(velocity_orders_max=0, **config))
    d.create_market("m1", ("s1", "s2", "s3"))
    d.deposit("b1", RICH)
    d.deposit("b2", RICH)
    if cap is not None:
        market_limits(d, max_liability_minor=cap)
    return d


@pytest.fixture
def d() -> Driver:
    return make_driver()


def set_prices(d: Driver, prices=EVEN, margin_bp: int = 0, market: str = "m1") -> list[e.Event]:
    events = d(c.SetPrices, market=market, prices=tuple(prices), margin_bp=margin_bp)
    assert rejection(events) is None, events
    return events


def house_lay(d: Driver, selection: str = "s1") -> tuple[str, int, int] | None:
    """The house's one resting lay on a selection (id, price, remaining), or None."""
    resting = house_resting(d, selection)
    assert len(resting) <= 1, resting
    return resting[0] if resting else None


def house_lay_price(d: Driver, selection: str = "s1") -> int | None:
    lay = house_lay(d, selection)
    return lay[1] if lay else None


def house_worst_case(d: Driver) -> int:
    """max(0, -min outcome) over the house's matched bets and resting quotes."""
    pos = d.eng.markets["m1"].positions.get(HOUSE)
    if pos is None:
        return 0
    return pos.needed_hold()


def suspend_s1(d: Driver) -> list[e.Event]:
    """Back all of the house's s1 quote at 3.00: liability 5000 x 2.00 = exactly the cap."""
    set_prices(d)
    assert house_lay(d)[1:] == (300, 5000)
    return d.back("b1", 300, 5000)


# -- prices: margin, ladder, the house's lay quotes -------------------------------------------


PRICES = (("s1", 250), ("s2", 333), ("s3", 500))  # fair: 0.4 + 0.3003 + 0.2 = 0.9003


def test_prices_set_reports_the_fair_prices_and_the_margin(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    assert (ev.market, ev.fair, ev.margin_bp) == ("m1", PRICES, 800)


def test_offered_prices_are_on_the_ladder(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    assert [sid for sid, _ in ev.offered] == ["s1", "s2", "s3"]
    assert all(is_valid(price) for _, price in ev.offered)


def test_offered_prices_are_never_above_fair(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    fair = dict(PRICES)
    assert all(price <= fair[sid] for sid, price in ev.offered)


def test_offered_book_has_at_least_the_margin_as_overround(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    assert sum(Fraction(100, price) for _, price in ev.offered) >= Fraction(108, 100)


def test_zero_margin_on_an_exact_fair_book_offers_the_fair_prices(d):
    ev = one(set_prices(d, EVEN, margin_bp=0), e.PricesSet)
    assert ev.offered == EVEN


def test_house_rests_a_lay_at_each_offered_price(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        assert d.book(sid).lays.best == price
        assert house_lay_price(d, sid) == price


def test_house_posts_no_back_quotes_by_default(d):
    set_prices(d, PRICES, margin_bp=800)
    for sid, _ in PRICES:
        assert house_resting(d, sid, is_back=True) == []


def test_house_quote_ids_are_the_command_seq_and_a_counter(d):
    events = set_prices(d)
    placed = [ev.order for ev in of_type(events, e.OrderPlaced)]
    assert len(placed) == 3
    assert all(oid.startswith(f"o{d.seq}.") for oid in placed)
    assert len(set(placed)) == 3


def test_bettor_backing_a_house_quote_is_matched_at_the_offered_price(d):
    offered = dict(one(set_prices(d, PRICES, margin_bp=800), e.PricesSet).offered)
    events = d.back("b1", offered["s2"], 1000, selection="s2")
    match = one(events, e.BetMatched)
    assert (match.maker_user, match.price, match.size_minor) == (HOUSE, offered["s2"], 1000)


def test_bettor_asking_less_is_matched_at_the_better_house_price(d):
    offered = dict(one(set_prices(d, PRICES, margin_bp=800), e.PricesSet).offered)
    match = one(d.back("b1", 150, 1000, selection="s3"), e.BetMatched)
    assert (match.maker_user, match.price) == (HOUSE, offered["s3"])


def test_bettor_asking_more_than_offered_is_not_matched(d):
    offered = dict(one(set_prices(d, PRICES, margin_bp=800), e.PricesSet).offered)
    events = d.back("b1", next_tick(offered["s1"]), 1000)
    assert fills(events) == []


# -- quote sizes: the liability cap -----------------------------------------------------------


def test_each_house_lay_risks_at_most_the_market_cap(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        _, at, size = house_lay(d, sid)
        assert at == price
        assert exact_liability(size, price) <= CAP


def test_each_house_lay_is_the_largest_that_fits_the_cap(d):
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        _, _, size = house_lay(d, sid)
        assert exact_liability(size + 1, price) > CAP


def test_without_a_market_cap_the_config_default_sizes_the_quotes():
    d = make_driver(cap=None, house_default_liability_minor=50_000)
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        _, _, size = house_lay(d, sid)
        assert largest_within(size, price, 50_000)


def test_lower_per_selection_cap_sizes_the_quotes(d):
    market_limits(d, selection_max_liability_minor=4_000)
    ev = one(set_prices(d, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        _, _, size = house_lay(d, sid)
        assert largest_within(size, price, 4_000)


def test_house_worst_case_after_quoting_is_within_the_cap(d):
    set_prices(d, PRICES, margin_bp=800)
    assert 0 < house_worst_case(d) <= CAP
    assert d.hold(HOUSE) == house_worst_case(d)


def test_house_quotes_with_a_zero_balance(d):
    set_prices(d)
    assert d.balance(HOUSE) == 0
    assert d.held(HOUSE) == CAP  # exempt from funds: held above its balance
    assert len(house_resting(d, "s1")) == 1


def test_bettor_backing_more_than_the_quote_gets_only_the_quote(d):
    set_prices(d)
    events = d.back("b1", 300, 8000)
    assert sum(size for _, _, size in fills(events)) == 5000
    assert house_worst_case(d) <= CAP


# -- re-pricing -------------------------------------------------------------------------------


def test_repricing_cancels_the_old_house_quotes_as_requoted(d):
    set_prices(d)
    old = [house_lay(d, sid)[0] for sid in ("s1", "s2", "s3")]
    events = set_prices(d, PRICES, margin_bp=500)
    cancelled = {ev.order: ev for ev in of_type(events, e.OrderCancelled)}
    assert set(cancelled) == set(old)
    assert all(ev.reason == "requoted" and ev.user == HOUSE for ev in cancelled.values())
    assert all(d.order(oid).remaining == 0 for oid in old)


def test_repricing_rests_new_house_quotes_at_the_new_prices(d):
    set_prices(d)
    ev = one(set_prices(d, PRICES, margin_bp=500), e.PricesSet)
    for sid, price in ev.offered:
        oid, at, _ = house_lay(d, sid)
        assert at == price
        assert oid.startswith(f"o{d.seq}.")


def test_repricing_leaves_no_house_order_at_the_old_price(d):
    set_prices(d)
    set_prices(d, (("s1", 400), ("s2", 250), ("s3", 400)))
    assert 300 not in d.book("s1").lays.levels
    assert d.held(HOUSE) <= CAP


def test_repricing_keeps_matched_house_bets(d):
    set_prices(d)
    d.back("b1", 300, 1000)
    set_prices(d, PRICES, margin_bp=500)
    assert d.eng.markets["m1"].positions[HOUSE].win[0] == -2000


def test_repricing_sizes_new_quotes_from_what_is_left_of_the_cap(d):
    set_prices(d)
    d.back("b1", 300, 1000)  # house now loses 20.00 if s1 wins, wins 10.00 otherwise
    ev = one(set_prices(d), e.PricesSet)
    price = dict(ev.offered)["s1"]
    _, _, size = house_lay(d)
    assert largest_within(size, price, CAP - 2000)
    assert house_worst_case(d) <= CAP


def test_bettors_own_orders_are_untouched_by_repricing(d):
    set_prices(d)
    oid = accepted(d.lay("b1", 400, 1000, selection="s2"))
    set_prices(d, PRICES, margin_bp=500)
    assert d.order(oid).remaining == 1000


# -- the cap is a hard bound: stakes round down -------------------------------------------------


def evens_quoted_at_194(cap: int) -> Driver:
    """A two-way market at fair evens with a 3% margin: the house offers 1.94 on both."""
    d = make_driver(cap=None)
    d.create_market("m2", ("s1", "s2"))
    market_limits(d, "m2", max_liability_minor=cap)
    ev = one(set_prices(d, (("s1", 200), ("s2", 200)), margin_bp=300, market="m2"), e.PricesSet)
    assert ev.offered == (("s1", 194), ("s2", 194))
    return d


def house_lay_liability(events: list[e.Event]) -> Fraction:
    """What the house's LAYs matched in `events` risk (as maker or taker), each fill unrounded."""
    return sum((exact_liability(ev.size_minor, ev.price) for ev in of_type(events, e.BetMatched)
                if HOUSE in (ev.maker_user, ev.taker_user)
                and (ev.taker_user == HOUSE) == (ev.taker_side == c.LAY)), Fraction(0))


def test_a_quote_at_1_94_under_a_100_00_cap_risks_at_most_100_00():
    d = evens_quoted_at_194(10_000)
    (_, price, size), = house_resting(d, "s1", "m2")
    assert (price, size) == (194, 10_638)  # 106.39, as quoted before, risked 100.0066
    assert exact_liability(size, price) <= 10_000


def test_fills_of_house_quotes_under_a_30_00_cap_never_sum_past_30_00():
    d = evens_quoted_at_194(3_000)
    events = []
    for size in (100, 100, 5_000):  # 1.00, 1.00, then all that is left
        events += d.back("b1", 194, size, market="m2")
    assert len(fills(events)) == 3
    assert house_lay_liability(events) <= 3_000  # 30.0048 before stakes rounded down


def test_a_requote_takes_off_what_rounding_left_out_of_the_fills_before_it():
    d = evens_quoted_at_194(3_000)
    events = []
    for _ in range(10):  # each 0.01 at 1.94 risks 0.0094 and books 0.00
        events += d.back("b1", 194, 1, market="m2")
    events += d.back("b1", 194, 1_600, market="m2")  # past half the cap: re-quoted at 1.93
    (_, price, size), = house_resting(d, "s1", "m2")
    # 30.00 - 15.04 booked - the 0.094 that rounding left out (counted as 0.10) leaves 14.86
    assert (price, size) == (193, 1_486 * 100 // 93)
    events += d.back("b1", 101, 5_000, market="m2")
    assert house_lay_liability(events) <= 3_000  # 30.0884 if sized from the booked 15.04


# -- shading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backed, price", [
    (2499, 300),  # liability 49.98: under 1/2 of the cap
    (2500, 298),  # 50.00 = 1/2: one tick down
    (3749, 298),  # 74.98: under 3/4
    (3750, 296),  # 75.00 = 3/4: two ticks
    (4499, 296),  # 89.98: under 9/10
    (4500, 292),  # 90.00 = 9/10: four ticks
])
def test_house_price_moves_down_as_liability_crosses_the_thresholds(d, backed, price):
    set_prices(d)
    d.back("b1", 300, backed)
    assert house_lay_price(d) == price


def test_house_price_steps_down_one_two_four_ticks_as_bettors_keep_backing(d):
    set_prices(d)
    d.back("b1", 300, 2500)  # liability 50.00
    assert house_lay_price(d) == prev_tick(300, 1)
    d.back("b2", 298, 1263)  # + 25.00 = 75.00
    assert house_lay_price(d) == prev_tick(300, 2)
    d.back("b1", 296, 766)  # + 15.01 = 90.01
    assert house_lay_price(d) == prev_tick(300, 4)
    assert house_worst_case(d) <= CAP


def test_shaded_quote_is_sized_from_what_is_left_of_the_cap(d):
    set_prices(d)
    d.back("b1", 300, 2500)
    _, price, size = house_lay(d)
    assert largest_within(size, price, CAP - 5000)


def test_shading_only_moves_the_backed_selection(d):
    set_prices(d)
    d.back("b1", 300, 4500)
    assert (house_lay_price(d, "s2"), house_lay_price(d, "s3")) == (300, 300)


def test_shading_requotes_the_old_house_lay_as_requoted(d):
    set_prices(d)
    old = house_lay(d)[0]
    events = d.back("b1", 300, 2500)
    assert one(events, e.OrderCancelled).order == old
    assert one(events, e.OrderCancelled).reason == "requoted"


def test_shading_keeps_the_margin_it_started_from(d):
    set_prices(d, EVEN, margin_bp=500)
    start = house_lay_price(d)
    d.back("b1", start, CAP // 2 * 100 // (start - 100) + 1)
    assert house_lay_price(d) == prev_tick(start, 1)


def test_custom_thresholds_come_from_the_config():
    d = make_driver(shading_thresholds=(((1, 10), 3),))
    set_prices(d)
    d.back("b1", 300, 500)  # liability 10.00 = 1/10
    assert house_lay_price(d) == prev_tick(300, 3)


# -- suspension at the cap --------------------------------------------------------------------


def test_reaching_the_cap_suspends_the_selection(d):
    events = suspend_s1(d)
    ev = one(events, e.SelectionSuspended)
    assert (ev.market, ev.selection, ev.house_liability_minor) == ("m1", "s1", CAP)


def test_suspended_selection_has_no_house_quote(d):
    suspend_s1(d)
    assert house_resting(d, "s1") == []
    assert house_resting(d, "s1", is_back=True) == []


def test_one_cent_under_the_cap_does_not_suspend(d):
    set_prices(d)
    events = d.back("b1", 300, 4999)  # liability 99.98
    assert of_type(events, e.SelectionSuspended) == []
    accepted(d.back("b2", 200, 100))


@pytest.mark.parametrize("side", [c.BACK, c.LAY])
def test_bettor_orders_on_a_suspended_selection_are_liability_limit(d, side):
    suspend_s1(d)
    expect_place_denied(d, Code.LIABILITY_LIMIT, "b2", side, 300, 100)


def test_other_selections_stay_quoted_and_open_when_one_is_suspended(d):
    suspend_s1(d)
    assert house_lay_price(d, "s2") == 300
    match = one(d.back("b2", 300, 100, selection="s2"), e.BetMatched)
    assert match.maker_user == HOUSE


def test_house_worst_case_at_suspension_is_exactly_the_cap(d):
    suspend_s1(d)
    assert house_worst_case(d) == CAP


def test_raising_the_cap_unsuspends_and_requotes(d):
    suspend_s1(d)
    events = market_limits(d, max_liability_minor=2 * CAP)
    assert of_type(events, e.SelectionSuspended) == []
    _, price, size = house_lay(d)
    assert price == prev_tick(300, 1)  # 100.00 of 200.00 is 1/2 of the new cap
    assert largest_within(size, price, CAP)
    accepted(d.back("b2", price, 100))


def test_new_prices_unsuspend_once_liability_is_back_under_the_cap(d):
    suspend_s1(d)
    d.back("b2", 300, 1000, selection="s2")  # the house keeps 10.00 if s1 wins
    events = set_prices(d)
    assert of_type(events, e.SelectionSuspended) == []
    assert dict(one(events, e.PricesSet).offered)["s1"] == prev_tick(300, 4)  # 90.00 of 100.00
    _, price, size = house_lay(d)
    assert largest_within(size, price, 1000)
    accepted(d.back("b2", 200, 100))


def test_new_prices_while_still_at_the_cap_leave_the_selection_suspended(d):
    suspend_s1(d)
    events = set_prices(d)
    assert one(events, e.SelectionSuspended).selection == "s1"
    assert "s1" not in dict(one(events, e.PricesSet).offered)
    assert house_resting(d, "s1") == []
    expect_place_denied(d, Code.LIABILITY_LIMIT, "b2", c.BACK, 300, 100)


def test_suspension_is_not_reported_twice(d):
    suspend_s1(d)
    events = d.back("b2", 300, 100, selection="s2")
    assert of_type(events, e.SelectionSuspended) == []


def test_exposure_limit_outranks_the_liability_limit(d):
    suspend_s1(d)
    d(c.SetUserLimits, user="b2", max_exposure_minor=1000)
    expect_place_denied(d, Code.LIMIT_EXCEEDED, "b2", c.BACK, 300, 1001)


# -- house back quotes ------------------------------------------------------------------------


@pytest.fixture
def two_way() -> Driver:
    return make_driver(house_back_ticks=2)


def test_house_backs_rest_two_ticks_above_its_lays(two_way):
    ev = one(set_prices(two_way, PRICES, margin_bp=800), e.PricesSet)
    for sid, price in ev.offered:
        backs = house_resting(two_way, sid, is_back=True)
        assert [at for _, at, _ in backs] == [next_tick(price, 2)]
        assert two_way.book(sid).lays.best == price


def test_house_worst_case_with_backs_is_within_the_cap(two_way):
    set_prices(two_way, PRICES, margin_bp=800)
    assert 0 < house_worst_case(two_way) <= CAP


def test_bettor_laying_into_a_house_back_is_matched_at_its_price(two_way):
    set_prices(two_way)
    back_price = next_tick(300, 2)
    match = one(two_way.lay("b1", back_price, 100), e.BetMatched)
    assert (match.maker_user, match.price) == (HOUSE, back_price)


def take_house_quote(d: Driver, user: str, side: str, selection: str,
                     fraction: Fraction = Fraction(1)) -> list[tuple[str, int, int]]:
    """Back (or lay) `fraction` of the house's best quote on that side, at its price."""
    resting = house_resting(d, selection, is_back=side == c.LAY)
    if not resting:
        return []
    _, price, remaining = resting[0]
    size = max(1, int(remaining * fraction))
    events = d.place(user, side, price, size, selection=selection)
    assert rejection(events) is None, events
    return fills(events)


def test_house_worst_case_stays_within_the_cap_whatever_bettors_take(two_way):
    d = two_way
    set_prices(d, PRICES, margin_bp=800)
    takes = [("b1", c.BACK, "s1"), ("b2", c.LAY, "s2"), ("b1", c.LAY, "s3"),
             ("b2", c.BACK, "s3"), ("b1", c.LAY, "s1"), ("b2", c.BACK, "s2"),
             ("b1", c.BACK, "s1"), ("b2", c.LAY, "s1")]
    matched = 0
    for user, side, sid in takes:
        matched += len(take_house_quote(d, user, side, sid))
        assert house_worst_case(d) <= CAP, (user, side, sid)
    assert matched >= len(takes) - 1  # the house was really hit, on both sides


def test_house_worst_case_stays_within_the_cap_when_everything_goes_against_it(two_way):
    d = two_way
    set_prices(d)
    matched = 0
    for fraction in (Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(1)) * 3:
        # backing s1 and laying s2, s3 all leave the house worse off if s1 wins
        for side, sid in ((c.BACK, "s1"), (c.LAY, "s2"), (c.LAY, "s3")):
            matched += len(take_house_quote(d, "b1", side, sid, fraction))
            assert house_worst_case(d) <= CAP
    pos = d.eng.markets["m1"].positions[HOUSE]
    assert matched > 12
    assert -(pos.win[0] - pos.lose[0] + sum(pos.lose)) > CAP // 2  # s1 loss really built up


def test_laying_into_a_house_back_shades_the_selections_it_loses_on():
    d = make_driver(house_back_ticks=2)
    d.create_market("m2", ("s1", "s2"))
    market_limits(d, "m2", max_liability_minor=CAP)
    set_prices(d, (("s1", 200), ("s2", 200)), market="m2")
    (_, back_price, stake), = house_resting(d, "s1", "m2", is_back=True)
    d.lay("b1", back_price, stake, selection="s1", market="m2")
    # the house's matched back on s1 loses `stake` (half the cap) if s2 wins
    assert stake * 2 >= CAP
    (_, lay_price, _), = house_resting(d, "s2", "m2")
    assert lay_price == prev_tick(200, 1)


# -- bad price commands -----------------------------------------------------------------------


def test_pool_market_cannot_be_priced(d):
    d.create_market("p1", ("s1", "s2", "s3"), type=c.POOL)
    expect_denied(d, Code.BAD_REQUEST, c.SetPrices, market="p1", prices=EVEN)


def test_pricing_an_unknown_selection_is_unknown_selection(d):
    expect_denied(d, Code.UNKNOWN_SELECTION, c.SetPrices, market="m1",
                  prices=(("s1", 300), ("s2", 300), ("s9", 300)))


def test_pricing_a_subset_of_selections_is_bad_request(d):
    expect_denied(d, Code.BAD_REQUEST, c.SetPrices, market="m1",
                  prices=(("s1", 200), ("s2", 200)))


def test_pricing_a_selection_twice_is_bad_request(d):
    expect_denied(d, Code.BAD_REQUEST, c.SetPrices, market="m1",
                  prices=EVEN + (("s1", 250),))


@pytest.mark.parametrize("fair", [100, 99, 0, -300])
def test_fair_odds_at_or_below_evens_money_one_are_invalid_odds(d, fair):
    expect_denied(d, Code.INVALID_ODDS, c.SetPrices, market="m1",
                  prices=(("s1", fair), ("s2", 300), ("s3", 300)))


def test_fair_odds_just_above_one_are_accepted(d):
    set_prices(d, (("s1", 101), ("s2", 3000), ("s3", 3000)))


def test_fair_odds_above_the_ladder_are_invalid_odds(d):
    expect_denied(d, Code.INVALID_ODDS, c.SetPrices, market="m1",
                  prices=(("s1", 100001), ("s2", 150), ("s3", 300)))


def test_fair_odds_off_the_ladder_are_offered_rounded_down_onto_it(d):
    ev = one(set_prices(d, (("s1", 333), ("s2", 333), ("s3", 251))), e.PricesSet)
    assert dict(ev.offered)["s1"] == 330


@pytest.mark.parametrize("margin_bp", [-1, 10001])
def test_margin_outside_zero_to_one_is_bad_request(d, margin_bp):
    expect_denied(d, Code.BAD_REQUEST, c.SetPrices, market="m1", prices=EVEN,
                  margin_bp=margin_bp)


def test_pricing_an_unknown_market_is_unknown_market(d):
    expect_denied(d, Code.UNKNOWN_MARKET, c.SetPrices, market="nope", prices=EVEN)


def test_settled_market_cannot_be_priced(d):
    d.settle("m1", ("s1",))
    expect_denied(d, Code.MARKET_NOT_OPEN, c.SetPrices, market="m1", prices=EVEN)


def test_rejected_prices_leave_the_current_quotes_in_place(d):
    set_prices(d)
    expect_denied(d, Code.BAD_REQUEST, c.SetPrices, market="m1",
                  prices=(("s1", 200), ("s2", 200)))
    assert house_lay_price(d) == 300

"""House quotes: margin, back quotes, lay sizing from the liability limit, liability shading."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.money import win_amount
from pricing.ladder import INDEX, MAX_PRICE, MIN_PRICE, TICKS, is_valid
from pricing.quotes import (
    DEFAULT_THRESHOLDS,
    apply_margin,
    house_back_prices,
    lay_size_for_liability,
    overround,
    shade,
)

ladder_prices = st.sampled_from(TICKS)
fair_books = st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=3), ladder_prices, min_size=1, max_size=20
)
margins_bp = st.integers(min_value=0, max_value=5_000)


def _feasible(selections: int, margin_bp: int) -> bool:
    # Every selection pinned at 1.01 is the most overround a book can carry.
    return selections * Fraction(100, 101) >= 1 + Fraction(margin_bp, 10_000)


# -- apply_margin ------------------------------------------------------------------------------


def test_margin_on_an_even_two_way_book_rounds_both_prices_down():
    assert apply_margin({"home": 200, "away": 200}, 500) == {"home": 190, "away": 190}


def test_zero_margin_on_a_fair_book_offers_the_fair_prices():
    assert apply_margin({"home": 200, "away": 300, "draw": 600}, 0) == {
        "home": 200,
        "away": 300,
        "draw": 600,
    }


def test_margin_normalises_a_trader_book_that_already_carries_overround():
    offered = apply_margin({"a": 190, "b": 190}, 0)
    assert offered == {"a": 200, "b": 200}


def test_margin_keeps_the_selections_and_their_order():
    fair = {"z": 400, "a": 150, "m": 900}
    assert list(apply_margin(fair, 700)) == ["z", "a", "m"]


def test_margin_caps_long_odds_at_the_top_of_the_ladder():
    offered = apply_margin({"fav": 101, "outsider": MAX_PRICE}, 0)
    assert offered["outsider"] <= MAX_PRICE


def test_margin_pins_a_near_certainty_at_one_point_zero_one_and_spreads_the_rest():
    offered = apply_margin({"fav": 102, "a": 5000, "b": 5000}, 1_000)
    assert offered["fav"] == MIN_PRICE
    assert overround(offered) >= Fraction(11, 10)


def test_margin_of_a_one_runner_market_is_pinned_at_the_bottom_of_the_ladder():
    assert apply_margin({"only": 150}, 500) == {"only": MIN_PRICE}


def test_margin_of_an_empty_book_is_empty():
    assert apply_margin({}, 500) == {}


def test_negative_margin_is_rejected():
    with pytest.raises(ValueError):
        apply_margin({"a": 200, "b": 200}, -1)


@given(fair_books, margins_bp)
def test_offered_prices_are_on_the_ladder_and_never_above_fair(fair, margin_bp):
    offered = apply_margin(fair, margin_bp)
    assert offered.keys() == fair.keys()
    assert all(is_valid(price) for price in offered.values())
    if sum(Fraction(100, p) for p in fair.values()) <= 1:
        assert all(offered[s] <= fair[s] for s in fair)


@given(fair_books, margins_bp)
def test_overround_of_offered_prices_is_at_least_one_plus_margin(fair, margin_bp):
    offered = apply_margin(fair, margin_bp)
    if _feasible(len(fair), margin_bp):
        assert overround(offered) >= 1 + Fraction(margin_bp, 10_000)
    else:
        assert set(offered.values()) == {MIN_PRICE}


# -- house back quotes -------------------------------------------------------------------------


def test_house_back_quotes_sit_the_given_ticks_above_the_offered_prices():
    assert house_back_prices({"a": 250, "b": 199}, 2) == {"a": 254, "b": 202}


def test_house_back_quote_is_omitted_past_the_top_of_the_ladder():
    assert house_back_prices({"a": MAX_PRICE, "b": 200}, 1) == {"b": 202}


def test_house_back_quotes_must_be_at_least_one_tick_wider():
    with pytest.raises(ValueError):
        house_back_prices({"a": 200}, 0)


@given(st.dictionaries(st.text("abc", min_size=1), ladder_prices), st.integers(1, 10))
def test_house_back_quotes_never_cross_the_house_lay_quotes(offered, ticks_wider):
    for selection, back in house_back_prices(offered, ticks_wider).items():
        assert is_valid(back)
        assert INDEX[back] - INDEX[offered[selection]] == ticks_wider


# -- lay sizing --------------------------------------------------------------------------------


def test_lay_size_at_evens_equals_the_remaining_liability():
    assert lay_size_for_liability(10_000, 200) == 10_000


def test_lay_size_rounds_down_so_its_exact_liability_fits_the_limit():
    # 0.67 at 2.50 risks 1.005: win_amount floors that to 1.00, yet it is past a 1.00 limit
    assert lay_size_for_liability(100, 250) == 66


def test_lay_size_at_1_94_under_100_00_is_106_38_not_106_39():
    # issue 17: 106.39 x 0.94 = 100.0066 passed the limit; 106.38 x 0.94 = 99.9972
    assert lay_size_for_liability(10_000, 194) == 10_638


def test_lay_size_is_zero_when_the_liability_is_used_up():
    assert lay_size_for_liability(0, 250) == 0
    assert lay_size_for_liability(-500, 250) == 0


def test_lay_size_needs_odds_above_one():
    with pytest.raises(ValueError):
        lay_size_for_liability(1_000, 100)


@given(st.integers(min_value=1, max_value=10**12), ladder_prices)
def test_lay_size_is_the_largest_stake_whose_exact_liability_fits(remaining_minor, price):
    stake = lay_size_for_liability(remaining_minor, price)
    assert stake * (price - 100) <= 100 * remaining_minor  # stake x (odds - 1), unrounded
    assert (stake + 1) * (price - 100) > 100 * remaining_minor
    assert win_amount(stake, price) <= remaining_minor  # and so is what the engine books


# -- shading -----------------------------------------------------------------------------------


def test_shading_leaves_the_price_alone_below_the_first_threshold():
    assert shade(250, 4_999, 10_000) == 250


def test_shading_moves_one_tick_down_at_half_the_limit():
    assert shade(250, 5_000, 10_000) == 248


def test_shading_moves_two_ticks_down_at_three_quarters_of_the_limit():
    assert shade(250, 7_500, 10_000) == 246


def test_shading_moves_four_ticks_down_at_nine_tenths_of_the_limit():
    assert shade(250, 9_000, 10_000) == 242


def test_shading_suspends_once_liability_reaches_the_limit():
    assert shade(250, 9_999, 10_000) == 242
    assert shade(250, 10_000, 10_000) is None


def test_shading_never_goes_below_one_point_zero_one():
    assert shade(102, 9_000, 10_000) == MIN_PRICE


def test_shading_without_a_limit_leaves_the_price_alone():
    assert shade(250, 10**9, None) == 250


def test_shading_takes_the_largest_move_whatever_the_threshold_order():
    thresholds = (((9, 10), 4), ((1, 2), 1))
    assert shade(250, 9_500, 10_000, thresholds) == 242


@given(
    ladder_prices,
    st.integers(min_value=-(10**7), max_value=2 * 10**7),
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=1, max_value=10**7),
)
def test_more_liability_never_gives_higher_odds(price, liability_minor, more_minor, limit_minor):
    before = shade(price, liability_minor, limit_minor, DEFAULT_THRESHOLDS)
    after = shade(price, liability_minor + more_minor, limit_minor, DEFAULT_THRESHOLDS)
    if before is None:
        assert after is None
    elif after is not None:
        assert after <= before <= price
        assert is_valid(after)

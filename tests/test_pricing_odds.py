"""Odds formats: exact conversions between ladder prices and probability, fractional, American."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.ladder import MAX_PRICE, MIN_PRICE, TICKS
from pricing.odds import (
    decimal_from_american,
    decimal_from_fractional,
    decimal_from_probability,
    decimal_odds,
    format_american,
    format_fractional,
    implied_probability,
    parse_american,
    parse_fractional,
    to_american,
    to_fractional,
    to_ladder,
)


def test_every_ladder_price_round_trips_through_fractional_exactly():
    for price in TICKS:
        decimal = decimal_from_fractional(to_fractional(price))
        assert decimal == Fraction(price, 100)
        assert to_ladder(decimal) == price


def test_every_ladder_price_round_trips_through_fractional_strings_exactly():
    for price in TICKS:
        text = format_fractional(to_fractional(price))
        assert decimal_from_fractional(parse_fractional(text)) == Fraction(price, 100)


def test_every_ladder_price_round_trips_through_american_exactly():
    for price in TICKS:
        decimal = decimal_from_american(to_american(price))
        assert decimal == Fraction(price, 100)
        assert to_ladder(decimal, "up") == price


def test_every_ladder_price_survives_the_rounded_american_string():
    for price in TICKS:
        text = format_american(to_american(price))
        assert to_ladder(decimal_from_american(parse_american(text)), "nearest") == price


def test_every_ladder_price_round_trips_through_probability_exactly():
    for price in TICKS:
        decimal = decimal_from_probability(implied_probability(price))
        assert decimal == Fraction(price, 100)
        assert to_ladder(decimal) == price


@pytest.mark.parametrize(
    ("price", "probability", "fractional", "american"),
    [
        (250, Fraction(2, 5), "3/2", "+150"),
        (150, Fraction(2, 3), "1/2", "-200"),
        (200, Fraction(1, 2), "1/1", "+100"),
        (101, Fraction(100, 101), "1/100", "-10000"),
        (125, Fraction(4, 5), "1/4", "-400"),
        (1100, Fraction(1, 11), "10/1", "+1000"),
        (100000, Fraction(1, 1000), "999/1", "+99900"),
        (199, Fraction(100, 199), "99/100", "-101.01"),
    ],
)
def test_known_prices_convert_to_the_formats_bettors_expect(
    price, probability, fractional, american
):
    assert implied_probability(price) == probability
    assert format_fractional(to_fractional(price)) == fractional
    assert format_american(to_american(price)) == american


def test_decimal_odds_are_the_price_in_hundredths():
    assert decimal_odds(250) == Fraction(5, 2)


def test_american_plus_and_minus_one_hundred_both_mean_evens():
    assert decimal_from_american(100) == decimal_from_american(-100) == 2


def test_american_odds_between_minus_and_plus_one_hundred_are_rejected():
    with pytest.raises(ValueError):
        decimal_from_american(99)
    with pytest.raises(ValueError):
        parse_american("-50")


def test_american_parses_with_or_without_a_plus_sign():
    assert parse_american("+150") == parse_american("150") == 150
    assert parse_american("-200") == -200
    assert parse_american("-101.01") == Fraction(-10101, 100)


@pytest.mark.parametrize("text", ["", "abc", "+-150", "1e3", "150.", "--200"])
def test_american_rejects_junk(text):
    with pytest.raises(ValueError):
        parse_american(text)


def test_fractional_accepts_evens_spelled_out():
    assert parse_fractional("EVS") == parse_fractional("evens") == Fraction(1)


@pytest.mark.parametrize("text", ["", "3", "0/1", "3/0", "-3/2", "1.5/1", "3 / 2"])
def test_fractional_rejects_junk(text):
    with pytest.raises(ValueError):
        parse_fractional(text)


def test_fractional_is_reduced_when_shown():
    assert format_fractional(to_fractional(300)) == "2/1"
    assert format_fractional(to_fractional(110)) == "1/10"


@pytest.mark.parametrize("price", [100, 0, -150])
def test_odds_of_one_or_less_have_no_other_format(price):
    for convert in (implied_probability, to_fractional, to_american, decimal_odds):
        with pytest.raises(ValueError):
            convert(price)


def test_probability_outside_zero_to_one_is_rejected():
    with pytest.raises(ValueError):
        decimal_from_probability(Fraction(0))
    with pytest.raises(ValueError):
        decimal_from_probability(Fraction(3, 2))


def test_to_ladder_rounds_down_by_default_as_the_house_quotes():
    assert to_ladder(Fraction(2519, 1000)) == 250
    assert to_ladder(Fraction(2519, 1000), "up") == 252
    assert to_ladder(Fraction(2509, 1000), "nearest") == 250
    assert to_ladder(Fraction(2511, 1000), "nearest") == 252


def test_to_ladder_nearest_breaks_a_tie_downward():
    assert to_ladder(Fraction(251, 100), "nearest") == 250


def test_to_ladder_has_no_price_below_the_bottom_or_above_the_top():
    assert to_ladder(Fraction(1)) is None
    assert to_ladder(Fraction(1), "up") == MIN_PRICE
    assert to_ladder(Fraction(2000)) == MAX_PRICE
    assert to_ladder(Fraction(2000), "up") is None
    assert to_ladder(Fraction(1), "nearest") == MIN_PRICE
    assert to_ladder(Fraction(2000), "nearest") == MAX_PRICE


def test_to_ladder_rejects_an_unknown_direction():
    with pytest.raises(ValueError):
        to_ladder(Fraction(2), "sideways")  # type: ignore[arg-type]


@given(st.fractions(min_value=Fraction(101, 100), max_value=Fraction(1000)))
def test_to_ladder_brackets_any_odds_between_adjacent_ticks(decimal):
    low, high = to_ladder(decimal, "down"), to_ladder(decimal, "up")
    assert low is not None and high is not None
    assert Fraction(low, 100) <= decimal <= Fraction(high, 100)
    assert TICKS.index(high) - TICKS.index(low) <= 1

"""Exact conversions between decimal odds (int hundredths) and the formats bettors read.

Decimal odds d = price / 100. The implied probability is 1/d; fractional odds are d - 1 (profit
per unit staked, "3/2"); American odds are the profit on 100 staked when d >= 2 ("+150") and
minus the stake needed to win 100 when d < 2 ("-200"). Every conversion returns a `Fraction`,
so any ladder price survives a round trip through any format exactly. Only `to_ladder` rounds,
and the caller names the direction, because the right direction depends on who is quoted:
the house rounds the odds it offers bettors DOWN.
"""

import re
from fractions import Fraction
from math import ceil, floor
from typing import Literal

from pricing.ladder import round_down, round_up

Toward = Literal["down", "up", "nearest"]

_EVENS = frozenset({"evs", "evens"})
_FRACTIONAL = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")
_AMERICAN = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def _check_price(price: int) -> None:
    # d = 1.00 pays nothing and has no fractional or American form; below it is meaningless.
    if price <= 100:
        raise ValueError(f"decimal odds must be above 1.00, got hundredths {price}")


def decimal_odds(price: int) -> Fraction:
    """250 -> Fraction(5, 2)."""
    _check_price(price)
    return Fraction(price, 100)


# -- probability -------------------------------------------------------------------------------


def implied_probability(price: int) -> Fraction:
    """250 -> Fraction(2, 5)."""
    _check_price(price)
    return Fraction(100, price)


def decimal_from_probability(probability: Fraction) -> Fraction:
    if not 0 < probability <= 1:
        raise ValueError(f"probability must be in (0, 1], got {probability}")
    return 1 / Fraction(probability)


# -- fractional --------------------------------------------------------------------------------


def to_fractional(price: int) -> Fraction:
    """250 -> Fraction(3, 2)."""
    _check_price(price)
    return Fraction(price - 100, 100)


def decimal_from_fractional(fractional: Fraction) -> Fraction:
    if fractional <= 0:
        raise ValueError(f"fractional odds must be positive, got {fractional}")
    return Fraction(fractional) + 1


def format_fractional(fractional: Fraction) -> str:
    """Fraction(3, 2) -> '3/2'; evens stays '1/1' (str(Fraction) would drop the '/1')."""
    return f"{fractional.numerator}/{fractional.denominator}"


def parse_fractional(text: str) -> Fraction:
    """'3/2' -> Fraction(3, 2); 'evs' / 'evens' -> 1. Raises ValueError for anything else."""
    cleaned = text.strip().lower()
    if cleaned in _EVENS:
        return Fraction(1)
    m = _FRACTIONAL.match(cleaned)
    if m is None:
        raise ValueError(f"not fractional odds like '3/2': {text!r}")
    return Fraction(int(m.group(1)), int(m.group(2)))


# -- American ----------------------------------------------------------------------------------


def to_american(price: int) -> Fraction:
    """250 -> +150, 150 -> -200. Prices in (1.00, 2.00) can give non-integers: 199 -> -10000/99."""
    _check_price(price)
    if price >= 200:
        return Fraction(price - 100)
    return Fraction(-10_000, price - 100)


def decimal_from_american(american: int | Fraction) -> Fraction:
    """+150 -> 5/2, -200 -> 3/2. +100 and -100 both mean 2.00; values in between do not exist."""
    a = Fraction(american)
    if a >= 100:
        return 1 + a / 100
    if a <= -100:
        return 1 + 100 / -a
    raise ValueError(f"American odds must be <= -100 or >= +100, got {american}")


def format_american(american: int | Fraction, places: int = 2) -> str:
    """+150 -> '+150', -200 -> '-200', -10000/99 -> '-101.01'.

    Non-integers are rounded half away from zero to `places` decimals, for display only; the
    rounding is far finer than a ladder tick, so `to_ladder(..., "nearest")` recovers the price.
    """
    a = Fraction(american)
    sign = "-" if a < 0 else "+"
    if a.denominator == 1:
        return f"{sign}{abs(a.numerator)}"
    scaled = abs(a) * 10**places
    rounded = int((2 * scaled + 1) // 2)
    whole, part = divmod(rounded, 10**places)
    return f"{sign}{whole}.{part:0{places}d}"


def parse_american(text: str) -> Fraction:
    """'+150' -> 150, '-200' -> -200, '-101.01' -> Fraction('-101.01'); validated as odds."""
    cleaned = text.strip()
    if _AMERICAN.match(cleaned) is None:
        raise ValueError(f"not American odds like '+150' or '-200': {text!r}")
    american = Fraction(cleaned)
    decimal_from_american(american)
    return american


# -- back onto the ladder ----------------------------------------------------------------------


def to_ladder(decimal: Fraction, toward: Toward = "down") -> int | None:
    """Exact decimal odds -> a ladder price in hundredths, or None when none lies that way.

    "down" gives the highest tick <= decimal (None below 1.01), "up" the lowest tick >= decimal
    (None above 1000), "nearest" the closer of the two with ties going down.
    """
    hundredths = Fraction(decimal) * 100
    # Ticks are integers, so the highest tick <= x is the highest tick <= floor(x) (and alike up).
    if toward == "down":
        return round_down(floor(hundredths))
    if toward == "up":
        return round_up(ceil(hundredths))
    if toward == "nearest":
        low, high = round_down(floor(hundredths)), round_up(ceil(hundredths))
        if low is None or high is None:
            return high if low is None else low
        return low if hundredths - low <= high - hundredths else high
    raise ValueError(f"toward must be 'down', 'up' or 'nearest', got {toward!r}")

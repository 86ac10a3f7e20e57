"""Money and odds arithmetic: the one place where rounding rules live.

Money is int minor units (cents); odds are int hundredths on the ladder. Wire strings have at
most two decimals. A fill's win amount is computed once, rounded down to the cent, and used for
both the backer's profit and the layer's liability, so the two sides balance exactly.
"""

import re
from fractions import Fraction

# The largest amount the wire carries (13 digits and 2 decimals). The engine refuses stakes and
# deposits above it, which keeps every sum it keeps in C long long (engine.pxd) far from 2**63.
MAX_MINOR = 10**15 - 1
_MONEY = re.compile(r"^(0|[1-9][0-9]{0,12})(?:\.([0-9]{1,2}))?$")


MIN_PRICE = 101  # 1.01: the lowest odds there are, and the floor of a reduced price


def win_amount(stake_minor: int, price: int) -> int:
    """Profit of a backer (= liability of a layer) on `stake_minor` matched at `price`."""
    return stake_minor * (price - 100) // 100


def reduced_price(price: int, reduction_bp: int) -> int:
    """A matched price after a non-runner's reduction factor (Betfair's rule: the odds times
    (1 - factor), never below 1.01), rounded down to the hundredth like every win amount. It
    need not be on the ladder; the fill's win amount is then `win_amount(size, reduced)`,
    shared by backer and layer as at matching, so the books still balance to the minor unit."""
    return max(MIN_PRICE, price * (10_000 - reduction_bp) // 10_000)


def parse_money(text: str) -> int:
    """'10.50' -> 1050. Raises ValueError for negatives, more than two decimals or junk."""
    if not isinstance(text, str):
        raise ValueError("money must be a decimal string")
    m = _MONEY.match(text)
    if m is None:
        raise ValueError(f"not a money amount with at most two decimals: {text!r}")
    whole, frac = m.group(1), m.group(2) or ""
    return int(whole) * 100 + int(frac.ljust(2, "0"))


def format_money(minor: int) -> str:
    """1050 -> '10.50'; -5 -> '-0.05'."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_odds(text: str) -> int:
    """'2.5' or '2.50' -> 250 (ladder membership is checked by the engine)."""
    return parse_money(text)


def format_odds(price: int) -> str:
    return format_money(price)


def parse_fraction(text: str) -> Fraction:
    """A dead-heat factor or rate: '0.5', '1/3'. Exact; no float is involved."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)?(/[1-9][0-9]*)?", text):
        raise ValueError(f"not a non-negative decimal or fraction: {text!r}")
    return Fraction(text)


def average_price(matched_value: int, matched_minor: int) -> int:
    """Stake-weighted average matched price in hundredths, rounded half up (display only)."""
    if matched_minor == 0:
        return 0
    return (2 * matched_value + matched_minor) // (2 * matched_minor)

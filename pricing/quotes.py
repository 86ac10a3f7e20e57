"""Trader prices -> house quotes: margin, house back quotes, order sizing and liability shading.

The house offers bettors odds to back by resting LAY orders in the book. Every number here
rounds in the house's favour: offered odds round down onto the ladder, lay stakes round down
so the liability never passes what is left of the limit, and shading only ever lowers odds.
"""

from fractions import Fraction

from pricing.ladder import MIN_PRICE, next_tick, prev_tick
from pricing.odds import implied_probability, to_ladder

BP_PER_UNIT = 10_000

# (fraction of the liability limit as (num, den), ticks to move the price down) once reached.
Thresholds = tuple[tuple[tuple[int, int], int], ...]
DEFAULT_THRESHOLDS: Thresholds = (((1, 2), 1), ((3, 4), 2), ((9, 10), 4))

_MIN_PROBABILITY = implied_probability(MIN_PRICE)


def apply_margin(fair: dict[str, int], margin_bp: int) -> dict[str, int]:
    """Fair odds (hundredths) -> odds the house offers to back, with `margin_bp` of overround.

    Each implied probability is scaled by (1 + margin) / sum(probabilities), turned back into
    decimal odds and rounded DOWN onto the ladder (above 1000 -> 1000), so the book's overround
    sum(1/offered) is at least 1 + margin.

    A selection whose margined odds fall under 1.01 is pinned at 1.01, which gives back part of
    the margin; the rest is spread again over the other selections (scaled the same way) so the
    overround still reaches 1 + margin. It cannot when every selection ends up pinned, i.e. when
    len(fair) * 100/101 < 1 + margin (a one-runner market, or an absurd margin).
    """
    if margin_bp < 0:
        raise ValueError(f"margin must not be negative, got {margin_bp} bp")
    probabilities = {selection: implied_probability(price) for selection, price in fair.items()}
    target = 1 + Fraction(margin_bp, BP_PER_UNIT)
    pinned: set[str] = set()
    while True:
        free = {s: p for s, p in probabilities.items() if s not in pinned}
        if not free:
            break
        # Each round raises the scale, so the pinned set only grows: at most len(fair) rounds.
        scale = (target - len(pinned) * _MIN_PROBABILITY) / sum(free.values())
        newly_pinned = {s for s, p in free.items() if p * scale > _MIN_PROBABILITY}
        if not newly_pinned:
            break
        pinned |= newly_pinned
    offered = {selection: MIN_PRICE for selection in pinned}
    for selection, probability in free.items():
        price = to_ladder(1 / (probability * scale), "down")
        assert price is not None  # probability * scale <= 100/101, so the odds are >= 1.01
        offered[selection] = price
    return {selection: offered[selection] for selection in fair}


def overround(prices: dict[str, int]) -> Fraction:
    """sum(1/odds): 1 is a fair book, 1.05 a book with a 5% margin."""
    return sum((implied_probability(price) for price in prices.values()), Fraction(0))


def house_back_prices(offered: dict[str, int], ticks_wider: int) -> dict[str, int]:
    """House BACK quotes (what bettors can lay into) `ticks_wider` ticks above the offered odds.

    Strictly above the house's own lay quotes so the house never crosses its own book; a
    selection with no tick that far up the ladder gets no back quote.
    """
    if ticks_wider < 1:
        raise ValueError(f"house back quotes must be at least one tick wider, got {ticks_wider}")
    quotes: dict[str, int] = {}
    for selection, price in offered.items():
        back = next_tick(price, ticks_wider)
        if back is not None:
            quotes[selection] = back
    return quotes


def lay_size_for_liability(remaining_liability_minor: int, price: int) -> int:
    """Largest stake (minor units) of a house LAY at `price` whose liability fits the remainder.

    The liability counted is the exact stake * (price - 100) / 100, so the stake rounds down:
    the limit is a hard bound. `engine.money.win_amount` floors that liability to the cent, and
    sizing from the floored figure would let 106.39 at 1.94 risk 100.0066 of a 100.00 limit.
    Nothing left (remaining <= 0) gives 0.
    """
    if price <= 100:
        raise ValueError(f"a lay needs odds above 1.00, got hundredths {price}")
    if remaining_liability_minor <= 0:
        return 0
    return 100 * remaining_liability_minor // (price - 100)


def shade(
    price: int,
    liability_minor: int,
    limit_minor: int | None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> int | None:
    """Lower the offered odds as house liability on a selection approaches its limit.

    Moves `price` (on the ladder) down by the largest tick count among the thresholds reached
    (liability >= num/den of the limit), never below 1.01. Returns None once the liability has
    reached the limit: the selection must be suspended. No limit (None) leaves the price alone.
    Taking the largest tick count, not the last threshold listed, keeps it monotonic whatever
    the order of `thresholds`: more liability never gives higher odds.
    """
    if limit_minor is None:
        return price
    if liability_minor >= limit_minor:
        return None
    ticks_down = 0
    for (num, den), ticks in thresholds:
        if liability_minor * den >= num * limit_minor and ticks > ticks_down:
            ticks_down = ticks
    if ticks_down == 0:
        return price
    shaded = prev_tick(price, ticks_down)
    return MIN_PRICE if shaded is None else shaded


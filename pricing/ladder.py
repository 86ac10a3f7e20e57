"""The standard exchange odds ladder, as int hundredths (2.50 -> 250).

Bands (DESIGN.md §2): 1.01-2 by 0.01, 2-3 by 0.02, 3-4 by 0.05, 4-6 by 0.1, 6-10 by 0.2,
10-20 by 0.5, 20-30 by 1, 30-50 by 2, 50-100 by 5, 100-1000 by 10.
"""

from bisect import bisect_left, bisect_right

BANDS: tuple[tuple[int, int, int], ...] = (
    (101, 200, 1),
    (200, 300, 2),
    (300, 400, 5),
    (400, 600, 10),
    (600, 1000, 20),
    (1000, 2000, 50),
    (2000, 3000, 100),
    (3000, 5000, 200),
    (5000, 10000, 500),
    (10000, 100000, 1000),
)


def _build() -> tuple[int, ...]:
    ticks: list[int] = []
    for low, high, step in BANDS:
        start = low if not ticks or ticks[-1] < low else low + step
        ticks.extend(range(start, high, step))
    ticks.append(BANDS[-1][1])
    return tuple(ticks)


TICKS: tuple[int, ...] = _build()
INDEX: dict[int, int] = {price: i for i, price in enumerate(TICKS)}
MIN_PRICE: int = TICKS[0]
MAX_PRICE: int = TICKS[-1]


def is_valid(price: int) -> bool:
    return price in INDEX


def next_tick(price: int, ticks: int = 1) -> int | None:
    """The price `ticks` steps higher, or None past the top of the ladder."""
    i = INDEX[price] + ticks
    return TICKS[i] if 0 <= i < len(TICKS) else None


def prev_tick(price: int, ticks: int = 1) -> int | None:
    """The price `ticks` steps lower, or None below 1.01."""
    return next_tick(price, -ticks)


def round_down(price: int) -> int | None:
    """Highest ladder price <= price (None below the ladder)."""
    i = bisect_right(TICKS, price) - 1
    return TICKS[i] if i >= 0 else None


def round_up(price: int) -> int | None:
    """Lowest ladder price >= price (None above the ladder)."""
    i = bisect_left(TICKS, price)
    return TICKS[i] if i < len(TICKS) else None

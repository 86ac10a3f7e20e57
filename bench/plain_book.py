"""The scale reference for bench/engine.py: the same order stream through a plain price-time
book, a SortedDict of price levels (each a FIFO deque) per side and selection.

No validation, wallets, exposure, holds, risk, refs or events: only matching (price-time
priority, price improvement for the taker, partial fills, sweeps) and lazy cancels, written
for speed (the best price of each side is cached, an order is a one-item list). Issue 2 quotes
"about 1.1M orders/s" for such a book; bench/engine.py measures it in the same run as the engine
so the two compare on one machine at one moment.
"""

from collections import deque

from sortedcontainers import SortedDict

from engine import commands as c


class _Side:
    __slots__ = ("levels", "best", "highest_first")

    def __init__(self, highest_first: bool) -> None:
        self.levels = SortedDict()
        self.best = None  # cached best price: None when the side is empty
        self.highest_first = highest_first


def apply_all(cmds: list) -> int:
    """Apply the stream's orders and cancels; returns the number of fills (a sanity figure)."""
    books: dict = {}  # (market, selection) -> (resting backs, resting lays)
    remaining: dict = {}  # order id -> [remaining]
    fills = 0
    back = c.BACK
    for cmd in cmds:
        if type(cmd) is c.CancelOrder:
            rest = remaining.get(cmd.order)
            if rest is not None:
                rest[0] = 0  # lazy: skipped when it reaches the front of its level
            continue
        key = (cmd.market, cmd.selection)
        sides = books.get(key)
        if sides is None:
            sides = books[key] = (_Side(False), _Side(True))  # backs lowest first, lays highest
        is_back = cmd.side == back
        price, want = cmd.price, cmd.size_minor
        opposite = sides[1] if is_back else sides[0]
        best = opposite.best
        while want and best is not None and (best >= price if is_back else best <= price):
            level = opposite.levels[best]
            while want and level:
                maker = level[0]
                size = maker[0] if maker[0] < want else want
                maker[0] -= size
                want -= size
                fills += size > 0
                if not maker[0]:
                    level.popleft()
            if not level:
                levels = opposite.levels
                del levels[best]
                best = opposite.best = (levels.peekitem(-1 if is_back else 0)[0]
                                        if levels else None)
        rest = [want]
        remaining[f"o{cmd.seq}"] = rest
        if want:
            own = sides[0] if is_back else sides[1]
            level = own.levels.get(price)
            if level is None:
                level = own.levels[price] = deque()
                top = own.best
                if top is None or (price > top if own.highest_first else price < top):
                    own.best = price
            level.append(rest)
    return fills

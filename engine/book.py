"""Order book of one selection: price-time priority, price improvement for the taker.

Two halves: resting BACK orders (what layers can take; best = lowest odds) and resting LAY orders
(what backers can take; best = highest odds). Each price level is a FIFO deque with a running
total. Cancels are lazy: a cancelled order stays in its deque with remaining == 0 until it
reaches the front or the level is compacted, so a cancel is O(1) instead of O(queue).
"""

from collections import deque

from sortedcontainers import SortedDict

from .pickling import restore_slots, slot_state

_COMPACT_MIN = 16  # dead entries a level tolerates before it is rebuilt


class Level:
    __slots__ = ("orders", "total", "dead")
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self) -> None:
        self.orders: deque = deque()
        self.total = 0  # sum of remaining over live orders
        self.dead = 0  # entries with remaining == 0 still in the deque


class HalfBook:
    """Resting orders of one side. `best_at` is 0 (lowest first) or -1 (highest first)."""

    __slots__ = ("levels", "best_at", "best")
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self, best_at: int) -> None:
        self.levels: SortedDict = SortedDict()
        self.best_at = best_at
        # best price cached: SortedDict.peekitem is pure Python and the matching loop asks for
        # the best level on every order, while levels appear or empty far less often
        self.best: int | None = None

    def _drop_level(self, price: int) -> None:
        del self.levels[price]
        if price == self.best:
            self.best = self.levels.peekitem(self.best_at)[0] if self.levels else None

    def add(self, order) -> None:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level()
            best = self.best
            if best is None or (price < best if self.best_at == 0 else price > best):
                self.best = price
        level.orders.append(order)
        level.total += order.remaining
        order.in_book = True

    def reduce(self, order, size: int) -> None:
        """The order's remaining has just dropped by `size` outside matching (cancel, lapse)."""
        level = self.levels[order.price]
        level.total -= size
        if order.remaining:
            return
        order.in_book = False
        if level.total == 0:
            self._drop_level(order.price)
            return
        level.dead += 1
        if level.dead > _COMPACT_MIN and level.dead * 2 > len(level.orders):
            level.orders = deque([o for o in level.orders if o.remaining])
            level.dead = 0

    def depth(self, n: int) -> list[tuple[int, int]]:
        """Best `n` levels as (price, total), best first."""
        count = min(n, len(self.levels))
        positions = range(count) if self.best_at == 0 else range(-1, -1 - count, -1)
        out = []
        for i in positions:
            price, level = self.levels.peekitem(i)
            out.append((price, level.total))
        return out

    def queue_ahead(self, order) -> int:
        """Size resting ahead of `order` at its price, exact.

        The common cases are O(1): a just-rested order is last in its level (everything else
        is ahead) and a maker being filled is first (nothing is). Others walk the level.
        """
        level = self.levels.get(order.price)
        if level is None or not order.in_book:
            return 0
        queue = level.orders
        if queue[-1] is order:
            return level.total - order.remaining
        if queue[0] is order:
            return 0
        ahead = 0
        for o in level.orders:
            if o is order:
                return ahead
            ahead += o.remaining
        return ahead

    def queues_ahead(self, price: int, wanted: set) -> dict:
        """{order id: size resting ahead of it} for each order of `wanted` (a set of orders,
        compared by identity, all resting at `price` on this side), in one walk of the level:
        the listing of a user's orders asks for many at once, and queue_ahead would walk once
        for each."""
        ahead = {}
        level = self.levels.get(price)
        if level is None:
            return ahead
        run = 0
        left = len(wanted)
        for o in level.orders:  # a cancelled entry still in the deque holds 0
            if o in wanted:
                ahead[o.id] = run
                left -= 1
                if not left:
                    break
            run += o.remaining
        return ahead


class SelectionBook:
    __slots__ = ("backs", "lays")
    __reduce__ = slot_state  # the plain-class layout: see pickling.py
    __setstate__ = restore_slots

    def __init__(self) -> None:
        self.backs = HalfBook(0)  # resting backs: a layer takes the lowest first
        self.lays = HalfBook(-1)  # resting lays: a backer takes the highest first

    def half_of(self, order) -> HalfBook:
        return self.backs if order.is_back else self.lays

    def matchable(self, is_back: bool, price: int, want: int) -> int:
        """How much of `want` an incoming order at `price` could match now (no state change)."""
        return sum(size for _, size in self.fills_for(is_back, price, want))

    def fills_for(self, is_back: bool, price: int, want: int) -> list[tuple[int, int]]:
        """(price, size) an incoming order would match now, best first (no state change)."""
        fills = []
        half = self.lays if is_back else self.backs
        keys = reversed(half.levels) if is_back else iter(half.levels)
        for p in keys:
            if want == 0 or (p < price if is_back else p > price):
                break
            size = min(want, half.levels[p].total)
            fills.append((p, size))
            want -= size
        return fills

    def match(self, taker, want: int) -> list:
        """Take up to `want` from the opposite half at the taker's limit or better.

        Returns [(maker, price, size)], best price first and FIFO within a level. Makers' sizes
        and level totals are updated here; the taker's sizes and all money are the engine's job.
        """
        fills: list = []
        limit = taker.price
        if taker.is_back:
            half = self.lays
            while want:
                price = half.best
                if price is None or price < limit:
                    break
                level = half.levels[price]
                want = _take(level, price, want, fills)
                if level.total == 0:
                    half._drop_level(price)
        else:
            half = self.backs
            while want:
                price = half.best
                if price is None or price > limit:
                    break
                level = half.levels[price]
                want = _take(level, price, want, fills)
                if level.total == 0:
                    half._drop_level(price)
        return fills


def _take(level: Level, price: int, want: int, fills: list) -> int:
    queue = level.orders
    while want and level.total:
        maker = queue[0]
        remaining = maker.remaining
        if remaining == 0:
            queue.popleft()
            level.dead -= 1
            continue
        size = remaining if remaining < want else want
        maker.remaining = remaining - size
        maker.matched += size
        level.total -= size
        want -= size
        fills.append((maker, price, size))
        if remaining == size:
            queue.popleft()
            maker.in_book = False
    return want

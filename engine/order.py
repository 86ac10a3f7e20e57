"""An order and its sizes. matched + remaining + cancelled + lapsed == size, always."""

import cython

EXECUTABLE = "EXECUTABLE"
EXECUTION_COMPLETE = "EXECUTION_COMPLETE"


# Not tracked by the cyclic collector: an order holds strings, numbers, its Position and its
# Wallet, none of which ever holds an order, so it can never be part of a reference cycle. A
# busy book holds hundreds of thousands of orders, and every young collection walked each one
# not yet frozen by persistence/collector.py.
@cython.no_gc
@cython.cclass
class Order:
    __slots__ = (
        "id", "user", "market", "selection", "sel", "is_back", "price", "size",
        "matched", "remaining", "cancelled", "lapsed",
        "matched_value",  # sum of fill size x fill price, for the average matched price
        "matched_win",  # sum of fill win amounts: exact P&L of the matched part
        "persistence", "tif", "min_fill", "ref", "placed_seq",
        "release_ts",  # > 0 while waiting out an in-play bet delay, not yet in the book
        "in_book", "pos", "wallet",
    )

    def __init__(self, oid, user, market, selection, sel, is_back, price, size,
                 persistence, tif, min_fill, ref, placed_seq, pos, wallet):
        self.id = oid
        self.user = user
        self.market = market
        self.selection = selection
        self.sel = sel
        self.is_back = is_back
        self.price = price
        self.size = size
        self.matched = 0
        self.remaining = size
        self.cancelled = 0
        self.lapsed = 0
        self.matched_value = 0
        self.matched_win = 0
        self.persistence = persistence
        self.tif = tif
        self.min_fill = min_fill
        self.ref = ref
        self.placed_seq = placed_seq
        self.release_ts = 0
        self.in_book = False
        self.pos = pos
        self.wallet = wallet

    def __reduce__(self):
        # snapshots hold hundreds of thousands of orders: a flat tuple pickles several times
        # smaller and faster than the default per-object slot dict
        return (_restore, tuple([getattr(self, name) for name in _SLOTS]))

    @property
    def side(self) -> str:
        return "back" if self.is_back else "lay"

    @property
    def status(self) -> str:
        return EXECUTABLE if self.remaining else EXECUTION_COMPLETE

    def __repr__(self) -> str:
        return (f"Order({self.id} {self.user} {self.side} {self.selection}@{self.price} "
                f"size={self.size} m={self.matched} r={self.remaining} "
                f"c={self.cancelled} l={self.lapsed})")


_SLOTS = Order.__slots__


def _restorer():
    """Build `_restore(*values)`: one positional parameter and one plain slot store per field.

    Restart unpickles every order of every open market through this function, so it is written
    out field by field (generated, like `frozen.fast_init`): about twice as fast as looping over
    the slot descriptors. Its parameters stay in `__slots__` order, which is what snapshots hold.
    """
    body = "".join(f"    o.{name} = {name}\n" for name in _SLOTS)
    source = f"def _restore({', '.join(_SLOTS)}):\n    o = _new(Order)\n{body}    return o\n"
    namespace = {"__name__": __name__, "_new": Order.__new__, "Order": Order}
    exec(source, namespace)
    return namespace["_restore"]


_restore = _restorer()

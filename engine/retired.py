"""What the engine keeps of an order with a `ref` once its market is settled or voided.

A ref is an idempotency key for ever (docs/protocol.md), but a final market's orders are
retired (`Engine._retire`), so memory and snapshots follow the open markets. What a later
repeat of the ref needs is kept instead, in one flat record per ref: the place fields, to tell a
repeat from a `DUPLICATE_REF`, and the order's final sizes, to reply with the original order as
it ended. The strings are the ones the order shared with its market and the engine's
constants, so a record owns nothing but its ints (docs/benchmarks.md "Retired refs").
"""

from collections import namedtuple

# the first eight fields are the place fields, in `engine._place_fields` order
_FIELDS = ("market", "selection", "side", "price", "size_minor", "persistence", "tif",
           "min_fill_minor", "ref", "matched_minor", "cancelled_minor", "lapsed_minor",
           "matched_value", "placed_seq")
PLACE_FIELDS = 8


class RetiredOrder(namedtuple("RetiredOrder", _FIELDS)):
    """A retired order, final: nothing of it remains, so it rests in no book and never changes."""

    __slots__ = ()

    def place_fields(self) -> tuple:
        return tuple.__getitem__(self, slice(0, PLACE_FIELDS))


def retired(o) -> RetiredOrder:
    """The record of an order its final market retires."""
    return RetiredOrder(o.market, o.selection, o.side, o.price, o.size, o.persistence, o.tif,
                        o.min_fill, o.ref, o.matched, o.cancelled, o.lapsed, o.matched_value,
                        o.placed_seq)

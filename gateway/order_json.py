"""ORDER (docs/protocol.md) as JSON bytes, written straight from the engine's Order.

Every reply of the order path carries an ORDER, and rendering it as a dict (`views.order_view`)
and then encoding the dict cost more than applying the order in the engine. Here the text is
written in one go: the values that can need JSON escaping are escaped by orjson (a `ref` is any
client text; market and selection ids are the protocol's `Id` characters, checked once and
remembered), amounts are formatted from their minor units. Compiled by setup.py with
order_json.pxd (the Order's fields read as C integers); it runs uncompiled too.
`tests/test_order_json.py` checks it equals `views.order_view` for generated orders.
"""

import orjson

from engine.money import average_price
from engine.order import EXECUTABLE, EXECUTION_COMPLETE

from .views import order_view

# ids already known to need no escaping, and amounts' texts, up to this many each
SAFE_IDS_MAX = 100_000
AMOUNT_TEXTS_MAX = 100_000
_safe_ids: set = set()
_amount_texts: dict = {}
# Amounts below 1,000.00 (every price on the ladder, most stakes): their texts by index, so
# compiled a known one is a list read with a C index. Keyed by the amount in a dict, each
# lookup first made an int object of it: about 850 instructions per amount.
SMALL_AMOUNTS = 100_000
_small_texts: list = [None] * SMALL_AMOUNTS


def _money(minor: int) -> str:
    """engine.money.format_money for an amount >= 0 (an ORDER holds no negative amounts):
    the same few sizes and prices come up again and again, and most of an ORDER's amounts are
    nothing at all (compiled, that case is one C comparison)."""
    if minor == 0:
        return "0.00"
    if 0 < minor < SMALL_AMOUNTS:  # never a negative index (it would wrap round)
        text = _small_texts[minor]
        if text is None:
            text = _small_texts[minor] = f"{minor // 100}.{minor % 100:02d}"
        return text
    text = _amount_texts.get(minor)
    if text is None:
        text = f"{minor // 100}.{minor % 100:02d}"
        if len(_amount_texts) < AMOUNT_TEXTS_MAX:
            _amount_texts[minor] = text
    return text


def _id(text: str) -> str:
    """`text` as a JSON string's contents: as it is when it needs no escaping (the usual
    case, remembered), escaped by orjson otherwise."""
    if text in _safe_ids:
        return text
    quoted = orjson.dumps(text).decode()
    if quoted[1:-1] == text:
        if len(_safe_ids) < SAFE_IDS_MAX:
            _safe_ids.add(text)
        return text
    return quoted[1:-1]


def order_json(engine, oid: str) -> bytes:
    """orjson.dumps(views.order_view(engine, oid)), equal once loaded, and about four times
    quicker."""
    o = engine.orders.get(oid)
    if o is None:  # a settled or voided market's order, repeated by its ref: rare
        return orjson.dumps(order_view(engine, oid))
    price = o.price
    size = o.size
    matched = o.matched
    remaining = o.remaining
    cancelled = o.cancelled
    lapsed = o.lapsed
    queue_ahead = 0
    if o.in_book:
        m = engine.markets[o.market]
        book = m.books[o.sel]
        queue_ahead = book.half_of(o).queue_ahead(o)
    ref = o.ref
    # the order's id as it is: the engine makes every one (f"o{seq}"), never a client, and
    # asking _id about each new one cost an orjson call (and a place in _safe_ids) per order
    return (f'{{"order":"{o.id}","market":"{_id(o.market)}",'
            f'"selection":"{_id(o.selection)}","side":"{"back" if o.is_back else "lay"}",'
            f'"price":"{_money(price)}",'
            f'"size":"{_money(size)}","matched":"{_money(matched)}",'
            f'"remaining":"{_money(remaining)}","cancelled":"{_money(cancelled)}",'
            f'"lapsed":"{_money(lapsed)}",'
            f'"avg_price_matched":"{_money(average_price(o.matched_value, matched))}",'
            f'"status":"{EXECUTABLE if remaining else EXECUTION_COMPLETE}",'
            f'"persistence":"{o.persistence}",'
            f'"ref":{orjson.dumps(ref).decode() if ref else "null"},'
            f'"placed_seq":{o.placed_seq},"queue_ahead":"{_money(queue_ahead)}"}}').encode()

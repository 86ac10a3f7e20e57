"""The order ops' frames (`place`, `cancel`, `replace`) checked without building a pydantic model.

The models in gateway/protocol.py stay the contract. This module is a shortcut for the frames
that make up nearly all of an exchange's traffic: it accepts a frame only when it can check
every rule of the model itself (exact types, no unknown field, ids and amounts well formed) and
returns None for anything else, which then goes through `protocol.parse` and gets the model's
own error, code and message. What it returns is the engine command itself, the very one the op
would build from the model (gateway/ops.py), so the shortcut can only ever say yes where the
model says yes, with the same command (tests/test_fast_requests.py checks that over generated
frames).

Why: pydantic-core is native, but a `place` costs it about 3-4 us, most of it in the two
Python validators for price and size; here the whole frame is about 1 us, because the few
hundred price and stake texts traders use are looked up, not parsed.
"""

import re

from engine import commands as c
from engine.money import parse_money

from . import protocol as p

_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")  # protocol.Id: 1-64 of these characters
# Ids (markets, selections, orders) and amount texts already checked, up to this many each: a
# busy exchange sees the same few again and again, and a set or dict lookup is the cheapest
# check there is
KNOWN_MAX = 100_000
_ids: set[str] = set()
_amounts: dict[str, int] = {}  # text -> minor units (or odds hundredths: the same parse)

_PLACE_FIELDS = frozenset(p.Place.model_fields)
_CANCEL_FIELDS = frozenset(p.Cancel.model_fields)
_REPLACE_FIELDS = frozenset(p.Replace.model_fields)
_SIDES = {"back": c.BACK, "lay": c.LAY}
_PERSISTENCE = {"lapse": c.LAPSE, "persist": c.PERSIST}
_TIFS = {"gtc": c.GTC, "fok": c.FOK}


def _amount(text) -> int | None:
    """protocol.Money / protocol.Odds of `text`, or None where the model must judge it."""
    if type(text) is not str:
        return None
    value = _amounts.get(text)
    if value is None:
        try:
            value = parse_money(text)
        except ValueError:
            return None
        if len(_amounts) < KNOWN_MAX:
            _amounts[text] = value
    return value


def _is_id(value) -> bool:
    if type(value) is not str:
        return False
    if value in _ids:
        return True
    if _ID.fullmatch(value) is None:
        return False
    if len(_ids) < KNOWN_MAX:
        _ids.add(value)
    return True


def order_command(data: dict, user: str):
    """(request id, the command the op's model would give for `user`), or None: not an order
    op, or something only the model should judge (its error is then the answer)."""
    op = data.get("op")
    rid = data.get("id")
    kind = type(rid)
    if not (kind is int or kind is str or rid is None):
        return None  # the model refuses a float, a bool, a list... as an id
    if op == "place":
        cmd = _place(data, user)
    elif op == "cancel":
        cmd = _cancel(data, user)
    elif op == "replace":
        cmd = _replace(data, user)
    else:
        return None
    return None if cmd is None else (rid, cmd)


def _only(data: dict, names: frozenset) -> bool:
    """Every field of `data` is one of `names` (the model forbids unknown fields)."""
    for name in data:
        if name not in names:
            return False
    return True


def _place(data: dict, user: str) -> c.PlaceOrder | None:
    if not _only(data, _PLACE_FIELDS):
        return None
    market, selection = data.get("market"), data.get("selection")
    side = data.get("side")
    side = _SIDES.get(side) if type(side) is str else None
    price, size = _amount(data.get("price")), _amount(data.get("size"))
    persistence, tif = data.get("persistence", "lapse"), data.get("tif", "gtc")
    persistence = _PERSISTENCE.get(persistence) if type(persistence) is str else None
    tif = _TIFS.get(tif) if type(tif) is str else None
    if (side is None or price is None or size is None or persistence is None or tif is None
            or not _is_id(market) or not _is_id(selection)):
        return None
    min_fill = data.get("min_fill")
    if min_fill is not None:
        min_fill = _amount(min_fill)
        if min_fill is None:
            return None
    ref = data.get("ref")
    if ref is not None and (type(ref) is not str or len(ref) > 64):
        return None
    # seq and ts 0 (the sequencer stamps them), every field positional: compiled, a keyword
    # call spent most of its time matching the keywords
    return c.place_order(0, 0, user, market, selection, side, price, size, persistence, tif,
                         min_fill or 0, ref or "")


def _cancel(data: dict, user: str) -> c.CancelOrder | None:
    if not _only(data, _CANCEL_FIELDS):
        return None
    order = data.get("order")
    reduction = data.get("size_reduction")
    if reduction is not None:
        reduction = _amount(reduction)
        if not reduction:  # malformed, or zero: the op's own error
            return None
    if not _is_id(order):
        return None
    return c.cancel_order(0, 0, user, order, reduction or 0)


def _replace(data: dict, user: str) -> c.ReplaceOrder | None:
    if not _only(data, _REPLACE_FIELDS):
        return None
    order = data.get("order")
    price = _amount(data.get("price"))
    if price is None or not _is_id(order):
        return None
    return c.ReplaceOrder(user=user, order=order, price=price)

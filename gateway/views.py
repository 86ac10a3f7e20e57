"""Engine state -> wire shapes (PROTOCOL.md): ORDER, wallet, market images and book levels.

Called only where the engine holds exactly the journaled state: inside a sequencer query, a
submit view, or a fan-out listener.
"""

from engine.money import average_price, format_money, format_odds
from engine.order import EXECUTABLE, EXECUTION_COMPLETE

LEVELS_MAX = 10  # the deepest subscription PROTOCOL.md allows
# Every reply and order push formats some eight amounts, and the same few sizes and ladder
# prices come up again and again: their text is kept, up to this many distinct values.
MONEY_TEXTS_MAX = 100_000
_money_texts: dict[int, str] = {}


def money_text(minor: int) -> str:
    """format_money(minor) (and format_odds: odds are hundredths), remembered for the values
    seen first, up to MONEY_TEXTS_MAX of them."""
    text = _money_texts.get(minor)
    if text is None:
        text = format_money(minor)
        if len(_money_texts) < MONEY_TEXTS_MAX:
            _money_texts[minor] = text
    return text


def format_rate(bp: int) -> str:
    """Basis points as a decimal rate: 500 -> "0.05"."""
    whole, frac = divmod(bp, 10_000)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".")


def format_factor(factor: tuple[int, int] | None) -> str | None:
    """(1, 2) -> "0.5"; a factor with no short decimal form stays a fraction: "1/3"."""
    if factor is None:
        return None
    num, den = factor
    bp, rest = divmod(num * 10_000, den)
    return format_rate(bp) if not rest else f"{num}/{den}"


def removed_view(m, sel: int) -> dict | None:
    """A non-runner's removal ({"reduction_factor": "0.25", "ts": ms}), None for a runner."""
    removed = m.removed.get(sel)
    if removed is None:
        return None
    bp, ts = removed
    return {"reduction_factor": format_rate(bp), "ts": ts}


def running_ids(m) -> list[str]:
    """The ids of the selections that still run (not removed), in market order."""
    return [m.selection_ids[s] for s in m.running()]


def order_view(engine, oid: str, queue_ahead: int | None = None) -> dict:
    """ORDER. `queue_ahead`, when the caller already knows it (order_views), is not read
    again from the book."""
    o = engine.orders.get(oid)
    if o is None:
        return _retired_order_view(oid, engine.retired_orders[oid])
    if queue_ahead is None:
        queue_ahead = (engine.markets[o.market].books[o.sel].half_of(o).queue_ahead(o)
                       if o.in_book else 0)
    text = money_text
    return {
        "order": o.id, "market": o.market, "selection": o.selection, "side": o.side,
        "price": text(o.price), "size": text(o.size),
        "matched": text(o.matched), "remaining": text(o.remaining),
        "cancelled": text(o.cancelled), "lapsed": text(o.lapsed),
        "avg_price_matched": text(average_price(o.matched_value, o.matched)),
        "status": o.status, "persistence": o.persistence, "ref": o.ref or None,
        "placed_seq": o.placed_seq, "queue_ahead": text(queue_ahead),
    }


def order_views(engine, oids) -> list[dict]:
    """order_view of each of `oids`, in order (a listing of one user's orders). The size ahead
    of an order in the middle of its price level is a walk of the level up to it, so one by
    one, a market maker's 1,000 orders spread through a level of 50,000 held the engine for
    0.8 s; here each level is walked once for all the listed orders resting in it."""
    ahead = queues_ahead(engine, oids)
    return [order_view(engine, oid, ahead.get(oid, 0)) for oid in oids]


def queues_ahead(engine, oids) -> dict[str, int]:
    """order id -> size resting ahead of it at its price (HalfBook.queue_ahead), for those of
    `oids` that rest in a book, with one walk per level holding several of them."""
    by_level: dict[tuple, set] = {}  # (half book, price) -> its orders asked for
    for oid in oids:
        o = engine.orders.get(oid)
        if o is None or not o.in_book:
            continue
        half = engine.markets[o.market].books[o.sel].half_of(o)
        by_level.setdefault((half, o.price), set()).add(o)  # both by identity
    ahead: dict[str, int] = {}
    for (half, price), wanted in by_level.items():
        if len(wanted) == 1:  # the book's own answer: O(1) at either end of the queue
            o, = wanted
            ahead[o.id] = half.queue_ahead(o)
        else:
            ahead.update(half.queues_ahead(price, wanted))
    return ahead


def _retired_order_view(oid: str, r) -> dict:
    """An order of a settled or voided market, as it ended (the reply to a repeat of its ref):
    nothing remains of it, so it is complete and nothing queues ahead of it."""
    remaining = r.size_minor - r.matched_minor - r.cancelled_minor - r.lapsed_minor
    return {
        "order": oid, "market": r.market, "selection": r.selection, "side": r.side,
        "price": format_odds(r.price), "size": format_money(r.size_minor),
        "matched": format_money(r.matched_minor), "remaining": format_money(remaining),
        "cancelled": format_money(r.cancelled_minor), "lapsed": format_money(r.lapsed_minor),
        "avg_price_matched": format_odds(average_price(r.matched_value, r.matched_minor)),
        "status": EXECUTABLE if remaining else EXECUTION_COMPLETE,
        "persistence": r.persistence, "ref": r.ref, "placed_seq": r.placed_seq,
        "queue_ahead": "0.00",
    }


def wallet_view(engine, user: str, currency: str) -> dict:
    w = engine.wallets.get((user, currency))
    balance, held = (w.balance, w.held) if w is not None else (0, 0)
    return shown_wallet(engine, user, currency, balance, held)


def shown_wallet(engine, user: str, currency: str, balance: int, held: int) -> dict:
    """A wallet's figures (now, as an event left them, or after a previewed order) as clients
    see them. Money this shard moved to the user's wallets on other shards, net, still counts
    here: the split shape's gateways sum the shards' views into the whole balance
    (engine/transfers.py)."""
    balance += engine.transfers.net.get((user, currency), 0)
    return {"currency": currency, "balance": format_money(balance), "held": format_money(held),
            "available": format_money(balance - held)}


def market_state(engine, market_id: str) -> dict | None:
    """A market as published to subscribers: top LEVELS_MAX levels per side, raw ints."""
    m = engine.markets.get(market_id)
    if m is None:
        return None
    selections = []
    for i, sid in enumerate(m.selection_ids):
        book = m.books[i]
        selections.append({
            "id": sid,
            "to_back": book.lays.depth(LEVELS_MAX),  # resting lays: what a backer can take
            "to_lay": book.backs.depth(LEVELS_MAX),  # resting backs: what a layer can take
            "ltp": m.ltp[i], "traded": m.traded[i], "removed": removed_view(m, i),
        })
    return {"status": m.status, "in_play": m.in_play, "bet_delay_ms": m.bet_delay_ms,
            "selections": selections}


def _levels(levels, depth: int) -> list[list[str]]:
    return [[format_odds(p), format_money(s)] for p, s in levels[:depth]]


def image(market_id: str, state: dict, depth: int, seq: int) -> dict:
    return {"op": "mkt", "market": market_id, "seq": seq, "img": True, "status": state["status"],
            "in_play": state["in_play"], "bet_delay_ms": state["bet_delay_ms"],
            "selections": [{"id": s["id"], "to_back": _levels(s["to_back"], depth),
                            "to_lay": _levels(s["to_lay"], depth),
                            "ltp": format_odds(s["ltp"]) if s["ltp"] else None,
                            "traded": format_money(s["traded"]), "removed": s["removed"]}
                           for s in state["selections"]]}


def _level_changes(old: list, new: list, depth: int) -> list[list[str]]:
    before, after = dict(old[:depth]), dict(new[:depth])
    changes = [[format_odds(p), format_money(s)] for p, s in new[:depth] if before.get(p) != s]
    changes += [[format_odds(p), "0.00"] for p in before if p not in after]
    return changes


def delta(market_id: str, old: dict, new: dict, depth: int) -> dict | None:
    """The changes from `old` to `new` as seen at `depth`; None when nothing visible changed.
    The caller fills in "seq"."""
    out: dict = {"op": "mkt", "market": market_id, "seq": 0}
    for key in ("status", "in_play", "bet_delay_ms"):
        if old[key] != new[key]:
            out[key] = new[key]
    selections = []
    for was, now in zip(old["selections"], new["selections"]):
        change: dict = {}
        to_back = _level_changes(was["to_back"], now["to_back"], depth)
        to_lay = _level_changes(was["to_lay"], now["to_lay"], depth)
        if to_back:
            change["to_back"] = to_back
        if to_lay:
            change["to_lay"] = to_lay
        if was["ltp"] != now["ltp"]:
            change["ltp"] = format_odds(now["ltp"])
        if was["traded"] != now["traded"]:
            change["traded"] = format_money(now["traded"])
        if was["removed"] != now["removed"]:
            change["removed"] = now["removed"]
        if change:
            change["id"] = now["id"]
            selections.append(change)
    if selections:
        out["selections"] = selections
    return out if len(out) > 3 else None


def market_view(engine, market_id: str) -> dict:
    """A market as traders and operators see it: status, selections, house prices, limits."""
    m = engine.markets[market_id]
    q = m.quotes
    limits = m.limits
    return {
        "market": m.id, "event": m.event, "name": m.name, "type": m.type,
        "currency": m.currency, "status": m.status, "in_play": m.in_play,
        "bet_delay_ms": m.bet_delay_ms, "start_ts": m.start_ts,
        "selections": [{"id": sid, "name": m.selection_names[i],
                        "offered": format_odds(q.offered[i]) if q and q.offered[i] else None,
                        "suspended": bool(q and q.suspended[i]),
                        "traded": format_money(m.traded[i]), "removed": removed_view(m, i)}
                       for i, sid in enumerate(m.selection_ids)],
        "limits": {name: (format_money(getattr(limits, name + "_minor"))
                          if limits and getattr(limits, name + "_minor") is not None else None)
                   for name in ("max_liability", "selection_max_liability", "min_stake",
                                "max_stake")},
    }


def user_limits_view(engine, user: str) -> dict:
    risk = engine.risk.get(user)
    limits = risk.limits if risk is not None else None
    out = {name: (format_money(getattr(limits, name + "_minor"))
                  if limits and getattr(limits, name + "_minor") is not None else None)
           for name in ("max_stake", "daily_stake", "weekly_stake", "max_exposure")}
    out["stake_factor"] = format_factor(limits.stake_factor if limits else None)
    return out

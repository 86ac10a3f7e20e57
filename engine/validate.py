"""`validate(engine)`: recompute every derived quantity from scratch and compare.

Slow and obviously correct on purpose; property tests call it after every command. A mismatch
raises InvariantBroken (a bug: fail loudly, recover by replay).
"""

from collections import defaultdict

from .commands import POOL
from .market import FINAL
from .money import win_amount
from .rejections import InvariantBroken
from .transfers import validate as validate_transfers


def _fail(message: str) -> None:
    raise InvariantBroken(message)


def validate(engine) -> None:
    orders_by_market = defaultdict(list)
    for o in engine.orders.values():
        if o.matched + o.remaining + o.cancelled + o.lapsed != o.size:
            _fail(f"sizes of {o} do not add up")
        if min(o.matched, o.remaining, o.cancelled, o.lapsed) < 0:
            _fail(f"negative size in {o}")
        orders_by_market[o.market].append(o)

    _check_refs(engine)

    holds = defaultdict(int)
    for m in engine.markets.values():
        _check_market(m, orders_by_market[m.id], holds)

    for wid, (user, currency, amount, state) in engine.withdrawals.items():
        if state == "pending":
            holds[(user, currency)] += amount

    totals = defaultdict(int)
    for key, w in engine.wallets.items():
        totals[w.currency] += w.balance
        if w.held != holds.get(key, 0):
            _fail(f"{w} held {w.held}, recomputed {holds.get(key, 0)}")
        if not w.exempt and w.available < 0:
            _fail(f"{w} has negative available")
    for currency, total in totals.items():
        if total != 0:
            _fail(f"{currency}: balances sum to {total}, not 0")
    validate_transfers(engine, _fail)


def _check_refs(engine) -> None:
    """Each (user, ref) names one order: a live one in `refs`, or a retired one."""
    for (user, ref), (oid, fields) in engine.refs.items():
        o = engine.orders.get(oid)
        if o is None or (o.user, o.ref) != (user, ref):
            _fail(f"ref {(user, ref)} names {oid}, not a live order of that user and ref")
        if fields != (o.market, o.selection, o.side, o.price, o.size, o.persistence, o.tif,
                      o.min_fill):
            _fail(f"ref {(user, ref)} holds fields {fields} that are not {o}'s")
    if len(engine.retired_refs) != len(engine.retired_orders):
        _fail("retired refs and retired orders differ in number")
    for key, oid in engine.retired_refs.items():
        if key in engine.refs or oid in engine.orders:
            _fail(f"ref {key} is both live and retired")
        r = engine.retired_orders.get(oid)
        if r is None or r.ref != key[1]:
            _fail(f"retired ref {key} names {oid}, which has no record of that ref")
        if r.matched_minor + r.cancelled_minor + r.lapsed_minor != r.size_minor:
            _fail(f"retired {oid} still has a remainder: {r}")
        if engine.markets[r.market].status not in FINAL:
            _fail(f"retired {oid} is on {r.market}, which is not final")


def _check_market(m, orders, holds) -> None:
    expected = {}
    open_ids = set()
    for o in orders:
        pos = expected.get(o.user)
        if pos is None:
            pos = expected[o.user] = m.new_position()
        if o.sel in m.removed:  # a non-runner's bets are void, and nothing of them remains
            if o.remaining:
                _fail(f"{o} still has remaining on a removed selection")
            continue
        if m.type == POOL:
            pos.lose[o.sel] -= o.matched
            pos.add_pool_stake(o.matched)
        elif o.matched:
            pos.add_matched(o.sel, o.is_back, o.matched, o.matched_win)
        if o.remaining:
            if m.type == POOL or m.status in FINAL:
                _fail(f"{o} has remaining on a {m.type} market in {m.status}")
            pos.add_unmatched(o.sel, o.is_back, o.price, 0, o.remaining)
            open_ids.add(o.id)
            if bool(o.release_ts) == o.in_book:
                _fail(f"{o} must be either delayed or in the book")
        elif o.in_book:
            _fail(f"complete {o} still in the book")
    if set(m.open_orders) != open_ids:
        _fail(f"{m.id}: open_orders disagree with order state")

    _check_fills(m, orders)
    for user, pos in m.positions.items():
        want = expected.get(user) or m.new_position()
        if (pos.win, pos.lose) != (want.win, want.lose):
            _fail(f"{m.id}/{user}: matched P&L {pos.win}/{pos.lose}, recomputed {want.win}/{want.lose}")
        if m.status in FINAL:
            if pos.hold:
                _fail(f"{m.id}/{user}: hold {pos.hold} after {m.status}")
            continue
        if (pos.edge, pos.const) != (want.edge, want.const):
            _fail(f"{m.id}/{user}: outcomes {pos.edge}+{pos.const}, recomputed {want.edge}+{want.const}")
        if pos.hold != want.needed_hold():
            _fail(f"{m.id}/{user}: hold {pos.hold}, recomputed {want.needed_hold()}")
        holds[(user, m.currency)] += pos.hold
    if set(expected) - set(m.positions):
        _fail(f"{m.id}: orders of users without a position")

    for i, book in enumerate(m.books):
        if i in m.removed and (book.backs.levels or book.lays.levels):
            _fail(f"{m.id}/{m.selection_ids[i]} was removed but has a book")
        for half in (book.backs, book.lays):
            for price, level in half.levels.items():
                live = [o for o in level.orders if o.remaining]
                if level.total != sum(o.remaining for o in live) or level.total <= 0:
                    _fail(f"{m.id}/{m.selection_ids[i]}@{price}: level total {level.total} wrong")
                if len(level.orders) - len(live) != level.dead:
                    _fail(f"{m.id}/{m.selection_ids[i]}@{price}: dead count wrong")
                for o in live:
                    if o.price != price or o.sel != i or not o.in_book or o.is_back != (half is book.backs):
                        _fail(f"{o} sits in the wrong level")
        for half in (book.backs, book.lays):
            actual = half.levels.peekitem(half.best_at)[0] if half.levels else None
            if half.best != actual:
                _fail(f"{m.id}/{m.selection_ids[i]}: cached best {half.best}, actual {actual}")
        best_lay, best_back = book.lays.best, book.backs.best
        if best_lay is not None and best_back is not None and best_lay >= best_back:
            _fail(f"{m.id}/{m.selection_ids[i]} crossed: lay {best_lay} >= back {best_back}")


def _check_fills(m, orders) -> None:
    """The fills kept for repricing add up, order by order, to what each order matched: size,
    value (size x price) and win amount (each fill's own, at its current price)."""
    if m.fills is None or m.type == POOL:
        return
    sums = defaultdict(lambda: [0, 0, 0])
    for taker, maker, price, size, _, _ in m.fills:
        if taker.sel in m.removed or taker.sel != maker.sel or taker.is_back == maker.is_back:
            _fail(f"{m.id}: fill of {taker.id} and {maker.id} is not a live back/lay pair")
        for o in (taker, maker):
            got = sums[o.id]
            got[0] += size
            got[1] += size * price
            got[2] += win_amount(size, price)
    for o in orders:
        if o.sel in m.removed:
            continue
        if sums.get(o.id, [0, 0, 0]) != [o.matched, o.matched_value, o.matched_win]:
            _fail(f"{o}: fills add up to {sums.get(o.id)}, not "
                  f"{[o.matched, o.matched_value, o.matched_win]}")

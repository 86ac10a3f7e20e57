"""Property tests: DESIGN.md §3 invariants 1-5 over generated command sequences.

Hypothesis draws whole trading sessions (several users and markets, every order kind,
suspensions, in-play turns with bet delays, non-runners removed with reduction factors,
settlements with dead heats, voids, deposits and withdrawals) and, after every command, checks:
  1. conservation: every ledger movement sums to zero, all balances sum to zero, and the users'
     side changes only by deposits and approved withdrawals;
  2. no wallet with available < 0, held == exposures recomputed from scratch (Engine.validate),
     and each exchange hold == the worst case of the outcomes left, brute force, order by
     order, from fill prices followed here from the events (a non-runner voids the fills on
     it and reduces the others' prices: BetRepriced must say exactly that);
  3. no crossed book; 4. order sizes add up (Engine.validate);
  5. replay: a fresh engine, and one restored from a mid-session pickle snapshot, fed the same
     commands yield byte-identical events and equal state.
A small, obviously correct reference book is also run against the fast book.
"""

import math
import pickle
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.codec import decode_command, encode_command, encode_events
from engine.engine import EXTERNAL, Engine
from engine.market import FINAL
from pricing.ladder import TICKS

USERS = ("alice", "bob", "carol", "dave")
PRICES = tuple(TICKS[i] for i in range(95, 112))  # 1.96 .. 2.22: dense, so orders cross
MARKETS = {
    "ex3": (c.EXCHANGE, ("h", "d", "a")),
    "ex2": (c.EXCHANGE, ("p", "q")),
    "pool": (c.POOL, ("x", "y", "z")),
}
REDUCTIONS = (0, 1, 249, 250, 1_234, 2_500, 9_000, 9_999, 10_000)  # bp; 10_000 is refused
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Session:
    """Applies commands with fresh seq/ts, checks invariants after each, records everything."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.seq = 0
        self.ts = 1_700_000_000_000
        self.log: list[c.Command] = []
        self.events: list[bytes] = []
        # (seq, idx) of each BetMatched -> [market, selection, price now, size, taker, maker]
        self.fills: dict[tuple[int, int], list] = {}

    def apply(self, cls, **fields) -> list[e.Event]:
        self.seq += 1
        cmd = cls(seq=self.seq, ts=self.ts, **fields)
        users_before = _users_total(self.engine)
        # settlement retires the market's orders from the engine: keep them for the oracle
        orders_before = list(self.engine.orders.values())
        events = self.engine.apply(cmd)
        self.engine.validate()
        flow = 0
        for ev in events:
            if isinstance(ev, e.MoneyMoved):
                assert sum(amount for _, amount in ev.entries) == 0, ev
                flow -= sum(a for acct, a in ev.entries if acct == EXTERNAL)
        assert _users_total(self.engine) - users_before == flow, "money appeared or vanished"
        for ev in events:
            if isinstance(ev, e.MarketSettled) and self.engine.markets[ev.market].type == c.EXCHANGE:
                _check_exchange_settlement(self.engine, ev, events, orders_before)
        self._follow_fills(events)
        _check_worst_cases(self.engine)
        self.log.append(cmd)
        self.events.append(encode_events(events))
        return events


    def _follow_fills(self, events: list) -> None:
        """Each fill's price, followed from the events with the rule written out here (odds x
        (1 - factor), rounded down, at least 1.01); then every live order's matched win must be
        the sum of its fills' win amounts at those prices."""
        repriced = []
        for idx, ev in enumerate(events):
            if isinstance(ev, e.BetMatched):
                self.fills[(ev.seq, idx)] = [ev.market, ev.selection, ev.price, ev.size_minor,
                                             ev.taker_order, ev.maker_order]
            elif isinstance(ev, e.SelectionRemoved):
                for key, fill in list(self.fills.items()):
                    if fill[0] != ev.market:
                        continue
                    if fill[1] == ev.selection:
                        del self.fills[key]  # void
                        continue
                    price = max(101, fill[2] * (10_000 - ev.reduction_bp) // 10_000)
                    if price != fill[2]:
                        repriced.append((key, fill[2], price, fill[3] * (price - 100) // 100))
                        fill[2] = price
            elif isinstance(ev, e.BetRepriced):
                assert ((ev.fill_seq, ev.fill_idx), ev.was_price, ev.price, ev.win_minor) == \
                    repriced.pop(0), ev
            elif isinstance(ev, (e.MarketSettled, e.MarketVoided)):
                for key in [k for k, f in self.fills.items() if f[0] == ev.market]:
                    del self.fills[key]
        assert not repriced, f"fills the engine did not reprice: {repriced}"
        wins: dict[str, int] = {}
        for _, _, price, size, taker, maker in self.fills.values():
            for oid in (taker, maker):
                wins[oid] = wins.get(oid, 0) + size * (price - 100) // 100
        for o in self.engine.orders.values():
            m = self.engine.markets[o.market]
            if m.type == c.EXCHANGE and o.sel not in m.removed:
                assert o.matched_win == wins.get(o.id, 0), o


def _check_worst_cases(engine: Engine) -> None:
    """Every exchange hold recomputed by brute force: per user and running selection k, each
    order's matched part at its exact amounts plus its unmatched part at its worst (a back loses
    its remainder when k is another selection, a lay its liability when k is its own)."""
    for m in engine.markets.values():
        if m.type != c.EXCHANGE or m.status in FINAL:
            continue
        running = [k for k in range(len(m.selection_ids)) if k not in m.removed]
        outcomes: dict[str, list[int]] = {user: [0] * len(running) for user in m.positions}
        for oid in m.order_ids:
            o = engine.orders[oid]
            if o.sel in m.removed:
                assert not o.remaining
                continue
            for i, k in enumerate(running):
                if o.is_back:
                    value = o.matched_win if k == o.sel else -o.matched
                    value -= o.remaining if k != o.sel else 0
                else:
                    value = -o.matched_win if k == o.sel else o.matched
                    value -= o.remaining * (o.price - 100) // 100 if k == o.sel else 0
                outcomes[o.user][i] += value
        for user, pos in m.positions.items():
            assert pos.hold == max(0, -min(outcomes[user])), (m.id, user)


def _check_exchange_settlement(engine: Engine, settled: e.MarketSettled, events: list,
                               orders: list) -> None:
    """Recompute every user's settlement order by order, independently of the positions."""
    m = engine.markets[settled.market]
    factors = {sid: Fraction(num, den) for sid, num, den in settled.dead_heat} or {
        sid: Fraction(1, len(settled.winners)) for sid in settled.winners}
    exact: dict[str, Fraction] = {}
    for o in orders:
        if o.market != m.id or not o.matched or o.sel in m.removed:  # a non-runner's: void
            continue
        f = factors.get(o.selection, Fraction(0))
        backer = f * o.matched_win - (1 - f) * o.matched  # a winner's stake wins f of the way
        exact[o.user] = exact.get(o.user, Fraction(0)) + (backer if o.is_back else -backer)
    pnl = {user: math.floor(v) for user, v in exact.items() if math.floor(v)}
    moved = [ev for ev in events if isinstance(ev, e.MoneyMoved) and ev.ref == m.id]
    settlement = dict(moved[0].entries) if moved else {}
    breakage = settlement.pop("house", 0)
    assert settlement == pnl
    assert breakage == -sum(pnl.values()) >= 0  # rounding never costs the house
    fees = {user: -amount for user, amount in (moved[1].entries if len(moved) > 1 else ())
            if amount < 0}
    assert fees == {user: v * m.commission_bp // 10000 for user, v in pnl.items()
                    if v > 0 and v * m.commission_bp // 10000}


def _users_total(engine: Engine) -> int:
    return sum(w.balance for (user, _), w in engine.wallets.items() if user != EXTERNAL)


def _fingerprint(engine: Engine) -> tuple:
    wallets = sorted((k, w.balance, w.held) for k, w in engine.wallets.items())
    orders = sorted((o.id, o.matched, o.remaining, o.cancelled, o.lapsed, o.matched_win,
                     o.release_ts, o.in_book) for o in engine.orders.values())
    books = []
    for mid, m in sorted(engine.markets.items()):
        books.append((mid, m.status, m.in_play, m.bet_delay_ms, tuple(m.traded)))
        for b in m.books:
            books.append((tuple(b.backs.depth(500)), tuple(b.lays.depth(500))))
            for half in (b.backs, b.lays):
                for level in half.levels.values():
                    books.append(tuple(o.id for o in level.orders if o.remaining))
    return wallets, orders, books


def _setup(s: Session, data) -> None:
    for mid, (mtype, sels) in MARKETS.items():
        s.apply(c.CreateMarket, market=mid, event="e1", name=mid, type=mtype,
                selections=tuple((x, x.upper()) for x in sels))
        s.apply(c.SetMarketStatus, market=mid, status="open")
    for i, user in enumerate(USERS):
        amount = data.draw(st.sampled_from([0, 500, 5_000, 100_000]), label=f"deposit {user}")
        if amount:
            s.apply(c.Deposit, user=user, currency="BDT", amount_minor=amount, ref=f"d{i}")


def _step(s: Session, data) -> None:
    eng = s.engine
    s.ts += data.draw(st.sampled_from([0, 0, 1, 700, 2_500, 6_000]), label="dt")
    kind = data.draw(st.sampled_from(
        ["place"] * 10 + ["cancel"] * 2 + ["replace", "cancel_all", "status", "settle", "void",
                                             "remove", "deposit", "withdraw",
                                             "finish_withdrawal", "tick"]),
        label="kind")
    user = data.draw(st.sampled_from(USERS), label="user")
    mid = data.draw(st.sampled_from(sorted(MARKETS)), label="market")
    sels = MARKETS[mid][1]
    own = [o.id for o in eng.orders.values() if o.user == user]
    if kind == "place":
        tif = data.draw(st.sampled_from([c.GTC, c.GTC, c.FOK]), label="tif")
        size = data.draw(st.integers(1, 4_000), label="size")
        s.apply(c.PlaceOrder, user=user, market=mid,
                selection=data.draw(st.sampled_from(sels + ("nope",)), label="sel"),
                side=data.draw(st.sampled_from([c.BACK, c.LAY]), label="side"),
                price=data.draw(st.sampled_from(PRICES + (201, 100_001)), label="price"),
                size_minor=size,
                persistence=data.draw(st.sampled_from([c.LAPSE, c.PERSIST]), label="pers"),
                tif=tif,
                min_fill_minor=data.draw(st.integers(0, size), label="mf") if tif == c.FOK else 0,
                ref=data.draw(st.sampled_from(["", "", "r1", "r2"]), label="ref"))
    elif kind == "cancel" and own:
        s.apply(c.CancelOrder, user=user, order=data.draw(st.sampled_from(own), label="oid"),
                size_reduction_minor=data.draw(st.sampled_from([0, 0, 1, 250, 10_000]),
                                               label="reduce"))
    elif kind == "replace" and own:
        s.apply(c.ReplaceOrder, user=user, order=data.draw(st.sampled_from(own), label="oid"),
                price=data.draw(st.sampled_from(PRICES), label="price"))
    elif kind == "cancel_all":
        s.apply(c.CancelAll, user=user, market=data.draw(st.sampled_from(["", mid]), label="m"))
    elif kind == "status":
        s.apply(c.SetMarketStatus, market=mid,
                status=data.draw(st.sampled_from(["open", "suspended", "closed", None]),
                                 label="status"),
                in_play=data.draw(st.sampled_from([None, None, True]), label="in_play"),
                bet_delay_ms=data.draw(st.sampled_from([None, 0, 5_000]), label="delay"))
    elif kind == "settle":
        winners = data.draw(st.lists(st.sampled_from(sels), min_size=1, max_size=2, unique=True),
                            label="winners")
        dead_heat = ()
        if len(winners) == 2 and data.draw(st.booleans(), label="explicit dh"):
            dead_heat = ((winners[0], 1, 3), (winners[1], 2, 3))
        s.apply(c.SettleMarket, market=mid, winners=tuple(winners), dead_heat=dead_heat)
    elif kind == "void":
        s.apply(c.VoidMarket, market=mid)
    elif kind == "remove":
        s.apply(c.RemoveSelection, market=mid,
                selection=data.draw(st.sampled_from(sels + ("nope",)), label="removed"),
                reduction_bp=data.draw(st.sampled_from(REDUCTIONS), label="reduction"))
    elif kind == "deposit":
        s.apply(c.Deposit, user=user, currency="BDT",
                amount_minor=data.draw(st.integers(1, 50_000), label="amount"),
                ref=data.draw(st.sampled_from(["d0", "x1", "x2", f"x{s.seq}"]), label="ref"))
    elif kind == "withdraw":
        s.apply(c.RequestWithdrawal, user=user, currency="BDT",
                amount_minor=data.draw(st.integers(1, 60_000), label="amount"))
    elif kind == "finish_withdrawal" and eng.withdrawals:
        wid = data.draw(st.sampled_from(sorted(eng.withdrawals)), label="wid")
        cls = data.draw(st.sampled_from([c.ApproveWithdrawal, c.RejectWithdrawal]), label="ok")
        s.apply(cls, withdrawal=wid)
    else:
        s.apply(c.Tick)


@SETTINGS
@given(st.data())
def test_invariants_hold_after_every_command_and_replay_is_identical(data):
    s = Session()
    _setup(s, data)
    steps = data.draw(st.integers(1, 80), label="steps")
    snapshot_at = data.draw(st.integers(0, steps), label="snapshot at")
    snapshot = None
    for i in range(steps):
        if i == snapshot_at:
            snapshot = (len(s.log), pickle.dumps(s.engine))
        _step(s, data)
    if snapshot is None:
        snapshot = (len(s.log), pickle.dumps(s.engine))

    # replay from empty, through the journal codec, must give the same bytes and state
    fresh = Engine()
    for cmd, recorded in zip(s.log, s.events):
        again = fresh.apply(decode_command(encode_command(cmd)))
        assert encode_events(again) == recorded
    assert _fingerprint(fresh) == _fingerprint(s.engine)

    # replay from a snapshot taken mid-session
    done, blob = snapshot
    restored = pickle.loads(blob)
    for cmd, recorded in zip(s.log[done:], s.events[done:]):
        assert encode_events(restored.apply(cmd)) == recorded
    restored.validate()
    assert _fingerprint(restored) == _fingerprint(s.engine)


# -- the fast book against an obviously correct reference ---------------------------------------


class ReferenceBook:
    """A list of resting orders; matching sorts candidates by (best price, arrival) each time."""

    def __init__(self) -> None:
        self.resting: list[dict] = []  # {"id", "back", "price", "remaining", "seq"}

    def place(self, oid: str, back: bool, price: int, size: int, seq: int) -> list[tuple]:
        if back:  # a back takes resting lays at its price or higher, highest first
            candidates = [r for r in self.resting if not r["back"] and r["price"] >= price]
            candidates.sort(key=lambda r: (-r["price"], r["seq"]))
        else:  # a lay takes resting backs at its price or lower, lowest first
            candidates = [r for r in self.resting if r["back"] and r["price"] <= price]
            candidates.sort(key=lambda r: (r["price"], r["seq"]))
        fills = []
        for maker in candidates:
            if size == 0:
                break
            take = min(size, maker["remaining"])
            maker["remaining"] -= take
            size -= take
            fills.append((maker["id"], maker["price"], take))
        self.resting = [r for r in self.resting if r["remaining"]]
        if size:
            self.resting.append({"id": oid, "back": back, "price": price, "remaining": size,
                                 "seq": seq})
        return fills

    def cancel(self, oid: str, reduction: int) -> None:
        for r in self.resting:
            if r["id"] == oid:
                r["remaining"] -= min(reduction or r["remaining"], r["remaining"])
        self.resting = [r for r in self.resting if r["remaining"]]

    def depth(self, back: bool) -> list[tuple[int, int]]:
        levels: dict[int, int] = {}
        for r in self.resting:
            if r["back"] == back:
                levels[r["price"]] = levels.get(r["price"], 0) + r["remaining"]
        return sorted(levels.items(), reverse=not back)

    def queue_ahead(self, oid: str) -> int:
        me = next(r for r in self.resting if r["id"] == oid)
        return sum(r["remaining"] for r in self.resting
                   if r["back"] == me["back"] and r["price"] == me["price"] and r["seq"] < me["seq"])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["place", "place", "place", "cancel"]),
                          st.booleans(), st.sampled_from(PRICES[:8]), st.integers(1, 3_000),
                          st.integers(0, 10**6)), min_size=1, max_size=120))
def test_fast_book_matches_the_reference_book(ops):
    s = Session()
    s.apply(c.CreateMarket, market="m", event="e", name="m", selections=(("s", "S"),))
    s.apply(c.SetMarketStatus, market="m", status="open")
    for user in USERS:
        s.apply(c.Deposit, user=user, currency="BDT", amount_minor=10**12, ref=user)
    ref = ReferenceBook()
    for kind, back, price, size, pick in ops:
        user = USERS[pick % len(USERS)]
        if kind == "cancel":
            live = [r["id"] for r in ref.resting]
            if not live:
                continue
            oid = live[pick % len(live)]
            reduction = 0 if pick % 3 == 0 else size
            s.apply(c.CancelOrder, user=s.engine.orders[oid].user, order=oid,
                    size_reduction_minor=reduction)
            ref.cancel(oid, reduction)
            continue
        events = s.apply(c.PlaceOrder, user=user, market="m", selection="s",
                         side=c.BACK if back else c.LAY, price=price, size_minor=size)
        fills = [(ev.maker_order, ev.price, ev.size_minor) for ev in events
                 if isinstance(ev, e.BetMatched)]
        assert fills == ref.place(f"o{s.seq}", back, price, size, s.seq)
        book = s.engine.markets["m"].books[0]
        assert book.backs.depth(100) == ref.depth(True)
        assert book.lays.depth(100) == ref.depth(False)
        for r in ref.resting:
            assert book.half_of(s.engine.orders[r["id"]]).queue_ahead(
                s.engine.orders[r["id"]]) == ref.queue_ahead(r["id"])


@SETTINGS
@given(st.data())
def test_settlement_pays_exactly_what_the_bets_say(data):
    s = Session()
    s.apply(c.CreateMarket, market="ex3", event="e", name="ex3", commission_bp=500,
            selections=(("h", "H"), ("d", "D"), ("a", "A")))
    s.apply(c.SetMarketStatus, market="ex3", status="open")
    for user in USERS:
        s.apply(c.Deposit, user=user, currency="BDT", amount_minor=10**9, ref=user)
    running = "hda"
    for _ in range(data.draw(st.integers(2, 40), label="orders")):
        s.apply(c.PlaceOrder, user=data.draw(st.sampled_from(USERS), label="user"), market="ex3",
                selection=data.draw(st.sampled_from("hda"), label="sel"),
                side=data.draw(st.sampled_from([c.BACK, c.LAY]), label="side"),
                price=data.draw(st.sampled_from(PRICES[:5]), label="price"),
                size_minor=data.draw(st.integers(1, 9_999), label="size"))
        if data.draw(st.integers(0, 9), label="non-runner?") == 0 and len(running) > 1:
            removed = data.draw(st.sampled_from(running), label="removed")
            s.apply(c.RemoveSelection, market="ex3", selection=removed,
                    reduction_bp=data.draw(st.sampled_from(REDUCTIONS[:-1]), label="reduction"))
            running = running.replace(removed, "")
    winners = tuple(data.draw(st.lists(st.sampled_from(running), min_size=1,
                                       max_size=len(running), unique=True), label="winners"))
    dead_heat = ()
    if len(winners) == 2 and data.draw(st.booleans(), label="uneven"):
        dead_heat = ((winners[0], 1, 3), (winners[1], 2, 3))
    events = s.apply(c.SettleMarket, market="ex3", winners=winners, dead_heat=dead_heat)
    assert any(isinstance(ev, e.MarketSettled) for ev in events)
    assert all(w.held == 0 for w in s.engine.wallets.values())
    assert not s.engine.orders and not s.engine.markets["ex3"].positions  # retired

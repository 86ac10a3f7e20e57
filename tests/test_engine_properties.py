"""Property tests: DESIGN.md §3 invariants 1-5 over generated command sequences.

Hypothesis draws whole trading sessions (several users and markets, every order kind,
suspensions, in-play turns with bet delays, non-runners removed with reduction factors,
settlements with dead heats, voids, deposits and withdrawals, transfers to and from other
shards) and, after every command, checks:
  1. conservation: every ledger movement sums to zero, all balances sum to zero, and the users'
     side changes only by deposits and approved withdrawals;
  2. no wallet with available < 0, held == exposures recomputed from scratch (Engine.validate),
     and each exchange hold == the worst case of the outcomes left, brute force, order by
     order, from fill prices followed here from the events (a non-runner voids the fills on
     it and reduces the others' prices: BetRepriced must say exactly that);
  3. no crossed book; 4. order sizes add up (Engine.validate);
  5. replay: a fresh engine, and one restored from a mid-session pickle snapshot, fed the same
     commands yield byte-identical events and equal state.
The sessions include the bettors' own limits and self-exclusion (risk/self_limits.py), and
`OwnOracle` recomputes their usage from the commands and events alone, then holds the engine to
its promises after every command: no accepted order or credited deposit takes a bettor past a
limit in force by even one minor unit, no refusal is unfounded, a raise never applies before
the cooling-off period since it was asked, nothing is placed or credited while self-excluded.
A small, obviously correct reference book is also run against the fast book.
"""

import math
import pickle
from collections import defaultdict
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import commands as c
from engine import events as e
from engine.codec import decode_command, encode_command, encode_events
from engine.engine import EXTERNAL, HOUSE, SYSTEM_ACCOUNTS, Engine
from engine.market import FINAL
from engine.rejections import Code
from pricing.ladder import TICKS
from risk import self_limits
from risk.rules import MS_PER_DAY, week_index

USERS = ("alice", "bob", "carol", "dave")
PRICES = tuple(TICKS[i] for i in range(95, 112))  # 1.96 .. 2.22: dense, so orders cross
MARKETS = {
    "ex3": (c.EXCHANGE, ("h", "d", "a")),
    "ex2": (c.EXCHANGE, ("p", "q")),
    "pool": (c.POOL, ("x", "y", "z")),
}
REDUCTIONS = (0, 1, 249, 250, 1_234, 2_500, 9_000, 9_999, 10_000)  # bp; 10_000 is refused
OWN_LIMIT_VALUES = (0, 1, 1_000, 2_500, 5_000, 20_000)
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
        self.own = OwnOracle()

    def apply(self, cls, **fields) -> list[e.Event]:
        self.seq += 1
        cmd = cls(seq=self.seq, ts=self.ts, **fields)
        users_before = _users_total(self.engine)
        # settlement retires the market's orders from the engine: keep them for the oracle
        orders_before = list(self.engine.orders.values())
        own_before = self.own.before(self.engine, cmd)
        events = self.engine.apply(cmd)
        self.engine.validate()
        self.own.check(self.engine, cmd, events, own_before)
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


class OwnOracle:
    """The bettors' own limits seen from outside the engine: usage per window recomputed from
    events (orders placed, cancelled and lapsed, deposits, settlements), limit requests and
    exclusions from commands; `check` holds the engine to the rules after every command."""

    def __init__(self) -> None:
        self.currency: dict[str, str] = {}  # market -> currency
        self.orders: dict[str, tuple] = {}  # order id -> (user, currency, placed ts)
        # (user, currency, kind, period, window index) -> staked | deposited | settled P&L
        self.used: dict[tuple, int] = defaultdict(int)
        # (user, cur, i) -> [(seq, ts, value, cooling-off then)]
        self.requests: dict[tuple, list] = defaultdict(list)
        self.cooling_ms = 86_400_000
        self.cooling_seq = 0  # when the operator last changed it
        self.excluded: dict[str, int] = {}

    @staticmethod
    def window(period: int, ts: int) -> int:
        return ts // MS_PER_DAY if period == self_limits.DAY else week_index(ts)

    def usage(self, user: str, cur: str, kind: int, period: int, ts: int) -> int:
        return self.used[(user, cur, kind, period, self.window(period, ts))]

    def _add(self, user: str, cur: str, kind: int, ts: int, amount: int,
             since_ts: int | None = None) -> None:
        for period in (self_limits.DAY, self_limits.WEEK):
            if since_ts is None or self.window(period, since_ts) == self.window(period, ts):
                self.used[(user, cur, kind, period, self.window(period, ts))] += amount

    @staticmethod
    def limit(engine: Engine, user: str, cur: str, i: int, ts: int):
        ownership = engine.self_limits.get(user)
        acct = ownership.accounts.get(cur) if ownership is not None else None
        return acct.limit_at(i, ts) if acct is not None else None

    @staticmethod
    def at_risk(engine: Engine, user: str, cur: str) -> int:
        return sum(m.positions[user].hold for m in engine.markets.values()
                   if m.currency == cur and user in m.positions)

    def before(self, engine: Engine, cmd) -> dict:
        """What `check` needs from before the command: limits in force and money at risk."""
        user = getattr(cmd, "user", None)
        out = {}
        if isinstance(cmd, c.SetSelfLimits):
            out["limits"] = [self.limit(engine, user, cmd.currency, i, cmd.ts)
                             for i in range(len(self_limits.NAMES))]
        if isinstance(cmd, (c.PlaceOrder, c.ReplaceOrder)) and user not in SYSTEM_ACCOUNTS:
            out["at_risk"] = {cur: self.at_risk(engine, user, cur)
                              for cur in set(self.currency.values())}
        return out

    def check(self, engine: Engine, cmd, events: list, before: dict) -> None:
        ts = cmd.ts
        user = getattr(cmd, "user", None)
        credited = placed = False
        for ev in events:
            if isinstance(ev, e.MarketCreated):
                self.currency[ev.market] = ev.currency
            elif isinstance(ev, e.OrderPlaced) and ev.user != HOUSE:
                cur = self.currency[ev.market]
                self.orders[ev.order] = (ev.user, cur, ts)
                self._add(ev.user, cur, self_limits.STAKE, ts, ev.size_minor)
                placed = placed or ev.user == user
            elif isinstance(ev, (e.OrderCancelled, e.OrderLapsed)) and ev.order in self.orders:
                owner, cur, placed_ts = self.orders[ev.order]
                self._add(owner, cur, self_limits.STAKE, ts, -ev.size_minor, since_ts=placed_ts)
            elif isinstance(ev, e.MoneyMoved):
                for account, amount in ev.entries:
                    if account in SYSTEM_ACCOUNTS:
                        continue
                    if ev.kind == "deposit":
                        self._add(account, ev.currency, self_limits.DEPOSIT, ts, amount)
                        credited = True
                    elif ev.kind in ("settlement", "commission"):
                        self._add(account, ev.currency, self_limits.LOSS, ts, amount)
            elif isinstance(ev, e.SelfLimitsSet):
                for name in self_limits.NAMES:
                    value = getattr(cmd, name + "_minor")
                    if value is not None or name in cmd.remove:
                        self.requests[(ev.user, ev.currency, self_limits.INDEX[name])].append(
                            (cmd.seq, ts, value, self.cooling_ms))
            elif isinstance(ev, e.SelfLimitsConfigured):
                self.cooling_ms, self.cooling_seq = ev.cooling_off_ms, cmd.seq
            elif isinstance(ev, e.SelfExcluded):
                self.excluded[ev.user] = ev.until_ts
                assert not any(o.user == ev.user and o.remaining
                               for o in engine.orders.values()), "an order survived exclusion"
            elif isinstance(ev, e.DepositRefused):
                self._refusal_is_founded(engine, ev.code, ev.user, ev.currency, ts,
                                         ev.amount_minor)
            elif isinstance(ev, e.CommandRejected) and isinstance(cmd, c.PlaceOrder):
                if ev.code in (Code.SELF_EXCLUDED, Code.SELF_STAKE_LIMIT):
                    cur = self.currency[cmd.market]
                    self._refusal_is_founded(engine, ev.code, user, cur, ts, cmd.size_minor)

        # usage: the engine's own counts are the ones recomputed here
        for owner, ownership in engine.self_limits.items():
            for cur, acct in ownership.accounts.items():
                for kind in (self_limits.DEPOSIT, self_limits.STAKE, self_limits.LOSS):
                    for period in (self_limits.DAY, self_limits.WEEK):
                        assert acct.used(kind, period, ts) == self.usage(
                            owner, cur, kind, period, ts), (owner, cur, kind, period)
                assert acct.withdrawing_minor == sum(
                    amount for u, wcur, amount, state in engine.withdrawals.values()
                    if (u, wcur, state) == (owner, cur, "pending"))

        # no accepted order or credited deposit passes a limit in force, or an exclusion
        if (placed or credited) and user is not None:
            assert ts >= self.excluded.get(user, 0), f"{user} acted while self-excluded"
        for cur in {self.currency[m] for m in self.currency}:
            if placed:
                for period in (self_limits.DAY, self_limits.WEEK):
                    limit = self.limit(engine, user, cur, 2 * self_limits.STAKE + period, ts)
                    assert limit is None or self.usage(user, cur, self_limits.STAKE, period,
                                                       ts) <= limit
                risk_now = self.at_risk(engine, user, cur)
                if risk_now > before["at_risk"].get(cur, 0):
                    for period in (self_limits.DAY, self_limits.WEEK):
                        limit = self.limit(engine, user, cur, 2 * self_limits.LOSS + period, ts)
                        lost = -self.usage(user, cur, self_limits.LOSS, period, ts)
                        assert limit is None or lost + risk_now <= limit, (user, period)
        if credited and isinstance(cmd, c.Deposit):
            for period in (self_limits.DAY, self_limits.WEEK):
                limit = self.limit(engine, user, cmd.currency, 2 * self_limits.DEPOSIT + period, ts)
                assert limit is None or self.usage(user, cmd.currency, self_limits.DEPOSIT, period,
                                                   ts) <= limit

        # a raise waits the cooling-off period: whatever was asked caps the limit for that long
        # (while the operator keeps the period); a lower applies at once; the last word stands
        for (owner, cur, i), asked in self.requests.items():
            in_force = self.limit(engine, owner, cur, i, ts)
            for asked_seq, asked_ts, value, cooling in asked:
                if (value is not None and asked_seq > self.cooling_seq
                        and asked_ts <= ts < asked_ts + cooling):
                    assert in_force is not None and in_force <= value, (owner, i, asked)
            # ... once every cooling-off it could still be waiting for is over: asking no more
            # than a pending raise keeps that raise's time, which an earlier cooling-off set
            # (the operator may have shortened it since)
            _, asked_ts, value, _ = asked[-1]
            if ts >= asked_ts + max(cooling for *_, cooling in asked):
                assert in_force == value, (owner, i, asked, in_force)
        if isinstance(cmd, c.SetSelfLimits) and any(isinstance(ev, e.SelfLimitsSet)
                                                    for ev in events):
            for i, was in enumerate(before["limits"]):
                value = getattr(cmd, self_limits.NAMES[i] + "_minor")
                if value is not None and (was is None or value <= was):
                    assert self.limit(engine, user, cmd.currency, i, ts) == value

    def _refusal_is_founded(self, engine, code, user, cur, ts, amount) -> None:
        if code == Code.SELF_EXCLUDED:
            assert ts < self.excluded.get(user, 0)
            return
        kind = self_limits.DEPOSIT if code == Code.SELF_DEPOSIT_LIMIT else self_limits.STAKE
        assert any(limit is not None and self.usage(user, cur, kind, period, ts) + amount > limit
                   for period in (self_limits.DAY, self_limits.WEEK)
                   for limit in [self.limit(engine, user, cur, 2 * kind + period, ts)]), code


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
    s.ts += data.draw(st.sampled_from([0, 0, 1, 700, 2_500, 6_000, 3 * 3_600_000,
                                       11 * 3_600_000]), label="dt")
    kind = data.draw(st.sampled_from(
        ["place"] * 10 + ["cancel"] * 2 + ["replace", "cancel_all", "status", "settle", "void",
                                             "remove", "deposit", "withdraw",
                                             "finish_withdrawal", "tick", "own_limits",
                                             "own_limits", "exclude", "cooling_off",
                                             "transfer_out", "transfer_in", "confirm"]),
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
    elif kind == "transfer_out":  # to this user's wallet on another shard
        s.apply(c.TransferOut, user=user, currency="BDT",
                amount_minor=data.draw(st.integers(1, 60_000), label="amount"), to_shard=1)
    elif kind == "transfer_in":  # from another shard: a new transfer, or one credited before
        seen = sorted(eng.transfers.credited)
        s.apply(c.TransferIn, user=user, currency="BDT",
                transfer=data.draw(st.sampled_from(seen + [f"t{10**12 + s.seq}"]), label="tid"),
                amount_minor=data.draw(st.integers(1, 60_000), label="amount"), from_shard=1)
    elif kind == "confirm":
        s.apply(c.ConfirmTransfer, transfer=data.draw(
            st.sampled_from(sorted(eng.transfers.pending) + ["t1"]), label="tid"))
    elif kind == "own_limits":
        names = data.draw(st.lists(st.sampled_from(self_limits.NAMES), min_size=1, max_size=3,
                                   unique=True), label="limits")
        values = {}
        for name in names:
            values[name] = data.draw(st.one_of(st.none(), st.sampled_from(OWN_LIMIT_VALUES),
                                               st.integers(0, 30_000)), label=name)
        s.apply(c.SetSelfLimits, user=user, currency="BDT",
                remove=tuple(n for n, v in values.items() if v is None),
                **{f"{n}_minor": v for n, v in values.items() if v is not None})
    elif kind == "exclude":
        if data.draw(st.booleans(), label="in days"):
            s.apply(c.ExcludeSelf, user=user, days=data.draw(st.integers(0, 2), label="days"))
        else:
            s.apply(c.ExcludeSelf, user=user,
                    until_ts=s.ts + data.draw(st.integers(0, 2 * MS_PER_DAY), label="until"))
    elif kind == "cooling_off":
        s.apply(c.ConfigureSelfLimits,
                cooling_off_ms=data.draw(st.sampled_from([0, 3_600_000, MS_PER_DAY]),
                                         label="cooling"))
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


# -- the bettors' own limits, to the minor unit --------------------------------------------------


@SETTINGS
@given(st.data())
def test_an_order_or_deposit_is_refused_exactly_when_it_would_pass_an_own_limit(data):
    """One bettor with every own limit set near the sizes drawn, placing backs that never match
    (so everything placed stays at risk), cancelling, depositing, across day and week ends:
    each order and deposit is accepted exactly when it keeps every limit (the oracle's usage
    plus the amount within each limit in force), refused with the limit's code otherwise."""
    s = Session()
    s.ts = 1_704_585_600_000 - 5 * 3_600_000  # Saturday 19:00 UTC: days and a week end soon
    s.apply(c.CreateMarket, market="m", event="e", name="m", selections=(("h", "H"), ("a", "A")))
    s.apply(c.SetMarketStatus, market="m", status="open")
    s.apply(c.Deposit, user="alice", currency="BDT", amount_minor=10**9, ref="seed")
    limits = {name: data.draw(st.one_of(st.none(), st.integers(0, 6_000)), label=name)
              for name in self_limits.NAMES}
    s.apply(c.SetSelfLimits, user="alice", currency="BDT",
            **{f"{n}_minor": v for n, v in limits.items() if v is not None})
    for step in range(data.draw(st.integers(1, 40), label="steps")):
        s.ts += data.draw(st.sampled_from([0, 1, 3_600_000, 7 * 3_600_000]), label="dt")
        what = data.draw(st.sampled_from(["place", "place", "cancel", "deposit"]), label="what")
        amount = data.draw(st.integers(1, 3_000), label="amount")
        at_risk = s.own.at_risk(s.engine, "alice", "BDT")

        def passes(kind: int) -> bool:
            extra = at_risk if kind == self_limits.LOSS else 0
            return all(limits[self_limits.NAMES[2 * kind + period]] is None
                       or extra + s.own.usage("alice", "BDT", kind, period, s.ts) + amount
                       <= limits[self_limits.NAMES[2 * kind + period]]
                       for period in (self_limits.DAY, self_limits.WEEK))

        if what == "place":
            expected = (None if passes(self_limits.STAKE) else Code.SELF_STAKE_LIMIT) or (
                None if passes(self_limits.LOSS) else Code.SELF_LOSS_LIMIT)
            events = s.apply(c.PlaceOrder, user="alice", market="m", selection="h",
                             side=c.BACK, price=1000, size_minor=amount)
            got = next((ev.code for ev in events if isinstance(ev, e.CommandRejected)), None)
            assert got == expected
        elif what == "deposit":
            expected = None if passes(self_limits.DEPOSIT) else Code.SELF_DEPOSIT_LIMIT
            events = s.apply(c.Deposit, user="alice", currency="BDT", amount_minor=amount,
                             ref=f"p{step}")
            got = next((ev.code for ev in events if isinstance(ev, e.DepositRefused)), None)
            assert got == expected
        else:
            live = [o.id for o in s.engine.orders.values() if o.remaining]
            if live:
                s.apply(c.CancelOrder, user="alice",
                        order=data.draw(st.sampled_from(live), label="order"),
                        size_reduction_minor=amount)

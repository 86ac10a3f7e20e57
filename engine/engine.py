"""The engine: `apply(command) -> list[Event]`, the only way exchange state changes.

Every handler validates first and raises `Rejected` before touching state, so a rejected command
changes nothing; after that it mutates and records events. Where an order is matched:
`Engine._execute` (book.match + `_fill`). Where a hold is taken: `_rehold`, after every change to
a position. Where money moves: `_move_money`, one balanced ledger movement at a time.

setup.py compiles this module and the state classes with Cython, typed by engine.pxd (why: there).
"""

import copyreg
import dataclasses
import heapq
from fractions import Fraction

from pricing.ladder import INDEX as LADDER
from pricing.ladder import MAX_PRICE
from risk import rules
from risk.self_limits import (EXCLUSION_DAYS_MAX, EXCLUSION_MIN_MS, INDEX as OWN_LIMIT_INDEX,
                              NAMES as OWN_LIMIT_NAMES, OwnAccount, SelfLimits, check_deposit,
                              check_excluded, check_loss, check_stake, format_utc)

from . import commands as c
from . import events as e
from . import house
# compiled, `c.BACK` would be a module attribute lookup on every use; a global is a cached read
from .commands import BACK, EXCHANGE, FOK, GTC, LAPSE, LAY, PERSIST, POOL
from .config import EngineConfig
from .user_risk import UserRisk
from .exposure import Position, lowest
from .market import CLOSED, FINAL, OPEN, SETTLED, START_TS_MAX, SUSPENDED, VOIDED, Market
from .money import MAX_MINOR, format_money, format_odds, reduced_price, win_amount
from .order import Order
from .rejections import Code, InvariantBroken, Rejected
from .retired import retired
from .transfers import TRANSIT, Transfers
from . import transfers
from .wallet import Wallet

HOUSE = house.HOUSE
COMMISSION = "commission"
EXTERNAL = "external"
SYSTEM_ACCOUNTS = (HOUSE, COMMISSION, EXTERNAL, TRANSIT)
_STATUS_NAMES = {"open": OPEN, "suspended": SUSPENDED, "closed": CLOSED}
_PERSISTENCES = (LAPSE, PERSIST)
_TIFS = (GTC, FOK)
# What one apply builds and returns: never part of a snapshot (see Engine.__getstate__).
_SCRATCH = ("_events", "_touched")
# A non-runner this material (2.5%, Betfair's win-market rule) also lapses every unmatched lay
# on the other selections: a removal shortens their odds, so those offers became too generous.
LAPSE_LAYS_FROM_BP = 250
# Each accepted value mapped to the module's own string: an order keeps that one shared object
# instead of the copy every parsed command brings (see _place).
_SHARED = {value: value for value in _PERSISTENCES + _TIFS}
COOLING_OFF_MS_MAX = 90 * 86_400_000  # a bettor's raise never waits longer than 90 days


class Engine:
    # Every attribute, fixed: compiled, engine.pxd turns them into typed C fields (so are the
    # other state classes'); run uncompiled, they are ordinary slots.
    __slots__ = ("config", "risk", "_house_order_count", "markets", "orders", "wallets", "refs",
                 "deposits", "withdrawals", "delayed", "last_seq", "last_ts", "_seq", "_ts",
                 "retired_refs", "retired_orders", "self_limits", "refused_deposits", "transfers",
                 *_SCRATCH)

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.risk: dict[str, UserRisk] = {}  # user -> limits and running totals
        self._house_order_count = 0
        self.markets: dict[str, Market] = {}
        self.orders: dict[str, Order] = {}
        self.wallets: dict[tuple[str, str], Wallet] = {}
        self.refs: dict[tuple[str, str], tuple] = {}  # (user, ref) -> (order id, fields)
        # a ref outlives its order's market (see _retire): (user, ref) -> order id, and that
        # order id -> its final record (engine/retired.py), for the reply to a repeat
        self.retired_refs: dict[tuple[str, str], str] = {}
        self.retired_orders: dict[str, tuple] = {}
        self.deposits: dict[str, tuple[str, str, int]] = {}  # ref -> (user, currency, amount)
        # bettors' own limits and self-exclusion, and usage for everyone: user -> SelfLimits
        self.self_limits: dict[str, SelfLimits] = {}
        # deposits those refused, for good: ref -> (user, currency, amount, code, reason)
        self.refused_deposits: dict[str, tuple] = {}
        self.withdrawals: dict[str, list] = {}  # id -> [user, currency, amount, state]
        self.delayed: list[tuple[int, int, str]] = []  # heap of (release_ts, seq, order id)
        self.transfers = Transfers()  # money to and from other shards (engine/transfers.py)
        self.last_seq = 0
        self.last_ts = 0
        self._seq = 0
        self._ts = 0
        self._events: list = []
        # wallets whose balance or hold this apply changed, each once (WalletChanged events)
        self._touched: dict[Wallet, Wallet] = {}

    # -- the one entry point ------------------------------------------------------------------

    def apply(self, cmd: c.Command) -> list[e.Event]:
        if cmd.seq <= self.last_seq:
            raise InvariantBroken(f"seq {cmd.seq} not after {self.last_seq}")
        self.last_seq = self._seq = cmd.seq
        self.last_ts = self._ts = cmd.ts
        events = self._events = []
        touched = self._touched = {}
        if self.delayed and self.delayed[0][0] <= cmd.ts:
            self._release_delayed()
        try:
            # the two commands of nearly every apply are direct C calls, the rest a table lookup
            kind = type(cmd)
            if kind is c.PlaceOrder:
                self._place(cmd)
            elif kind is c.CancelOrder:
                self._cancel(cmd)
            else:
                _HANDLERS[kind](self, cmd)
        except Rejected as r:
            events.append(e.CommandRejected(seq=self._seq, ts=self._ts, code=r.code, reason=r.reason))
        for w in touched.values():
            events.append(e.wallet_changed(seq=self._seq, ts=self._ts, user=w.user,
                                           currency=w.currency, balance_minor=w.balance,
                                           held_minor=w.held))
        return events

    # -- snapshots ----------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        """The engine without one apply's scratch (its event list and touched wallets): a
        snapshot holds state, never events, so it does not depend on how events pickle."""
        return {name: getattr(self, name) for name in _STATE}

    def __reduce__(self):
        # a compiled class pickles by this explicitly, in the layout snapshots always had
        return (copyreg.__newobj__, (type(self),), self.__getstate__())

    def __setstate__(self, state: dict) -> None:
        # snapshots taken before the commands and events were compiled still carry the scratch,
        # pickled in the old event layout: it is dropped, never restored
        for name in _SCRATCH:
            state.pop(name, None)
        # snapshots taken before refs outlived their markets have no retired refs
        self.retired_refs = {}
        self.retired_orders = {}
        self.transfers = Transfers()  # nor those taken before shards moved money
        # nor those taken before bettors had limits of their own; usage counts from here on
        self.self_limits = {}
        self.refused_deposits = {}
        for name, value in state.items():
            setattr(self, name, value)  # a name the engine no longer has fails loudly here
        if "self_limits" not in state:
            for user, currency, amount, status in self.withdrawals.values():
                if status == "pending":
                    acct = self._own_account(user, currency)
                    acct.withdrawing_minor += amount
        self._events = []
        self._touched = {}
        # A market from a snapshot taken before fills were kept (Market.__setstate__) that has
        # matched nothing yet has none to keep: it records its fills from now on. One that has
        # keeps None: its fills are unknown, and a removal there is refused (_remove_selection).
        matched = {o.market for o in self.orders.values() if o.matched}
        for m in self.markets.values():
            if m.fills is None and m.type == EXCHANGE and m.id not in matched:
                m.fills = []

    def next_release_ts(self) -> int | None:
        """When the next delayed in-play order is due (the sequencer sends a Tick then)."""
        return self.delayed[0][0] if self.delayed else None

    # -- lookups ------------------------------------------------------------------------------

    def wallet(self, user: str, currency: str) -> Wallet:
        key = (user, currency)
        w = self.wallets.get(key)
        if w is None:
            w = self.wallets[key] = Wallet(user, currency,
                                           exempt=user in (HOUSE, EXTERNAL, TRANSIT))
        return w

    def _own_account(self, user: str, currency: str) -> OwnAccount:
        """The user's own limits and usage in `currency`, made on first use."""
        own = self.self_limits.get(user)
        if own is None:
            own = self.self_limits[user] = SelfLimits()
        return own.account(currency)

    def _market(self, market_id: str) -> Market:
        m = self.markets.get(market_id)
        if m is None:
            raise Rejected(Code.UNKNOWN_MARKET, f"no market {market_id!r}")
        return m

    def _own_order(self, user: str, order_id: str) -> Order:
        o = self.orders.get(order_id)
        if o is None or o.user != user:  # another user's order is as good as unknown
            raise Rejected(Code.UNKNOWN_ORDER, f"no order {order_id!r}")
        return o

    @staticmethod
    def _require_open(m: Market) -> None:
        if m.status == OPEN:
            return
        if m.status == SUSPENDED:
            raise Rejected(Code.MARKET_SUSPENDED, f"market {m.id} is suspended")
        raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is {m.status.lower()}")

    def _emit(self, event: e.Event) -> None:
        self._events.append(event)

    # -- markets ------------------------------------------------------------------------------

    def _create_market(self, cmd: c.CreateMarket) -> None:
        if cmd.market in self.markets:
            raise Rejected(Code.BAD_REQUEST, f"market {cmd.market!r} exists")
        ids = [sid for sid, _ in cmd.selections]
        if not ids or len(set(ids)) != len(ids):
            raise Rejected(Code.BAD_REQUEST, "a market needs distinct selections")
        if cmd.type not in (EXCHANGE, POOL):
            raise Rejected(Code.BAD_REQUEST, f"unknown market type {cmd.type!r}")
        if not (0 <= cmd.commission_bp <= 10000 and 0 <= cmd.take_bp <= 10000):
            raise Rejected(Code.BAD_REQUEST, "rates are basis points 0..10000")
        if cmd.start_ts is not None and not 0 <= cmd.start_ts <= START_TS_MAX:
            raise Rejected(Code.BAD_REQUEST, "start_ts is ms since the epoch, up to year 9999")
        self.markets[cmd.market] = Market(cmd.market, cmd.event, cmd.name, cmd.type, cmd.currency,
                                          cmd.selections, cmd.commission_bp, cmd.take_bp,
                                          cmd.start_ts)
        self._emit(e.MarketCreated(seq=self._seq, ts=self._ts, market=cmd.market, event=cmd.event,
                                   name=cmd.name, type=cmd.type, currency=cmd.currency,
                                   selections=cmd.selections, commission_bp=cmd.commission_bp,
                                   take_bp=cmd.take_bp, start_ts=cmd.start_ts))

    def _set_status(self, cmd: c.SetMarketStatus) -> None:
        m = self._market(cmd.market)
        if m.status in FINAL or m.status == CLOSED:
            raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is {m.status.lower()}")
        status = m.status
        if cmd.status is not None:
            status = _STATUS_NAMES.get(cmd.status)
            if status is None:
                raise Rejected(Code.BAD_REQUEST, f"unknown status {cmd.status!r}")
        if cmd.in_play is False and m.in_play:
            raise Rejected(Code.BAD_REQUEST, "a market cannot leave in-play")
        if cmd.bet_delay_ms is not None and not 0 <= cmd.bet_delay_ms <= 60_000:
            raise Rejected(Code.BAD_REQUEST, "bet_delay_ms must be 0..60000")

        if status == SUSPENDED and m.status != SUSPENDED:
            for o in list(m.open_orders.values()):
                if o.release_ts:  # delayed orders never reach a book that suspended meanwhile
                    self._take_off(m, o, o.remaining, "suspended", lapse=False)
        if cmd.in_play and not m.in_play:
            for o in list(m.open_orders.values()):
                if o.persistence == LAPSE:
                    self._take_off(m, o, o.remaining, "in_play", lapse=True)
            m.in_play = True
        if cmd.bet_delay_ms is not None:
            m.bet_delay_ms = cmd.bet_delay_ms
        if status == CLOSED:
            self._close(m, "closed")
        m.status = status
        self._emit(e.MarketStatusChanged(seq=self._seq, ts=self._ts, market=m.id, status=m.status,
                                         in_play=m.in_play, bet_delay_ms=m.bet_delay_ms))

    def _close(self, m: Market, reason: str) -> None:
        for o in list(m.open_orders.values()):
            self._take_off(m, o, o.remaining, reason, lapse=True)

    # -- orders -------------------------------------------------------------------------------

    def _place(self, cmd: c.PlaceOrder) -> None:
        vetted = self._vet_place(cmd)
        if vetted is None:
            return
        m, sel, pos, wallet, risk, delayed = vetted
        user = cmd.user
        # accepted: from here on, state changes
        if pos.wallet is None:
            pos.wallet = wallet or self.wallet(user, m.currency)
            m.positions[user] = pos
        # The wallet's user, the market's selection id and the module's persistence and tif
        # strings are equal to the command's but shared by every order: hundreds of thousands
        # of open orders then hold four strings fewer each, in memory and in snapshots (pickle
        # writes a shared object once).
        size = cmd.size_minor
        ref = cmd.ref
        o = Order(f"o{self._seq}", pos.wallet.user, m.id, m.selection_ids[sel], sel,
                  cmd.side == BACK, cmd.price, size, _SHARED[cmd.persistence],
                  _SHARED[cmd.tif], cmd.min_fill_minor, ref, self._seq, pos, pos.wallet)
        self._register(m, o)
        if ref:
            self.refs[(user, ref)] = (o.id, _place_fields(cmd))
        if risk is None:
            risk = self.risk[user] = UserRisk(self.config)
        risk.record(size, self._ts)
        if user != HOUSE:
            self._own_account(user, m.currency).record_stake(size, self._ts, self._seq)
        self._admit(m, o, delayed)

    def _vet_place(self, cmd: c.PlaceOrder):
        """Every check of a place, in precedence order, without changing anything.

        Raises Rejected; returns None for a repeat of a known ref (PlaceRepeated emitted), else
        (market, selection index, position, wallet, user risk, delayed?) for `_place`/preview.
        """
        # each field read once: on the compiled command every read is a descriptor call
        user = cmd.user
        side = cmd.side
        tif = cmd.tif
        min_fill = cmd.min_fill_minor
        ref = cmd.ref
        is_back = side == BACK
        if not is_back and side != LAY:
            raise Rejected(Code.BAD_REQUEST, f"side must be back or lay, not {side!r}")
        if cmd.persistence not in _PERSISTENCES or tif not in _TIFS:
            raise Rejected(Code.BAD_REQUEST, "persistence is lapse|persist, tif is gtc|fok")
        if min_fill and tif != FOK:
            raise Rejected(Code.BAD_REQUEST, "min_fill goes with tif fok only")
        risk = self.risk.get(user)
        if risk is not None and risk.velocity is not None:
            _deny(risk.velocity.check(self._ts))
        m = self.markets.get(cmd.market)
        if m is None:
            raise Rejected(Code.UNKNOWN_MARKET, f"no market {cmd.market!r}")
        found = m.index.get(cmd.selection)
        if found is None:
            raise Rejected(Code.UNKNOWN_SELECTION, f"no selection {cmd.selection!r} in {m.id}")
        sel = found  # a C index once compiled: None can only be checked on `found`
        if ref:
            key = (user, ref)
            prior = self.refs.get(key)
            if prior is not None:
                oid, fields = prior
            else:
                oid = self.retired_refs.get(key)
                if oid is not None:
                    fields = self.retired_orders[oid].place_fields()
            if oid is not None:
                if fields == _place_fields(cmd):
                    self._emit(e.PlaceRepeated(seq=self._seq, ts=self._ts, order=oid,
                                               user=user))
                    return None
                raise Rejected(Code.DUPLICATE_REF, f"ref {ref!r} was used for another order")
        if m.status != OPEN:
            self._require_open(m)
        if m.removed and sel in m.removed:
            raise Rejected(Code.SELECTION_REMOVED,
                           f"{cmd.selection} was removed from {m.id}: a non-runner")
        price = cmd.price
        size = cmd.size_minor
        if m.type == POOL and not is_back:
            raise Rejected(Code.BAD_REQUEST, "pool markets take back bets only")
        if price not in LADDER:
            raise Rejected(Code.INVALID_ODDS, f"{format_odds(price)} is not on the odds ladder")
        if not 0 < size <= MAX_MINOR:
            raise Rejected(Code.INVALID_SIZE,
                           f"size must be positive, at most {format_money(MAX_MINOR)}")
        if not 0 <= min_fill <= size:
            raise Rejected(Code.INVALID_SIZE, "min_fill must be between 0 and size")
        limits = m.limits
        if limits is not None and user != HOUSE:
            _deny(rules.check_market_stake(limits, size))
        user_limits = risk.limits if risk is not None else None
        if user_limits is not None:
            _deny(rules.check_user_stake(user_limits, risk.windows, size, self._ts,
                                         limits.max_stake_minor if limits else None))
        pos = m.positions.get(user)
        if pos is None:
            pos = self._new_position(m)  # kept only if the order is accepted
            wallet = self.wallets.get((user, m.currency))
        else:
            wallet = pos.wallet
        if m.type == POOL:
            new_hold = pos.hold + size
        else:
            new_hold = pos.hold_with(sel, is_back, price, size)
        if user_limits is not None:
            _deny(rules.check_max_exposure(user_limits, new_hold))
        own = self.self_limits.get(user)
        if own is not None:
            self._vet_own(own, m.currency, wallet, size, new_hold - pos.hold)
        if m.quotes is not None and m.quotes.suspended[sel]:
            raise Rejected(Code.LIABILITY_LIMIT,
                           f"{cmd.selection} is suspended: the house reached its liability limit")
        if user == HOUSE:
            # both caps bound every outcome, and the worst outcome is the hold
            _deny(rules.check_house_liability(limits or rules.MarketLimits(), new_hold, new_hold))
        elif new_hold > pos.hold:
            self._check_funds(wallet, new_hold - pos.hold)
        delayed = m.in_play and m.bet_delay_ms > 0
        if tif == FOK and not delayed and m.type == EXCHANGE:
            need = min_fill or size
            if m.books[sel].matchable(is_back, price, need) < need:
                raise Rejected(Code.FOK_NOT_FILLED, "not enough at that price or better")

        return m, sel, pos, wallet, risk, delayed

    def _vet_own(self, own: SelfLimits, currency: str, wallet: Wallet | None, stake: int,
                 more_at_risk: int, replaced: Order | None = None) -> None:
        """The bettor's own limits on an order: self-exclusion, stake and loss limits (an order
        that puts no more at risk, a hedge, passes the loss limits whatever they say)."""
        _deny(check_excluded(own, self._ts))
        acct = own.accounts.get(currency)
        if acct is None or not acct.limited:
            return
        if replaced is None:
            _deny(check_stake(acct, stake, self._ts))
        else:
            _deny(check_stake(acct, stake, self._ts, replaced.placed_seq, replaced.remaining))
        if more_at_risk > 0:
            at_risk = wallet.held - acct.withdrawing_minor if wallet is not None else 0
            _deny(check_loss(acct, at_risk, more_at_risk, self._ts))

    def _new_position(self, m: Market) -> Position:
        """A position on `m` for a user's first order there (bench/engine.py overrides it)."""
        return m.new_position()

    def _register(self, m: Market, o: Order) -> None:
        self.orders[o.id] = o
        m.order_ids.append(o.id)

    def _retire(self, m: Market) -> None:
        """A settled or voided market is final and its history is journaled (and persisted):
        forget its orders and positions, so engine memory, snapshots and restart time follow
        the open markets, not every bet ever placed. A ref is for ever, though: each ref'd
        order leaves a small final record behind (engine/retired.py)."""
        for oid in m.order_ids:
            o = self.orders.pop(oid, None)
            if o is not None and o.ref:
                key = (o.user, o.ref)
                if self.refs.get(key, ("",))[0] == oid:
                    del self.refs[key]
                    self.retired_refs[key] = oid
                    self.retired_orders[oid] = retired(o)
        m.order_ids = []
        m.positions = {}
        if m.fills is not None:
            m.fills = []
        if m.quotes is not None:
            m.quotes.orders = [[] for _ in m.selection_ids]

    def _admit(self, m: Market, o: Order, delayed: bool) -> None:
        """Record an accepted order, hold for it as unmatched, then delay it or execute it."""
        if m.type == POOL:
            self._emit(self._placed_event(o))
            self._pool_stake(m, o)
            return
        o.pos.add_unmatched(o.sel, o.is_back, o.price, 0, o.remaining)
        if delayed:
            o.release_ts = self._ts + m.bet_delay_ms
            heapq.heappush(self.delayed, (o.release_ts, self._seq, o.id))
            m.open_orders[o.id] = o
            self._emit(self._placed_event(o))
            self._rehold(o.pos, o.wallet)
            return
        self._emit(self._placed_event(o))
        self._execute(m, o)

    def _placed_event(self, o: Order) -> e.OrderPlaced:
        return e.order_placed(seq=self._seq, ts=self._ts, order=o.id, user=o.user,
                              market=o.market, selection=o.selection,
                              side=BACK if o.is_back else LAY, price=o.price, size_minor=o.size,
                              persistence=o.persistence, tif=o.tif, ref=o.ref,
                              release_ts=o.release_ts)

    def _check_funds(self, wallet: Wallet | None, extra_hold: int) -> None:
        if extra_hold <= 0 or (wallet is not None and wallet.exempt):
            return
        available = wallet.balance - wallet.held if wallet is not None else 0
        if extra_hold > available:
            raise Rejected(Code.INSUFFICIENT_FUNDS,
                           f"needs {format_money(extra_hold)} more held, "
                           f"{format_money(available)} available")

    def _execute(self, m: Market, o: Order) -> None:
        """Match an order against its book, then rest what is left (GTC) or cancel it (FOK)."""
        book = m.books[o.sel]
        fills = book.match(o, o.remaining)
        house_hit = False
        for maker, price, size in fills:
            self._fill(m, o, maker, price, size)
            house_hit = house_hit or maker.user == HOUSE
        if o.remaining:
            if o.tif == FOK:
                self._take_off(m, o, o.remaining, "fok", lapse=False)
            else:
                book.half_of(o).add(o)
                m.open_orders[o.id] = o
        self._rehold(o.pos, o.wallet)
        if house_hit and o.user != HOUSE:
            house.after_house_matched(self, m)

    def _fill(self, m: Market, taker: Order, maker: Order, price: int, size: int) -> None:
        win = size * (price - 100) // 100  # money.win_amount, inlined on the hot path
        sel = taker.sel
        before = taker.remaining
        taker.remaining = before - size
        taker.matched += size
        taker.matched_value += size * price
        taker.matched_win += win
        maker.matched_value += size * price
        maker.matched_win += win
        taker.pos.fill(sel, taker.is_back, taker.price, before, size, win)
        mpos = maker.pos
        mpos.fill(sel, maker.is_back, price, maker.remaining + size, size, win)
        self._rehold(mpos, maker.wallet)
        if not maker.remaining:
            del m.open_orders[maker.id]
        m.traded[sel] += size
        m.ltp[sel] = price
        fills = m.fills
        if fills is not None:  # kept for repricing (a non-runner); the event's place is its key
            fills.append((taker, maker, price, size, self._seq, len(self._events)))
        self._emit(e.bet_matched(seq=self._seq, ts=self._ts, market=m.id,
                                 selection=taker.selection, price=price, size_minor=size,
                                 win_minor=win, taker_order=taker.id, taker_user=taker.user,
                                 taker_side=BACK if taker.is_back else LAY,
                                 maker_order=maker.id, maker_user=maker.user))

    def _rehold(self, pos: Position, wallet: Wallet) -> None:
        worst = lowest(pos.edge) + pos.const
        hold = -worst if worst < 0 else 0
        if hold != pos.hold:
            wallet.held += hold - pos.hold
            pos.hold = hold
            self._touched[wallet] = wallet

    def _take_off(self, m: Market, o: Order, size: int, reason: str, lapse: bool) -> None:
        """Cancel or lapse `size` of an order's unmatched remainder and release its hold."""
        if size <= 0:
            return
        before = o.remaining
        o.remaining = before - size
        if lapse:
            o.lapsed += size
        else:
            o.cancelled += size
        if o.in_book:
            m.books[o.sel].half_of(o).reduce(o, size)
        o.pos.add_unmatched(o.sel, o.is_back, o.price, before, o.remaining)
        self._rehold(o.pos, o.wallet)
        if not o.remaining:
            m.open_orders.pop(o.id, None)
        own = self.self_limits.get(o.user)
        if own is not None:  # stake that never matched is no longer used
            acct = own.accounts.get(m.currency)
            if acct is not None:
                acct.give_back(o.placed_seq, size, self._ts, self._seq)
        event = e.OrderLapsed if lapse else e.OrderCancelled
        self._emit(event(seq=self._seq, ts=self._ts, order=o.id, user=o.user, size_minor=size,
                         reason=reason))

    def _cancel(self, cmd: c.CancelOrder) -> None:
        o = self._own_order(cmd.user, cmd.order)
        if cmd.size_reduction_minor < 0:
            raise Rejected(Code.INVALID_SIZE, "size_reduction must be positive")
        if not o.remaining:
            return  # already complete: the end state the caller asked for holds
        size = cmd.size_reduction_minor or o.remaining
        self._take_off(self.markets[o.market], o, min(size, o.remaining), "requested",
                       lapse=False)

    def _cancel_all(self, cmd: c.CancelAll) -> None:
        if cmd.market:
            markets = [self._market(cmd.market)]
        else:
            markets = list(self.markets.values())
        for m in markets:
            for o in [o for o in m.open_orders.values() if o.user == cmd.user]:
                self._take_off(m, o, o.remaining, "requested", lapse=False)

    def _replace(self, cmd: c.ReplaceOrder) -> None:
        o = self._own_order(cmd.user, cmd.order)
        m = self.markets[o.market]
        if not o.remaining:
            raise Rejected(Code.INVALID_SIZE, f"order {o.id} has nothing left to replace")
        self._require_open(m)
        if cmd.price not in LADDER:
            raise Rejected(Code.INVALID_ODDS, f"{format_odds(cmd.price)} is not on the odds ladder")
        size = o.remaining
        new_hold = o.pos.hold_if([(o.sel, o.is_back, o.price, size, 0),
                                  (o.sel, o.is_back, cmd.price, 0, size)])
        own = self.self_limits.get(o.user)
        if own is not None:  # a replace places a new order: the bettor's own limits apply
            self._vet_own(own, m.currency, o.wallet, size, new_hold - o.pos.hold, replaced=o)
        self._check_funds(o.wallet, new_hold - o.pos.hold)

        new = Order(f"o{self._seq}", o.user, m.id, o.selection, o.sel, o.is_back, cmd.price,
                    size, o.persistence, o.tif, 0, "", self._seq, o.pos, o.wallet)
        self._emit(e.OrderReplaced(seq=self._seq, ts=self._ts, order=o.id, user=o.user,
                                   new_order=new.id))
        self._take_off(m, o, size, "replaced", lapse=False)
        self._register(m, new)
        self._own_account(new.user, m.currency).record_stake(size, self._ts, self._seq)
        self._admit(m, new, m.in_play and m.bet_delay_ms > 0)

    def _tick(self, cmd: c.Tick) -> None:
        """Nothing to do: releasing due delayed orders happens at the start of every apply."""

    def _release_delayed(self) -> None:
        delayed = self.delayed
        while delayed and delayed[0][0] <= self._ts:
            _, _, oid = heapq.heappop(delayed)
            o = self.orders.get(oid)
            if o is None or not o.remaining or not o.release_ts:
                continue  # cancelled, lapsed or retired while waiting
            m = self.markets[o.market]
            o.release_ts = 0
            self._emit(e.OrderReleased(seq=self._seq, ts=self._ts, order=o.id, user=o.user))
            if o.tif == FOK:
                need = o.min_fill or o.size
                if m.books[o.sel].matchable(o.is_back, o.price, need) < need:
                    self._take_off(m, o, o.remaining, "fok", lapse=False)
                    continue
            del m.open_orders[o.id]
            self._execute(m, o)

    # -- pool markets -------------------------------------------------------------------------

    def _pool_stake(self, m: Market, o: Order) -> None:
        """A pool bet is matched into the pool at once; its whole stake is at risk."""
        m.pool_stakes[o.sel] += o.size
        o.remaining = 0
        o.matched = o.size
        o.pos.add_pool_stake(o.size)
        o.pos.lose[o.sel] -= o.size
        m.traded[o.sel] += o.size
        self._rehold(o.pos, o.wallet)
        self._emit(e.PoolStaked(seq=self._seq, ts=self._ts, order=o.id, user=o.user,
                                market=m.id, selection=o.selection, size_minor=o.size))

    # -- settlement ---------------------------------------------------------------------------

    def _settle(self, cmd: c.SettleMarket) -> None:
        m = self._market(cmd.market)
        if m.status in FINAL:
            raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is already {m.status.lower()}")
        factors = self._dead_heat_factors(m, cmd)
        if m.status != CLOSED:
            self._close(m, "closed")
            m.status = CLOSED
        if m.type == POOL:
            self._settle_pool(m, factors)
        else:
            self._settle_exchange(m, factors)
        m.status = SETTLED
        self._retire(m)
        self._emit(e.MarketSettled(seq=self._seq, ts=self._ts, market=m.id, winners=cmd.winners,
                                   dead_heat=cmd.dead_heat))
        self._emit(e.MarketStatusChanged(seq=self._seq, ts=self._ts, market=m.id, status=SETTLED,
                                         in_play=m.in_play, bet_delay_ms=m.bet_delay_ms))

    @staticmethod
    def _dead_heat_factors(m: Market, cmd: c.SettleMarket) -> dict[int, Fraction]:
        if not cmd.winners or len(set(cmd.winners)) != len(cmd.winners):
            raise Rejected(Code.BAD_REQUEST, "winners must be distinct and not empty")
        for sid in cmd.winners:
            if sid not in m.index:
                raise Rejected(Code.UNKNOWN_SELECTION, f"no selection {sid!r} in {m.id}")
        for sid in cmd.winners:
            if m.index[sid] in m.removed:
                raise Rejected(Code.SELECTION_REMOVED, f"{sid} did not run: it cannot win")
        if not cmd.dead_heat:
            # several winners with no factors given: a dead heat shared equally
            return {m.index[sid]: Fraction(1, len(cmd.winners)) for sid in cmd.winners}
        given = {}
        for sid, num, den in cmd.dead_heat:
            if sid not in cmd.winners or den <= 0 or not 0 < num <= den or sid in given:
                raise Rejected(Code.BAD_REQUEST, "dead_heat: one factor in (0, 1] per winner")
            given[sid] = Fraction(num, den)
        if set(given) != set(cmd.winners) or sum(given.values()) != 1:
            # factors must describe one place shared among the tied winners, so every
            # settlement is a weighted mix of the single-winner outcomes the holds covered
            raise Rejected(Code.BAD_REQUEST, "dead_heat factors must cover every winner, sum 1")
        return {m.index[sid]: f for sid, f in given.items()}

    def _settle_exchange(self, m: Market, factors: dict[int, Fraction]) -> None:
        entries = []
        commission = []
        total = 0
        for user, pos in m.positions.items():
            # P&L = every bet's lose-side result, plus the tied share of the winners' win side
            pnl = sum(pos.lose)
            exact = Fraction(pnl)
            for sel, f in factors.items():
                exact += f * (pos.win[sel] - pos.lose[sel])
            pnl = exact.numerator // exact.denominator  # floor: breakage goes to the house
            total += pnl
            if pnl:
                entries.append((user, pnl))
            fee = 0
            if pnl > 0 and user != HOUSE:
                fee = pnl * m.commission_bp // 10000
                if fee:
                    commission.append((user, -fee))
            if pnl and user != HOUSE:
                self._own_account(user, m.currency).record_settled(pnl - fee, self._ts,
                                                                   self._seq)
        if total:
            entries.append((HOUSE, -total))
        self._release_holds(m)
        self._move_money("settlement", m.id, m.currency, entries)
        if commission:
            fees = sum(-fee for _, fee in commission)
            self._move_money("commission", m.id, m.currency, commission + [(COMMISSION, fees)])

    def _settle_pool(self, m: Market, factors: dict[int, Fraction]) -> None:
        pool = sum(m.pool_stakes)
        backed = {sel: f for sel, f in factors.items() if m.pool_stakes[sel]}
        entries = []
        if not backed:  # nobody backed a winner: everyone gets the stake back
            self._release_holds(m)
            return
        weight = sum(backed.values())
        take = pool * m.take_bp // 10000
        net = pool - take
        paid = 0
        for user, pos in m.positions.items():
            staked = -sum(pos.lose)
            share = Fraction(0)
            for sel, f in backed.items():
                mine = -pos.lose[sel]
                if mine:
                    share += Fraction(mine * net, m.pool_stakes[sel]) * f / weight
            payout = share.numerator // share.denominator
            paid += payout
            if payout != staked:
                entries.append((user, payout - staked))
                if user != HOUSE:
                    self._own_account(user, m.currency).record_settled(payout - staked,
                                                                       self._ts, self._seq)
        entries.append((HOUSE, take + (net - paid)))
        self._release_holds(m)
        self._move_money("settlement", m.id, m.currency, entries)

    def _void(self, cmd: c.VoidMarket) -> None:
        m = self._market(cmd.market)
        if m.status in FINAL:
            raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is already {m.status.lower()}")
        self._close(m, "voided")
        self._release_holds(m)
        m.status = VOIDED
        self._retire(m)
        self._emit(e.MarketVoided(seq=self._seq, ts=self._ts, market=m.id))
        self._emit(e.MarketStatusChanged(seq=self._seq, ts=self._ts, market=m.id, status=VOIDED,
                                         in_play=m.in_play, bet_delay_ms=m.bet_delay_ms))

    # -- non-runners --------------------------------------------------------------------------

    def _remove_selection(self, cmd: c.RemoveSelection) -> None:
        """A non-runner, as Betfair's rules have it: the selection's unmatched orders lapse and
        its matched bets are void; every bet matched so far on the other selections has its odds
        reduced by the factor, fill by fill; with a factor of LAPSE_LAYS_FROM_BP or more, the
        unmatched lays on the others lapse too (and the house stops quoting until the trader
        prices the field again); every hold is then the worst case of the outcomes left."""
        bp = cmd.reduction_bp
        if not 0 <= bp < 10_000:
            raise Rejected(Code.BAD_REQUEST, "the reduction factor must be at least 0, below 1")
        m = self._market(cmd.market)
        found = m.index.get(cmd.selection)
        if found is None:
            raise Rejected(Code.UNKNOWN_SELECTION, f"no selection {cmd.selection!r} in {m.id}")
        r = found
        if m.type != EXCHANGE:
            raise Rejected(Code.BAD_REQUEST, "only an exchange market's selections are removed")
        if m.status in FINAL:
            raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is already {m.status.lower()}")
        if r in m.removed:
            raise Rejected(Code.SELECTION_REMOVED, f"{cmd.selection} was removed already")
        if len(m.removed) + 1 >= len(m.selection_ids):
            raise Rejected(Code.BAD_REQUEST, "the last running selection cannot be removed: "
                                             "void the market instead")
        if m.fills is None and bp and any(
                self.orders[oid].matched and self.orders[oid].sel != r
                for oid in m.order_ids if oid in self.orders):
            raise Rejected(Code.BAD_REQUEST, f"the fills of {m.id} were matched before this "
                                             "exchange kept fills: they cannot be repriced")

        lapse_lays = bp >= LAPSE_LAYS_FROM_BP
        for o in list(m.open_orders.values()):
            if o.sel == r or (lapse_lays and not o.is_back):
                self._take_off(m, o, o.remaining, "removed", lapse=True)
        q = m.quotes
        if q is not None:  # the house never quotes a non-runner again
            q.orders[r] = []
            q.offered[r] = 0
        for pos in m.positions.values():
            pos.remove_outcome(r)
        m.removed[r] = (bp, self._ts)
        self._emit(e.SelectionRemoved(seq=self._seq, ts=self._ts, market=m.id,
                                      selection=cmd.selection, reduction_bp=bp))
        if m.fills is not None:
            self._reprice(m, r, bp)
        for pos in m.positions.values():
            self._rehold(pos, pos.wallet)
        if q is not None:
            if lapse_lays:  # prices for a field that no longer runs: the trader sets new ones
                q.margined = {}
            house.requote(self, m, range(len(m.selection_ids)))

    def _reprice(self, m: Market, removed: int, bp: int) -> None:
        """Drop the removed selection's fills (void) and reduce the others' prices, each fill's
        win amount recomputed exactly as matching computes it, for both orders of the fill."""
        q = m.quotes
        quoting = {oid for ids in q.orders for oid in ids} if q is not None else set()
        kept = []
        for fill in m.fills:
            taker, maker, price, size, seq, idx = fill
            sel = taker.sel
            if sel == removed:
                continue
            new_price = reduced_price(price, bp)
            if new_price != price:
                won = win_amount(size, new_price) - win_amount(size, price)
                value = size * (new_price - price)
                for o in (taker, maker):
                    o.matched_win += won
                    o.matched_value += value
                    o.pos.add_matched(sel, o.is_back, 0, won)
                    if q is not None and o.user == HOUSE and not o.is_back and (
                            o.id not in quoting):
                        # a pulled house lay's rounding gap moved with it (house.py, `unbooked`)
                        q.unbooked[sel] += value - 100 * won
                self._emit(e.BetRepriced(
                    seq=self._seq, ts=self._ts, market=m.id, selection=taker.selection,
                    fill_seq=seq, fill_idx=idx, size_minor=size, was_price=price,
                    price=new_price, win_minor=win_amount(size, new_price),
                    taker_order=taker.id, taker_user=taker.user, maker_order=maker.id,
                    maker_user=maker.user))
                fill = (taker, maker, new_price, size, seq, idx)
            kept.append(fill)
        m.fills = kept

    def _release_holds(self, m: Market) -> None:
        for user, pos in m.positions.items():
            if pos.hold:
                w = self.wallets[(user, m.currency)]
                w.held -= pos.hold
                pos.hold = 0
                self._touched[w] = w

    # -- money --------------------------------------------------------------------------------

    def _move_money(self, kind: str, ref: str, currency: str, entries: list) -> None:
        if sum(amount for _, amount in entries) != 0:
            raise InvariantBroken(f"{kind} {ref} does not balance: {entries}")
        for account, amount in entries:
            w = self.wallet(account, currency)
            w.balance += amount
            self._touched[w] = w
        self._emit(e.MoneyMoved(seq=self._seq, ts=self._ts, kind=kind, ref=ref, currency=currency,
                                entries=tuple(entries)))

    def _deposit(self, cmd: c.Deposit) -> None:
        if not cmd.ref:
            raise Rejected(Code.BAD_REQUEST, "a deposit needs the provider's ref")
        if cmd.user in SYSTEM_ACCOUNTS:
            raise Rejected(Code.FORBIDDEN, f"{cmd.user!r} is a system account")
        fields = (cmd.user, cmd.currency, cmd.amount_minor)
        prior = self.deposits.get(cmd.ref)
        if prior is not None:
            if prior == fields:
                self._emit(e.DepositRepeated(seq=self._seq, ts=self._ts, ref=cmd.ref,
                                             user=cmd.user))
                return
            raise Rejected(Code.DUPLICATE_REF, f"deposit ref {cmd.ref!r} was used differently")
        refused = self.refused_deposits.get(cmd.ref)
        if refused is not None:
            if refused[:3] == fields:  # a retry: refused again, the same way, even if the
                raise Rejected(refused[3], refused[4])  # limit has reset meanwhile
            raise Rejected(Code.DUPLICATE_REF, f"deposit ref {cmd.ref!r} was used differently")
        if not 0 < cmd.amount_minor <= MAX_MINOR:
            raise Rejected(Code.INVALID_SIZE,
                           f"amount must be positive, at most {format_money(MAX_MINOR)}")
        acct = self._own_account(cmd.user, cmd.currency)
        own = self.self_limits[cmd.user]
        denial = (check_excluded(own, self._ts)
                  or (check_deposit(acct, cmd.amount_minor, self._ts) if acct.limited else None))
        if denial is not None:
            # the money is with the provider already: the ref is refused for good, so that
            # the provider returns it rather than retry until a limit resets
            self.refused_deposits[cmd.ref] = fields + (denial.code, denial.reason)
            self._emit(e.DepositRefused(seq=self._seq, ts=self._ts, ref=cmd.ref, user=cmd.user,
                                        currency=cmd.currency, amount_minor=cmd.amount_minor,
                                        code=denial.code, reason=denial.reason))
            return
        self.deposits[cmd.ref] = fields
        acct.record_deposit(cmd.amount_minor, self._ts, self._seq)
        self._move_money("deposit", cmd.ref, cmd.currency,
                         [(EXTERNAL, -cmd.amount_minor), (cmd.user, cmd.amount_minor)])

    def _request_withdrawal(self, cmd: c.RequestWithdrawal) -> None:
        if cmd.amount_minor <= 0:
            raise Rejected(Code.INVALID_SIZE, "amount must be positive")
        if cmd.user in SYSTEM_ACCOUNTS:
            raise Rejected(Code.FORBIDDEN, f"{cmd.user!r} is a system account")
        w = self.wallets.get((cmd.user, cmd.currency))
        if w is None or w.available < cmd.amount_minor:
            raise Rejected(Code.INSUFFICIENT_FUNDS, "withdrawal above the available balance")
        wid = f"w{self._seq}"
        self.withdrawals[wid] = [cmd.user, cmd.currency, cmd.amount_minor, "pending"]
        w.held += cmd.amount_minor
        acct = self._own_account(cmd.user, cmd.currency)
        acct.withdrawing_minor += cmd.amount_minor  # held, but not at risk
        self._touched[w] = w
        self._emit(e.WithdrawalRequested(seq=self._seq, ts=self._ts, withdrawal=wid, user=cmd.user,
                                         currency=cmd.currency, amount_minor=cmd.amount_minor))

    def _pending_withdrawal(self, wid: str) -> list:
        wd = self.withdrawals.get(wid)
        if wd is None or wd[3] != "pending":
            raise Rejected(Code.BAD_REQUEST, f"no pending withdrawal {wid!r}")
        return wd

    def _finish_withdrawal(self, cmd, approved: bool) -> None:
        wd = self._pending_withdrawal(cmd.withdrawal)
        user, currency, amount, _ = wd
        wd[3] = "approved" if approved else "rejected"
        w = self.wallets[(user, currency)]
        w.held -= amount
        acct = self._own_account(user, currency)
        acct.withdrawing_minor -= amount
        self._touched[w] = w
        event = e.WithdrawalApproved if approved else e.WithdrawalRejected
        self._emit(event(seq=self._seq, ts=self._ts, withdrawal=cmd.withdrawal, user=user,
                         currency=currency, amount_minor=amount))
        if approved:
            self._move_money("withdrawal", cmd.withdrawal, currency,
                             [(user, -amount), (EXTERNAL, amount)])

    def _approve_withdrawal(self, cmd: c.ApproveWithdrawal) -> None:
        self._finish_withdrawal(cmd, approved=True)

    def _reject_withdrawal(self, cmd: c.RejectWithdrawal) -> None:
        self._finish_withdrawal(cmd, approved=False)

    # -- limits and prices (trader) ------------------------------------------------------------

    def _set_market_limits(self, cmd: c.SetMarketLimits) -> None:
        m = self._market(cmd.market)
        values = (cmd.max_liability_minor, cmd.selection_max_liability_minor,
                  cmd.min_stake_minor, cmd.max_stake_minor)
        if any(v is not None and v < 0 for v in values):
            raise Rejected(Code.BAD_REQUEST, "limits must not be negative")
        # a copy: a rejection below must leave the market's limits untouched
        limits = dataclasses.replace(m.limits) if m.limits else rules.MarketLimits()
        # an absent field leaves that limit as it was, so setting one never wipes the others
        for name, value in zip(("max_liability_minor", "selection_max_liability_minor",
                                "min_stake_minor", "max_stake_minor"), values):
            if value is not None:
                setattr(limits, name, value)
        if (limits.min_stake_minor is not None and limits.max_stake_minor is not None
                and limits.min_stake_minor > limits.max_stake_minor):
            raise Rejected(Code.BAD_REQUEST, "min_stake above max_stake")
        m.limits = limits
        self._emit(e.MarketLimitsSet(
            seq=self._seq, ts=self._ts, market=m.id,
            max_liability_minor=limits.max_liability_minor,
            selection_max_liability_minor=limits.selection_max_liability_minor,
            min_stake_minor=limits.min_stake_minor, max_stake_minor=limits.max_stake_minor))
        if m.quotes is not None and m.status not in FINAL and m.status != CLOSED:
            m.quotes.suspended = [False] * len(m.selection_ids)
            house.requote(self, m, range(len(m.selection_ids)))

    def _set_user_limits(self, cmd: c.SetUserLimits) -> None:
        values = (cmd.max_stake_minor, cmd.daily_stake_minor, cmd.weekly_stake_minor,
                  cmd.max_exposure_minor)
        if any(v is not None and v < 0 for v in values):
            raise Rejected(Code.BAD_REQUEST, "limits must not be negative")
        if cmd.stake_factor is not None:
            num, den = cmd.stake_factor
            if den <= 0 or num < 0:
                raise Rejected(Code.BAD_REQUEST, "stake_factor must be a non-negative fraction")
        risk = self.risk.get(cmd.user)
        if risk is None:
            risk = self.risk[cmd.user] = UserRisk(self.config)
        limits = dataclasses.replace(risk.limits) if risk.limits else rules.UserLimits()
        for name in ("max_stake_minor", "daily_stake_minor", "weekly_stake_minor",
                     "stake_factor", "max_exposure_minor"):
            value = getattr(cmd, name)
            if value is not None:
                setattr(limits, name, tuple(value) if name == "stake_factor" else value)
        risk.limits = limits
        self._emit(e.UserLimitsSet(
            seq=self._seq, ts=self._ts, user=cmd.user, max_stake_minor=limits.max_stake_minor,
            daily_stake_minor=limits.daily_stake_minor,
            weekly_stake_minor=limits.weekly_stake_minor, stake_factor=limits.stake_factor,
            max_exposure_minor=limits.max_exposure_minor))

    def _set_prices(self, cmd: c.SetPrices) -> None:
        m = self._market(cmd.market)
        if m.type != EXCHANGE:
            raise Rejected(Code.BAD_REQUEST, "the house quotes exchange markets only")
        if m.status in FINAL or m.status == CLOSED:
            raise Rejected(Code.MARKET_NOT_OPEN, f"market {m.id} is {m.status.lower()}")
        fair = dict(cmd.prices)
        for sid, price in fair.items():
            if sid not in m.index:
                raise Rejected(Code.UNKNOWN_SELECTION, f"no selection {sid!r} in {m.id}")
            if m.index[sid] in m.removed:
                raise Rejected(Code.SELECTION_REMOVED, f"{sid} was removed: it has no price")
            if not 100 < price <= MAX_PRICE:
                raise Rejected(Code.INVALID_ODDS, f"fair odds {format_odds(price)} out of range")
        running = {m.selection_ids[s] for s in m.running()}
        if len(fair) != len(cmd.prices) or set(fair) != running:
            raise Rejected(Code.BAD_REQUEST, "price every running selection of the market once")
        if not 0 <= cmd.margin_bp <= 10000:
            raise Rejected(Code.BAD_REQUEST, "margin must be 0..1 (0..10000 bp)")
        house.set_prices(self, m, fair, cmd.margin_bp)
        q = m.quotes
        self._emit(e.PricesSet(seq=self._seq, ts=self._ts, market=m.id, fair=cmd.prices,
                               offered=tuple((sid, q.offered[s])
                                             for s, sid in enumerate(m.selection_ids)
                                             if q.offered[s]),
                               margin_bp=cmd.margin_bp))

    def _configure(self, cmd: c.Configure) -> None:
        if min(cmd.velocity_orders_max, cmd.house_default_liability_minor,
               cmd.house_back_ticks) < 0 or cmd.velocity_window_ms <= 0:
            raise Rejected(Code.BAD_REQUEST, "settings must not be negative")
        self.config = dataclasses.replace(
            self.config, velocity_orders_max=cmd.velocity_orders_max,
            velocity_window_ms=cmd.velocity_window_ms,
            house_default_liability_minor=cmd.house_default_liability_minor,
            house_back_ticks=cmd.house_back_ticks)
        for risk in self.risk.values():  # new velocity windows start empty for everyone
            risk.velocity = UserRisk(self.config).velocity
        self._emit(e.Configured(seq=self._seq, ts=self._ts,
                                velocity_orders_max=cmd.velocity_orders_max,
                                velocity_window_ms=cmd.velocity_window_ms,
                                house_default_liability_minor=cmd.house_default_liability_minor,
                                house_back_ticks=cmd.house_back_ticks))

    # -- the bettor's own limits (risk/self_limits.py) -------------------------------------------

    def _set_self_limits(self, cmd: c.SetSelfLimits) -> None:
        if cmd.user in SYSTEM_ACCOUNTS:
            raise Rejected(Code.FORBIDDEN, f"{cmd.user!r} is a system account")
        wanted = {}
        for name in OWN_LIMIT_NAMES:
            value = getattr(cmd, name + "_minor")
            if value is None:
                continue
            if not 0 <= value <= MAX_MINOR:
                raise Rejected(Code.INVALID_SIZE,
                               f"{name} must be 0 to {format_money(MAX_MINOR)}")
            wanted[OWN_LIMIT_INDEX[name]] = value
        for name in cmd.remove:
            i = OWN_LIMIT_INDEX.get(name)
            if i is None:
                raise Rejected(Code.BAD_REQUEST, f"no limit {name!r}")
            if i in wanted:
                raise Rejected(Code.BAD_REQUEST, f"{name} is both set and removed")
            wanted[i] = None
        if not wanted:
            raise Rejected(Code.BAD_REQUEST, "name at least one limit to set or remove")
        acct = self._own_account(cmd.user, cmd.currency)
        acct.request(wanted, self._ts, self.config.self_limit_cooling_off_ms)
        limits = acct.limits
        self._emit(e.SelfLimitsSet(
            seq=self._seq, ts=self._ts, user=cmd.user, currency=cmd.currency,
            daily_deposit_minor=limits[0], weekly_deposit_minor=limits[1],
            daily_stake_minor=limits[2], weekly_stake_minor=limits[3],
            daily_loss_minor=limits[4], weekly_loss_minor=limits[5],
            pending=tuple((OWN_LIMIT_NAMES[i], p[0], p[1])
                          for i, p in enumerate(acct.pending) if p is not None)))

    def _exclude_self(self, cmd: c.ExcludeSelf) -> None:
        if cmd.user in SYSTEM_ACCOUNTS:
            raise Rejected(Code.FORBIDDEN, f"{cmd.user!r} is a system account")
        if (cmd.days == 0) == (cmd.until_ts == 0):
            raise Rejected(Code.BAD_REQUEST, "give either days or until")
        if cmd.days:
            if not 1 <= cmd.days <= EXCLUSION_DAYS_MAX:
                raise Rejected(Code.BAD_REQUEST, f"days must be 1 to {EXCLUSION_DAYS_MAX}")
            until = self._ts + cmd.days * rules.MS_PER_DAY
        else:
            until = cmd.until_ts
            if not EXCLUSION_MIN_MS <= until - self._ts <= EXCLUSION_DAYS_MAX * rules.MS_PER_DAY:
                raise Rejected(Code.BAD_REQUEST, f"until must be 1 to {EXCLUSION_DAYS_MAX} "
                               f"days from now")
        own = self.self_limits.get(cmd.user)
        if own is not None and until < own.excluded_until_ms:
            raise Rejected(Code.BAD_REQUEST,
                           f"a self-exclusion cannot be shortened: it runs until "
                           f"{format_utc(own.excluded_until_ms)}")
        if own is None:
            own = self.self_limits[cmd.user] = SelfLimits()
        own.excluded_until_ms = until
        self._emit(e.SelfExcluded(seq=self._seq, ts=self._ts, user=cmd.user, until_ts=until))
        for m in self.markets.values():
            for o in [o for o in m.open_orders.values() if o.user == cmd.user]:
                self._take_off(m, o, o.remaining, "self_excluded", lapse=False)

    def _configure_self_limits(self, cmd: c.ConfigureSelfLimits) -> None:
        if not 0 <= cmd.cooling_off_ms <= COOLING_OFF_MS_MAX:
            raise Rejected(Code.BAD_REQUEST,
                           f"cooling_off_ms must be 0 to {COOLING_OFF_MS_MAX}")
        self.config = dataclasses.replace(self.config,
                                          self_limit_cooling_off_ms=cmd.cooling_off_ms)
        self._emit(e.SelfLimitsConfigured(seq=self._seq, ts=self._ts,
                                          cooling_off_ms=cmd.cooling_off_ms))

    # -- queries (not journaled, no state change) ---------------------------------------------

    def preview(self, cmd: c.PlaceOrder) -> "Preview":
        """What placing `cmd` now would do: the fills, the rest, the delay, wallet and exposure
        after. The same checks as a real place; a would-be rejection is reported, not raised."""
        from .preview import preview

        return preview(self, cmd)

    # -- self-check ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Recompute every derived quantity from scratch and compare (DESIGN.md §3, 1-4)."""
        from .validate import validate

        validate(self)


_STATE = tuple(name for name in Engine.__slots__ if name not in _SCRATCH)


def _deny(denial: rules.Denial | None) -> None:
    if denial is not None:
        raise Rejected(denial.code, denial.reason)


def _place_fields(cmd: c.PlaceOrder) -> tuple:
    return (cmd.market, cmd.selection, cmd.side, cmd.price, cmd.size_minor, cmd.persistence,
            cmd.tif, cmd.min_fill_minor)


_HANDLERS = {
    c.CreateMarket: Engine._create_market,
    c.SetMarketStatus: Engine._set_status,
    c.SettleMarket: Engine._settle,
    c.VoidMarket: Engine._void,
    c.RemoveSelection: Engine._remove_selection,
    c.ReplaceOrder: Engine._replace,
    c.CancelAll: Engine._cancel_all,
    c.Tick: Engine._tick,
    c.Deposit: Engine._deposit,
    c.RequestWithdrawal: Engine._request_withdrawal,
    c.ApproveWithdrawal: Engine._approve_withdrawal,
    c.RejectWithdrawal: Engine._reject_withdrawal,
    c.SetMarketLimits: Engine._set_market_limits,
    c.SetUserLimits: Engine._set_user_limits,
    c.SetPrices: Engine._set_prices,
    c.Configure: Engine._configure,
    c.SetSelfLimits: Engine._set_self_limits,
    c.ExcludeSelf: Engine._exclude_self,
    c.ConfigureSelfLimits: Engine._configure_self_limits,
    c.TransferOut: transfers.transfer_out,
    c.TransferIn: transfers.transfer_in,
    c.ConfirmTransfer: transfers.confirm_transfer,
}

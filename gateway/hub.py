"""Fan-out: journaled events -> owner pushes, conflated market data, slips, operator exposure.

`on_batch` is a sequencer renderer: it runs right after a batch is applied, when the engine
holds exactly that batch's state, renders each order, fill and wallet change for its owner, and
returns the sends, which the sequencer releases once the batch is journaled. The flush loop then, at most once
per `conflation_ms`, reads those markets between batches and sends each subscriber one delta per
market (with its own seq) however many matches happened meanwhile.
"""

import asyncio
import logging
import time

import orjson

from engine import events as e
from engine.money import format_money, format_odds

from . import slips as slip_pricing
from .session import Session, Subscription, text_frame
from .order_json import order_json
from .views import delta, image, market_state, wallet_view

log = logging.getLogger(__name__)

_ORDER_EVENTS = (e.OrderCancelled, e.OrderLapsed, e.OrderReleased, e.PoolStaked)


class Hub:
    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.settings = exchange.settings
        self.metrics = exchange.metrics
        self.sessions: set[Session] = set()
        self.order_watchers: dict[str, set[Session]] = {}
        self.market_watchers: dict[str, set[Session]] = {}
        self.exposure_watchers: set[Session] = set()
        self.slip_watchers: set[Session] = set()
        self.user_orders: dict[str, dict[str, str]] = {}  # user -> order id -> market
        self.published: dict[str, dict] = {}
        self._dirty: dict[str, None] = {}
        self._stale: dict[tuple[Session, str], None] = {}
        self._exposure_dirty = True
        self._tasks: list[asyncio.Task] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def index_orders(self, engine) -> None:
        """After recovery: who owns which current order (the `orders` op lists them)."""
        for oid, o in engine.orders.items():
            if engine.markets[o.market].status not in ("SETTLED", "VOIDED"):
                self.user_orders.setdefault(o.user, {})[oid] = o.market

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._flush_loop(), name="hub-flush"),
                       asyncio.create_task(self._exposure_loop(), name="hub-exposure"),
                       asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- sessions -----------------------------------------------------------------------------

    def add(self, session: Session) -> None:
        self.sessions.add(session)

    def remove(self, session: Session) -> None:
        self.sessions.discard(session)
        self.exposure_watchers.discard(session)
        self.slip_watchers.discard(session)
        if session.user is not None:
            watchers = self.order_watchers.get(session.user)
            if watchers is not None:
                watchers.discard(session)
                if not watchers:
                    del self.order_watchers[session.user]
        for market in session.subs:
            self._unwatch(session, market)

    def watch_orders(self, session: Session) -> None:
        session.watching_orders = True
        self.order_watchers.setdefault(session.user, set()).add(session)

    def watch_market(self, session: Session, market: str, depth: int, state: dict) -> int:
        """Subscribe (or re-subscribe) and return the image's seq."""
        sub = session.subs.get(market)
        if sub is None:
            sub = session.subs[market] = Subscription(depth, state)
            self.market_watchers.setdefault(market, set()).add(session)
        sub.depth, sub.state, sub.stale = depth, state, False
        sub.seq += 1
        return sub.seq

    def unwatch_market(self, session: Session, market: str) -> None:
        if session.subs.pop(market, None) is not None:
            self._unwatch(session, market)

    def _unwatch(self, session: Session, market: str) -> None:
        watchers = self.market_watchers.get(market)
        if watchers is not None:
            watchers.discard(session)
            if not watchers:
                del self.market_watchers[market]
        self._stale.pop((session, market), None)

    # -- the journaled-batch listener ---------------------------------------------------------

    def on_batch(self, records):
        """Sequencer renderer: runs right after the batch is applied (the engine holds exactly
        its state), renders every owner push now, and returns what sends them, which the
        sequencer runs once the batch is journaled."""
        engine = self.exchange.sequencer.engine
        watched = self.order_watchers
        user_orders = self.user_orders
        out: list[tuple[str, str, bytes]] = []  # (owner, op, the encoded push)
        changed_orders: dict[str, str] = {}  # order id -> owner, pushed once per batch
        wallets: dict[tuple[str, str], None] = {}
        dirty: dict[str, None] = {}
        forgotten: list[str] = []
        for _, _, events in records:
            for ev in events:
                kind = type(ev)
                if kind is e.BetMatched:
                    dirty[ev.market] = None
                    for oid, user in ((ev.taker_order, ev.taker_user),
                                      (ev.maker_order, ev.maker_user)):
                        if user in watched:
                            changed_orders[oid] = user
                            out.append((user, "fill", orjson.dumps(
                                {"op": "fill", "order": oid, "price": format_odds(ev.price),
                                 "size": format_money(ev.size_minor), "seq": ev.seq})))
                elif kind is e.OrderPlaced:
                    orders = user_orders.get(ev.user)
                    if orders is None:  # not setdefault: that makes a dict for every order
                        orders = user_orders[ev.user] = {}
                    orders[ev.order] = ev.market
                    dirty[ev.market] = None
                    if ev.user in watched:
                        changed_orders[ev.order] = ev.user
                elif kind in _ORDER_EVENTS:
                    market = user_orders.get(ev.user, {}).get(ev.order)
                    if market is not None:
                        dirty[market] = None
                    if ev.user in watched:
                        changed_orders[ev.order] = ev.user
                elif kind is e.WalletChanged:
                    if ev.user in watched:
                        wallets[(ev.user, ev.currency)] = None
                elif kind is e.BetRepriced:  # a non-runner: both orders' average price moved
                    for oid, user in ((ev.taker_order, ev.taker_user),
                                      (ev.maker_order, ev.maker_user)):
                        if user in watched:
                            changed_orders[oid] = user
                elif kind in (e.MarketStatusChanged, e.MarketCreated, e.PricesSet,
                              e.SelectionRemoved):
                    dirty[ev.market] = None
                elif kind in (e.MarketSettled, e.MarketVoided):
                    dirty[ev.market] = None
                    forgotten.append(ev.market)
        for oid, user in changed_orders.items():
            if oid in engine.orders:
                out.append((user, "ord", b'{"op":"ord","order":%b}' % order_json(engine, oid)))
        for user, currency in wallets:
            out.append((user, "wallet",
                        orjson.dumps({"op": "wallet", **wallet_view(engine, user, currency)})))

        def release() -> None:
            for user, op, frame in out:
                self._to_owner(user, op, frame)
            self._dirty.update(dirty)
            if dirty:
                self._exposure_dirty = True
            for market in forgotten:
                self._forget_market(market)

        return release

    def _to_owner(self, user: str, op: str, frame: bytes) -> None:
        """A push encoded once, to each of the user's connections watching their orders."""
        for session in self.order_watchers.get(user, ()):
            session.push_frame(frame, op)

    def _forget_market(self, market: str) -> None:
        for orders in self.user_orders.values():
            for oid in [oid for oid, m in orders.items() if m == market]:
                del orders[oid]

    # -- conflated market data ----------------------------------------------------------------

    async def _flush_loop(self) -> None:
        interval_s = self.settings.conflation_ms / 1000
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            # Flushes start one interval apart (not one interval after the last one ended):
            # a flush to 1,000 subscribers takes some 10-20 ms, and sleeping a full interval
            # after it would stretch every match's wait for the next delta by that much.
            started = max(started + interval_s, loop.time())
            await asyncio.sleep(started - loop.time())
            try:
                await self.flush()
            except Exception:
                log.exception("market-data flush failed")

    async def flush(self) -> None:
        markets = list(self._dirty)
        self._dirty.clear()
        if markets:
            states = await self.exchange.read(
                lambda engine: {m: market_state(engine, m) for m in markets})
            for market, state in states.items():
                if state is not None:
                    self.published[market] = state
                    self._send_deltas(market, state)
            self._update_slips(set(markets))
        self._resend_stale()

    def _send_deltas(self, market: str, state: dict) -> None:
        """One delta per subscriber that sees a change, with its own seq. Subscribers at the
        same (from-state, depth, seq) get the very same frame: computed, encoded and framed
        once (`text_frame`) and handed as bytes to each of them, so what is left per subscriber
        is a lookup and an append to its connection's write of this loop turn."""
        watchers = self.market_watchers.get(market)
        if not watchers:
            return
        # (id(from-state), depth) -> delta, and (id(from-state), depth, seq) -> frames; the
        # from-states stay referenced by `keep` so that no id is reused while these live
        changes: dict[tuple[int, int], dict | None] = {}
        frames: dict[tuple[int, int, int], tuple[bytes, bytes] | None] = {}
        keep = []
        stale = self._stale
        drops = 0
        for session in watchers:
            sub = session.subs[market]
            if sub.stale:
                continue  # gets a fresh image from _resend_stale instead
            was = sub.state
            seq = sub.seq + 1
            key = (id(was), sub.depth, seq)
            frame = frames.get(key, False)
            if frame is False:
                change_key = key[:2]
                if change_key in changes:
                    change = changes[change_key]
                else:
                    keep.append(was)
                    change = changes[change_key] = delta(market, was, state, sub.depth)
                if change is None:
                    frame = None
                else:
                    change["seq"] = seq
                    payload = orjson.dumps(change)
                    frame = (text_frame(payload), payload)
                frames[key] = frame
            if frame is None:
                continue
            if session.push_market(*frame):
                sub.seq = seq
                sub.state = state
            else:
                sub.stale = True
                stale[(session, market)] = None
                drops += 1
        if drops:
            self.metrics.drops.inc(drops)
        # every subscriber now refers to `state` (or is stale), so old states can be freed

    def _resend_stale(self) -> None:
        for session, market in list(self._stale):
            if session.closed or market not in session.subs:
                del self._stale[(session, market)]
                continue
            if not session.has_room():
                continue
            state = self.published.get(market)
            if state is None:
                continue
            sub = session.subs[market]
            sub.seq += 1
            if session.push(image(market, state, sub.depth, sub.seq), droppable=True):
                sub.state, sub.stale = state, False
                del self._stale[(session, market)]
            else:
                sub.seq -= 1

    def _update_slips(self, markets: set[str]) -> None:
        for session in list(self.slip_watchers):
            slip = session.slip
            if slip is None or not (slip.markets() & markets):
                continue
            legs = slip_pricing.reprice(slip, self.published)
            if legs is not None:
                session.push({"op": "slip", "legs": legs})

    # -- operator exposure channel -------------------------------------------------------------

    async def _exposure_loop(self) -> None:
        from .exposure import exposure_view

        interval_s = self.settings.exposure_push_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            if not self._exposure_dirty or not self.exposure_watchers:
                continue
            self._exposure_dirty = False
            try:
                view = await self.exchange.read(exposure_view)
            except Exception:
                log.exception("exposure view failed")
                continue
            for session in list(self.exposure_watchers):
                session.push({"op": "exposure", **view}, droppable=True)

    # -- heartbeats ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        every_s = self.settings.heartbeat_s
        while True:
            await asyncio.sleep(min(1.0, every_s / 2))
            now = time.monotonic()
            for session in list(self.sessions):
                if now - session.sent_at >= every_s:
                    session.push({"op": "hb", "ts": time.time_ns() // 1_000_000},
                                 droppable=True)
                    session.sent_at = now

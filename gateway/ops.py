"""Every WebSocket op of PROTOCOL.md: request model -> engine command or read -> reply.

Each handler submits (or queries) before its first await, so requests pipelined on one
connection reach the sequencer in the order they were sent. Replies are rendered by a `view`
right after their command is applied and sent once it is journaled, so they show exactly
journaled state. Frame order: a handler that submits or reads hands its `Reply` to the
sequencer as `deliver`, which sends it the moment the outcome is final, before any push about
a later state of the same orders or wallet (docs/protocol.md "Frame order").
"""

import logging
from time import perf_counter

import orjson

from engine import commands as c
from engine import events as e
from engine.money import format_money, format_odds
from engine.positions import pnl as position_pnl
from engine.rejections import Code, Rejected

from . import cashout as cashouts
from . import catalogue
from . import protocol as p
from . import selflimits
from .pnl import PnlFeed, selections_view
from . import slips
from . import statements
from persistence.sequencer import SequencerStopped

from .exchange import Unavailable
from .order_json import order_json
from .session import Session
from .views import (image, market_state, market_view, order_view, order_views, shown_wallet,
                    user_limits_view, wallet_view)

log = logging.getLogger(__name__)


class OpError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rejected(events: list) -> e.CommandRejected | None:
    for ev in events:
        if isinstance(ev, e.CommandRejected):
            return ev
    return None


def _raise_if_rejected(events: list) -> None:
    r = rejected(events)
    if r is not None:
        raise OpError(r.code, r.reason)


class Reply:
    """A request's one answer, sent at most once: by the sequencer (as `deliver`) the moment the
    outcome is final, or by Ops.handle for ops that answer without the engine."""

    __slots__ = ("session", "request_id", "metrics", "sent")

    def __init__(self, session: Session, request_id, metrics) -> None:
        self.session = session
        self.request_id = request_id
        self.metrics = metrics
        self.sent = False

    def __call__(self, ok: bool, value) -> None:
        if ok:
            self.send(value)
        else:
            self.fail(value)

    def send(self, reply: dict | None) -> None:
        if self.sent:
            return
        self.sent = True
        session = self.session
        if reply is not None:
            session.push({"id": self.request_id, **reply})
        session.answered()

    def fail(self, exc: BaseException) -> None:
        if self.sent:
            return
        self.sent = True
        if isinstance(exc, OpError):
            self.metrics.rejections.labels(exc.code).inc()
            code, message = str(exc.code), exc.message
        elif isinstance(exc, Unavailable):
            code, message = str(exc.code), exc.message
        elif isinstance(exc, SequencerStopped):  # fail-stopped before this was journaled
            code, message = str(Code.INTERNAL), f"exchange unavailable: {exc}"
        else:  # a bug in a view: the client still gets an answer, the log gets the trace
            log.error("request %r failed", self.request_id, exc_info=exc)
            code, message = str(Code.INTERNAL), "internal error"
        self.session.push({"op": "error", "id": self.request_id, "code": code,
                           "message": message})
        self.session.answered()

    def deliver_with(self, render):
        """A deliver callback that renders a successful outcome with `render` first."""
        def deliver(ok: bool, value) -> None:
            if ok:
                try:
                    value = render(value)
                except Exception as exc:
                    self.fail(exc)
                    return
            self(ok, value)
        return deliver


def _json_id(request_id) -> bytes:
    """A request id (str, int or null) as JSON."""
    return b"%d" % request_id if type(request_id) is int else orjson.dumps(request_id)


class OrderReply(Reply):
    """The answer to a place, cancel or replace: rendered and encoded by the sequencer right
    after the command is applied (`view`), sent the moment it is journaled (`__call__`), with
    the submit-to-ack latency observed on the way out."""

    __slots__ = ("render", "cmd", "op", "started")

    def __init__(self, session: Session, request_id, metrics, render, cmd: c.Command,
                 op: str) -> None:
        self.session = session
        self.request_id = request_id
        self.metrics = metrics
        self.sent = False
        self.render = render
        self.cmd = cmd
        self.op = op
        self.started = perf_counter()

    def view(self, engine, events: list) -> bytes:
        return self.render(self.session, self.cmd, engine, events, self.request_id)

    def __call__(self, ok: bool, value) -> None:
        self.metrics.ack_latency.observe(perf_counter() - self.started)
        if not ok:
            self.fail(value)
        elif not self.sent:
            self.sent = True
            session = self.session
            session.push_frame(value, self.op)
            session.answered()


class _Skipped(Exception):
    """A step of a group with nothing to do: it is skipped, never journaled."""


def _selection_ids(engine, market: str) -> list[str]:
    m = engine.markets.get(market)
    if m is None:
        raise OpError(Code.UNKNOWN_MARKET, f"no market {market!r}")
    return list(m.selection_ids)


def _slip_placed(outcomes: list) -> dict:
    results = []
    for i, (ok, value) in enumerate(outcomes):
        if ok:
            results.append({"leg": i, "order": value["order"]})
        elif isinstance(value, OpError):
            results.append({"leg": i, "error": {"code": value.code, "message": value.message}})
        else:
            raise value
    return {"op": "slip.placed", "results": results}


def subscription_markets(session: Session, req: p.Subscribe, subscriptions_max: int) -> list[str]:
    """The markets a `subscribe` asks for, once checked."""
    markets = list(dict.fromkeys(req.markets or []))
    if not markets:
        raise OpError(Code.BAD_REQUEST, "subscribe needs markets or a channel")
    if len(set(session.subs) | set(markets)) > subscriptions_max:
        raise OpError(Code.LIMIT_EXCEEDED, f"at most {subscriptions_max} market subscriptions")
    return markets


def start_watching(session: Session, hub, req: p.Subscribe, states: dict) -> None:
    """`subscribed`, then each market's image: the subscriptions start from `states` (each
    market's state as read for this request; None for a market there is not)."""
    unknown = [m for m, state in states.items() if state is None]
    if unknown:
        raise OpError(Code.UNKNOWN_MARKET, f"no market {unknown[0]!r}")
    session.push({"op": "subscribed", "id": req.id, "markets": list(states)})
    for market, state in states.items():
        seq = hub.watch_market(session, market, req.depth, state)
        session.push(image(market, state, req.depth, seq))


def stop_watching(session: Session, hub, req: p.Unsubscribe) -> dict:
    markets = req.markets if req.markets is not None else list(session.subs)
    for market in markets:
        hub.unwatch_market(session, market)
    return {"op": "unsubscribed", "markets": markets}


def place_command(user: str, req: p.Place) -> c.PlaceOrder:
    return c.PlaceOrder(user=user, market=req.market, selection=req.selection, side=req.side,
                        price=req.price, size_minor=req.size, persistence=req.persistence,
                        tif=req.tif, min_fill_minor=req.min_fill or 0, ref=req.ref or "")


def cancel_command(user: str, req: p.Cancel) -> c.CancelOrder:
    if req.size_reduction == 0:
        raise OpError(Code.INVALID_SIZE,
                      "size_reduction must be positive; leave it out to cancel everything")
    return c.CancelOrder(user=user, order=req.order, size_reduction_minor=req.size_reduction or 0)


def replace_command(user: str, req: p.Replace) -> c.ReplaceOrder:
    return c.ReplaceOrder(user=user, order=req.order, price=req.price)


# The order ops' models -> their command. gateway/fast_requests.py builds the very same commands
# straight from a frame (tests/test_fast_requests.py).
ORDER_COMMANDS = {p.Place: place_command, p.Cancel: cancel_command, p.Replace: replace_command}


class Ops:
    def __init__(self, exchange, hub) -> None:
        self.exchange = exchange
        self.hub = hub
        self.settings = exchange.settings
        self._handlers = {
            p.Subscribe: self.subscribe, p.Unsubscribe: self.unsubscribe,
            p.Catalogue: self.catalogue, p.Preview: self.preview,
            p.CancelAll: self.cancel_all, p.Orders: self.orders, p.Wallet: self.wallet,
            p.Statement: self.history, p.Cleared: self.history,
            p.Pnl: self.pnl, p.CashoutQuote: self.cashout_quote, p.Cashout: self.cashout,
            p.SlipSet: self.slip_set, p.SlipPlace: self.slip_place,
            p.MarketCreate: self.market_create, p.MarketStatus: self.market_status,
            p.PricesSet: self.prices_set, p.LimitsSet: self.limits_set,
            p.MarketSettle: self.market_settle, p.MarketVoid: self.market_void,
            p.SelectionRemove: self.selection_remove,
            p.SelfLimits: self.selflimits, p.SelfLimitsSet: self.selflimits_set,
            p.SelfExclude: self.selfexclude,
        }
        self.catalogue_feed = catalogue.CatalogueFeed(exchange)
        exchange.sequencer.add_renderer(self.catalogue_feed.on_batch)
        self.pnl_feed = PnlFeed(exchange)
        exchange.sequencer.add_renderer(self.pnl_feed.on_batch)
        self._order_commands = ORDER_COMMANDS
        # each order command's reply: how it is rendered (to bytes), and its op
        self._order_replies = {c.PlaceOrder: (self._placed_frame, "placed"),
                               c.CancelOrder: (self._cancelled_frame, "cancelled"),
                               c.ReplaceOrder: (self._replaced_frame, "replaced")}

    # a request frame (a JSON object) -> what submit_now and handle take: its model here
    parse = staticmethod(p.parse_object)

    def submit_now(self, session: Session, req: p.Request) -> bool:
        """The order path for a request model: see `submit_order`. False for every op but
        place, cancel and replace (run `handle` in a task for those)."""
        build = self._order_commands.get(type(req))
        if build is None:
            return False
        try:
            cmd = build(session.user, req)
        except OpError as err:
            Reply(session, req.id, self.exchange.metrics).fail(err)
            return True
        self.submit_order(session, req.id, cmd)
        return True

    def submit_order(self, session: Session, request_id, cmd: c.Command) -> None:
        """Place, cancel and replace are submitted right here, on the reader's turn, with no
        task and no await; the sequencer delivers the reply."""
        render, op = self._order_replies[type(cmd)]
        reply = OrderReply(session, request_id, self.exchange.metrics, render, cmd, op)
        try:
            self.exchange.submit_now(cmd, reply.view, reply)
        except Exception as err:  # Unavailable, or a bug (answered INTERNAL, logged)
            reply.fail(err)

    async def handle(self, session: Session, req: p.Request) -> None:
        """Run one request and send its reply or error; never raises for a client's mistake."""
        if self.submit_now(session, req):
            return
        reply = Reply(session, req.id, self.exchange.metrics)
        try:
            if req.op in p.TRADER_OPS and not session.can("trader"):
                raise OpError(Code.FORBIDDEN, f"{req.op} needs the trader role")
            if isinstance(req, p.Auth):
                raise OpError(Code.BAD_REQUEST, "already authenticated")
            result = await self._handlers[type(req)](session, req, reply)
        except Exception as err:  # OpError, Unavailable, or a bug (answered INTERNAL, logged)
            reply.fail(err)  # a no-op if the sequencer already delivered it
            return
        reply.send(result)

    # -- market data --------------------------------------------------------------------------

    async def subscribe(self, session: Session, req: p.Subscribe, reply: Reply):
        if req.channel == "exposure":
            if not session.can("operator"):
                raise OpError(Code.FORBIDDEN, "the exposure channel needs the operator role")
            from .exposure import exposure_view

            view = await self.exchange.read(exposure_view)
            self.hub.exposure_watchers.add(session)
            session.push({"op": "subscribed", "id": req.id, "channel": "exposure"})
            return {"op": "exposure", **view}
        if req.channel == "catalogue":
            def watched(engine) -> dict:
                # watched between batches: every later creation or status change is pushed
                self.catalogue_feed.watchers.add(session)
                return {"op": "subscribed", "channel": "catalogue"}

            return await self.exchange.read(watched, deliver=reply)
        markets = subscription_markets(session, req, self.settings.subscriptions_max)
        states = await self.exchange.read(
            lambda engine: {m: market_state(engine, m) for m in markets})
        start_watching(session, self.hub, req, states)
        return None

    async def unsubscribe(self, session: Session, req: p.Unsubscribe, reply: Reply):
        if req.channel == "exposure":
            self.hub.exposure_watchers.discard(session)
            return {"op": "unsubscribed", "channel": "exposure"}
        if req.channel == "catalogue":
            self.catalogue_feed.watchers.discard(session)
            return {"op": "unsubscribed", "channel": "catalogue"}
        return stop_watching(session, self.hub, req)

    async def catalogue(self, session: Session, req: p.Catalogue, reply: Reply):
        statuses = {s.upper() for s in req.status} if req.status is not None else None
        limit = min(req.limit, catalogue.PAGE_MAX)

        def listed(engine) -> dict:
            try:
                return catalogue.page(engine, req.event, statuses, req.in_play, req.after, limit,
                                      req.start_from, req.start_to, req.sort)
            except KeyError:
                raise OpError(Code.UNKNOWN_MARKET, f"after: no market {req.after!r}") from None

        return await self.exchange.read(listed, deliver=reply)

    # -- orders -------------------------------------------------------------------------------

    @staticmethod
    def _placed_frame(session: Session, cmd, engine, events: list, request_id) -> bytes:
        first = events[0]
        # the common case: the order's own event comes first (delayed orders released before
        # it never yield an OrderPlaced, and a refused place yields none at all)
        if type(first) is e.OrderPlaced:
            if session.cancel_on_disconnect:  # only a dead-man switch needs to know
                session.placed[first.order] = None
            # joined, not %-formatted: half the cost, on every order
            return b"".join((b'{"op":"placed","id":', _json_id(request_id), b',"order":',
                             order_json(engine, first.order), b"}"))
        return orjson.dumps(Ops._placed(session, cmd, engine, events, request_id))

    @staticmethod
    def _placed(session: Session, cmd, engine, events: list, request_id=None) -> dict:
        _raise_if_rejected(events)
        for ev in events:
            if isinstance(ev, (e.OrderPlaced, e.PlaceRepeated)):
                if isinstance(ev, e.OrderPlaced) and session.cancel_on_disconnect:
                    session.placed[ev.order] = None
                return {"op": "placed", "id": request_id, "order": order_view(engine, ev.order)}
        raise OpError(Code.INTERNAL, "place produced no order")

    async def preview(self, session: Session, req: p.Preview, reply: Reply):
        cmd = place_command(session.user, req)
        return await self.exchange.read(lambda engine: self._preview(engine, cmd),
                                        deliver=reply)

    @staticmethod
    def _preview(engine, cmd: c.PlaceOrder) -> dict:
        result = engine.preview(cmd)
        if result.code is not None:
            raise OpError(result.code, result.reason)
        # the market's own currency: its holds come from that wallet
        currency = engine.markets[cmd.market].currency
        return {"op": "preview",
                "fills": [[format_odds(price), format_money(size)] for price, size in result.fills],
                "rest": format_money(result.rest_minor), "bet_delay_ms": result.bet_delay_ms,
                "wallet_after": shown_wallet(engine, cmd.user, currency, result.balance_minor,
                                             result.held_after_minor),
                "exposure_after": format_money(result.exposure_after_minor)}

    @staticmethod
    def _cancelled_frame(session: Session, cmd: c.CancelOrder, engine, events: list,
                         request_id) -> bytes:
        _raise_if_rejected(events)
        return b"".join((b'{"op":"cancelled","id":', _json_id(request_id), b',"order":',
                         order_json(engine, cmd.order), b"}"))

    @staticmethod
    def _replaced_frame(session: Session, cmd: c.ReplaceOrder, engine, events: list,
                        request_id) -> bytes:
        _raise_if_rejected(events)
        replaced = next(ev for ev in events if isinstance(ev, e.OrderReplaced))
        if session.cancel_on_disconnect:
            session.placed[replaced.new_order] = None
        return b'{"op":"replaced","id":%b,"cancelled":%b,"order":%b}' % (
            _json_id(request_id), order_json(engine, replaced.order),
            order_json(engine, replaced.new_order))

    async def cancel_all(self, session: Session, req: p.CancelAll, reply: Reply):
        cmd = c.CancelAll(user=session.user, market=req.market or "")

        def view(engine, events):
            _raise_if_rejected(events)
            ids = dict.fromkeys(ev.order for ev in events if isinstance(ev, e.OrderCancelled))
            return {"op": "cancelled_all", "orders": [order_view(engine, oid) for oid in ids]}

        return await self.exchange.submit(cmd, view=view, deliver=reply)

    async def orders(self, session: Session, req: p.Orders, reply: Reply):
        def listed(engine) -> dict:
            # the listing and the start of the pushes are one step between batches: every
            # later change of these orders is pushed after this reply, none is missed
            ids = self.hub.user_orders.get(session.user, {})
            views = order_views(engine, [oid for oid in ids if oid in engine.orders])
            self.hub.watch_orders(session)
            return {"op": "orders", "orders": views}

        return await self.exchange.read(listed, deliver=reply)

    async def wallet(self, session: Session, req: p.Wallet, reply: Reply):
        """The wallet of the asked currency (else the default one) in the v1 fields, and in
        `wallets` that one, or one per configured currency, default first."""
        user, currencies = session.user, self.settings.currencies
        if req.currency is not None:
            self._configured(req.currency)
            currencies = [req.currency]

        def read(engine) -> dict:
            wallets = [wallet_view(engine, user, currency) for currency in currencies]
            return {"op": "wallet", **wallets[0], "wallets": wallets}

        return await self.exchange.read(read, deliver=reply)

    def _configured(self, currency: str) -> None:
        why = self.settings.unsupported(currency)
        if why is not None:
            raise OpError(Code.BAD_REQUEST, why)

    async def history(self, session: Session, req: p.Statement | p.Cleared, reply: Reply):
        """statement and cleared: the caller's own history, from Postgres
        (gateway/statements.py)."""
        try:
            body = await statements.history(self.exchange, session.user, req)
        except statements.HistoryError as err:
            raise OpError(err.code, err.message) from None
        return {"op": req.op, **body}

    async def pnl(self, session: Session, req: p.Pnl, reply: Reply):
        user, market, feed = session.user, req.market, self.pnl_feed

        def read(engine) -> dict:
            # read and watched in one step between batches: every later change is pushed
            try:
                view = selections_view(engine, market, user)
            except Rejected as r:
                raise OpError(r.code, r.reason) from None
            if not req.watch:
                feed.unwatch(session, market)
            elif session not in feed.watchers.get((user, market), ()):
                if feed.watching(session) >= self.settings.subscriptions_max:
                    raise OpError(Code.LIMIT_EXCEEDED, f"at most "
                                  f"{self.settings.subscriptions_max} P&L watches")
                feed.watch(session, market, view)
            else:
                feed.sent[(user, market)] = view
            return {"op": "pnl", "market": market, "selections": view}

        return await self.exchange.read(read, deliver=reply)

    # -- cash out -----------------------------------------------------------------------------

    async def cashout_quote(self, session: Session, req: p.CashoutQuote, reply: Reply):
        user, market, fraction = session.user, req.market, req.fraction or (1, 1)

        def read(engine) -> dict:
            try:
                q = cashouts.quote(engine, user, market, fraction)
            except cashouts.CashoutError as err:
                raise OpError(err.code, err.message) from None
            return cashouts.quote_view(engine, market, fraction, q)

        return await self.exchange.read(read, deliver=reply)

    async def cashout(self, session: Session, req: p.Cashout, reply: Reply):
        """Cancel the user's unmatched orders on the market, then one FOK order per selection,
        in one sequencer group; see gateway/cashout.py."""
        user, market, fraction = session.user, req.market, req.fraction or (1, 1)
        prices, tolerance = req.prices, req.tolerance
        bad = cashouts.off_ladder(prices)
        if bad is not None:
            raise OpError(Code.INVALID_ODDS, bad)
        done: dict = {}  # what the steps found, in order; "pnl" last written after the last

        def note_pnl(engine) -> None:
            done["pnl"] = selections_view(engine, market, user)
            done["locked"] = min(position_pnl(engine, market, user)[0])

        def first(engine):
            # every leg checked against the state the group starts from: a cash out the book
            # (or the market, or the bettor's funds) no longer allows changes nothing
            try:
                q = cashouts.quote(engine, user, market, fraction)
            except cashouts.CashoutError as err:
                done["refused"] = OpError(err.code, err.message)
                return done["refused"]
            why = next((w for w in (cashouts.moved(leg, prices, tolerance) for leg in q.legs)
                        if w), None)
            if why is None and not q.legs:
                why = "nothing to cash out: the position is level or nothing is on offer"
                done["refused"] = OpError(Code.BAD_REQUEST, why)
                return done["refused"]
            if why is not None:
                done["refused"] = OpError(Code.CASHOUT_MOVED, why)
                return done["refused"]
            note_pnl(engine)
            if not q.cancels:
                return _Skipped()
            return c.CancelAll(user=user, market=market)

        def cancelled(engine, events):
            _raise_if_rejected(events)
            note_pnl(engine)
            ids = dict.fromkeys(ev.order for ev in events if isinstance(ev, e.OrderCancelled))
            return [order_view(engine, oid) for oid in ids]

        def leg_step(sel: int):
            def prepare(engine):
                if "refused" in done:
                    return _Skipped()
                note_pnl(engine)
                leg = cashouts.leg_now(engine, user, market, sel, fraction)
                if leg is None:
                    return _Skipped()
                why = cashouts.moved(leg, prices, tolerance)
                if why is not None:
                    return OpError(Code.CASHOUT_MOVED, why)
                return cashouts.leg_command(user, market, leg)

            def placed(engine, events):
                _raise_if_rejected(events)
                note_pnl(engine)
                oid = next(ev.order for ev in events if isinstance(ev, e.OrderPlaced))
                return order_view(engine, oid)

            return prepare, placed

        def render(outcomes: list) -> dict:
            if "refused" in done:
                raise done["refused"]
            (ok, value), legs = outcomes[0], outcomes[1:]
            if not ok and not isinstance(value, _Skipped):
                raise value
            cancelled_orders = value if ok else []
            orders, refused = [], []
            for sid, (ok, value) in zip(selection_ids, legs):
                if ok:
                    orders.append(value)
                elif isinstance(value, OpError):
                    refused.append({"selection": sid, "code": value.code,
                                    "message": value.message})
                elif not isinstance(value, _Skipped):
                    raise value
            return {"op": "cashed_out", "market": market, "cancelled": cancelled_orders,
                    "orders": orders, "refused": refused, "selections": done["pnl"],
                    "locked": format_money(done["locked"])}

        selection_ids = await self.exchange.read(lambda engine: _selection_ids(engine, market))
        steps = [(first, cancelled)] + [leg_step(sel) for sel in range(len(selection_ids))]
        return await self.exchange.submit_group(steps, deliver=reply.deliver_with(render))

    # -- the bettor's own limits --------------------------------------------------------------

    def _own_currency(self, currency: str | None) -> str:
        """Limits are per currency: the one asked for, configured, or the default."""
        if currency is None:
            return self.settings.currency
        self._configured(currency)
        return currency

    async def selflimits(self, session: Session, req: p.SelfLimits, reply: Reply):
        user, currency, exchange = session.user, self._own_currency(req.currency), self.exchange
        return await exchange.read(
            lambda engine: {"op": "selflimits", **selflimits.view(
                engine, user, currency, selflimits.now_ms(exchange))}, deliver=reply)

    async def selflimits_set(self, session: Session, req: p.SelfLimitsSet, reply: Reply):
        user, currency = session.user, self._own_currency(req.currency)

        def view(engine, events):
            _raise_if_rejected(events)
            return {"op": "selflimits",
                    **selflimits.view(engine, user, currency, engine.last_ts)}

        return await self.exchange.submit(selflimits.set_command(user, currency, req),
                                          view=view, deliver=reply)

    async def selfexclude(self, session: Session, req: p.SelfExclude, reply: Reply):
        def view(engine, events):
            _raise_if_rejected(events)
            return {"op": "selfexcluded", **selflimits.excluded_view(engine, events)}

        return await self.exchange.submit(selflimits.exclude_command(session.user, req),
                                          view=view, deliver=reply)

    # -- bet slips ----------------------------------------------------------------------------

    async def slip_set(self, session: Session, req: p.SlipSet, reply: Reply):
        if len(req.legs) > self.settings.slip_legs_max:
            raise OpError(Code.LIMIT_EXCEEDED, f"at most {self.settings.slip_legs_max} legs")
        slip = slips.Slip([slips.Leg(leg.market, leg.selection, leg.side, leg.stake)
                           for leg in req.legs])
        markets = list(slip.markets())

        def priced(engine) -> dict:
            # priced and watched in one step: the next slip push starts from these prices
            states = {m: market_state(engine, m) for m in markets}
            session.slip = slip
            self.hub.slip_watchers.add(session)
            return {"op": "slip", "legs": slips.reprice(slip, states)
                    or [leg.view for leg in slip.legs]}

        return await self.exchange.read(priced, deliver=reply)

    async def slip_place(self, session: Session, req: p.SlipPlace, reply: Reply):
        slip = session.slip
        if slip is None or not slip.legs:
            raise OpError(Code.BAD_REQUEST, "no bet slip: send slip.set first")
        # every leg is priced and placed in one step of the sequencer, against the book it
        # meets: no other command can move a price between the check and the order
        steps = [(lambda engine, leg=leg: self._slip_leg(engine, session, leg, req.accept),
                  lambda engine, events: self._placed(session, None, engine, events))
                 for leg in slip.legs]
        return await self.exchange.submit_group(steps,
                                                deliver=reply.deliver_with(_slip_placed))

    @staticmethod
    def _slip_leg(engine, session: Session, leg: slips.Leg, accept: str):
        """The FOK order for one leg at the price its `accept` mode allows, or why none."""
        state = market_state(engine, leg.market)
        current = slips.price_leg(leg, state)[1]
        if accept == "any":
            # whatever the book offers now for the whole stake; not the ladder's far end,
            # which would make a lay hold 999 x its stake while it is checked
            limit = current
            if not limit:
                return OpError(Code.FOK_NOT_FILLED, "not enough offered for the whole stake")
        elif not leg.price:
            return OpError(Code.FOK_NOT_FILLED, "no price was shown")
        elif accept == "exact" and state["status"] == "OPEN" and not slips.fills_exactly(
                leg, state):
            return OpError(Code.PRICE_CHANGED,
                           f"shown {format_odds(leg.price)}, now "
                           f"{format_odds(current) if current else 'none'}")
        else:
            limit = leg.price  # better: the shown price or anything better
        return c.PlaceOrder(user=session.user, market=leg.market, selection=leg.selection,
                            side=leg.side, price=limit, size_minor=leg.stake, tif=c.FOK)

    # -- trader -------------------------------------------------------------------------------

    async def _market_command(self, cmd: c.Command, market: str, reply: Reply):
        def view(engine, events):
            _raise_if_rejected(events)
            return {"op": "market", "market": market_view(engine, market)}

        return await self.exchange.submit(cmd, view=view, deliver=reply)

    async def market_create(self, session: Session, req: p.MarketCreate, reply: Reply):
        currency = self.settings.currency if req.currency is None else req.currency
        self._configured(currency)
        cmd = c.CreateMarket(market=req.market, event=req.event, name=req.name, type=req.type,
                             currency=currency,
                             selections=tuple((s.id, s.name) for s in req.selections),
                             commission_bp=500 if req.commission is None else req.commission,
                             take_bp=1000 if req.take is None else req.take,
                             start_ts=req.start_ts)
        return await self._market_command(cmd, req.market, reply)

    async def market_status(self, session: Session, req: p.MarketStatus, reply: Reply):
        cmd = c.SetMarketStatus(market=req.market, status=req.status, in_play=req.in_play,
                                bet_delay_ms=req.bet_delay_ms)
        return await self._market_command(cmd, req.market, reply)

    async def prices_set(self, session: Session, req: p.PricesSet, reply: Reply):
        cmd = c.SetPrices(market=req.market, prices=tuple(req.prices.items()),
                          margin_bp=req.margin)
        return await self._market_command(cmd, req.market, reply)

    async def limits_set(self, session: Session, req: p.LimitsSet, reply: Reply):
        if (req.market is None) == (req.user is None):
            raise OpError(Code.BAD_REQUEST, "limits.set takes either market or user")
        if req.market is not None:
            if any(v is not None for v in (req.daily_stake, req.weekly_stake, req.stake_factor,
                                           req.max_exposure)):
                raise OpError(Code.BAD_REQUEST, "that limit is per user, not per market")
            cmd = c.SetMarketLimits(market=req.market, max_liability_minor=req.max_liability,
                                    selection_max_liability_minor=req.selection_max_liability,
                                    min_stake_minor=req.min_stake,
                                    max_stake_minor=req.max_stake)
            return await self._market_command(cmd, req.market, reply)
        if any(v is not None for v in (req.max_liability, req.selection_max_liability,
                                       req.min_stake)):
            raise OpError(Code.BAD_REQUEST, "that limit is per market, not per user")
        cmd = c.SetUserLimits(user=req.user, max_stake_minor=req.max_stake,
                              daily_stake_minor=req.daily_stake,
                              weekly_stake_minor=req.weekly_stake,
                              stake_factor=req.stake_factor, max_exposure_minor=req.max_exposure)
        user = req.user

        def view(engine, events):
            _raise_if_rejected(events)
            return {"op": "limits", "user": user, "limits": user_limits_view(engine, user)}

        return await self.exchange.submit(cmd, view=view, deliver=reply)

    async def market_settle(self, session: Session, req: p.MarketSettle, reply: Reply):
        cmd = c.SettleMarket(market=req.market, winners=tuple(req.winners),
                             dead_heat=tuple((sid, num, den) for sid, (num, den)
                                             in (req.dead_heat or {}).items()))
        return await self._market_command(cmd, req.market, reply)

    async def market_void(self, session: Session, req: p.MarketVoid, reply: Reply):
        return await self._market_command(c.VoidMarket(market=req.market), req.market, reply)

    async def selection_remove(self, session: Session, req: p.SelectionRemove, reply: Reply):
        cmd = c.RemoveSelection(market=req.market, selection=req.selection,
                                reduction_bp=req.reduction_factor)
        return await self._market_command(cmd, req.market, reply)

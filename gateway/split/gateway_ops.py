"""Gateway side: every op of docs/protocol.md, answered here or sent to the shard(s) it needs.

Answered here, from what the gateway holds: market subscriptions (the image from the shard's
state read for it, then deltas from the mirror, conflated here), unsubscribing from markets,
and bet slips' pricing (`slip.set`: the slip lives here and is re-priced from the mirror).
Everything else goes to the shard that owns what it touches, as the client sent it (place,
cancel and replace as their engine command), and the shard's engine-side ops answer it exactly
as one process does (gateway/ops.py), so replies, errors and frame order are the same.

With several shards, what spans them (`Sharded`): `orders`, `wallet`, `cancel_all` without a
market, the `exposure` and `catalogue` channels, a user's `limits.set` and a bettor's own limits
(`selflimits`, `selflimits.set`, `selfexclude`) go to every shard and their answers are merged
(scatter.py); `statement` and `cleared` read every shard's read model (history.py); `catalogue`
pages string the shards' pages together (markets by shard, each shard's in creation order; by
start time, the shards' pages merged in that order); a slip's legs are placed per shard, in
one group each; a place refused INSUFFICIENT_FUNDS is funded from the bettor's other shards and
placed again (funding.py); wallet and exposure pushes are summed over the shards.

Requests of one connection leave in the order they arrived, and a shard handles them in that
order; a connection's frames from a shard come back in the order that shard produced them.
"""

import asyncio
import logging

import orjson

from engine.rejections import Code

from .. import catalogue
from .. import protocol as p
from .. import slips
from ..exchange import Unavailable
from ..ops import (ORDER_COMMANDS, OpError, Reply, place_command, start_watching, stop_watching,
                   subscription_markets)
from ..protocol import parse_object
from ..statements import HistoryError
from . import calls, history, scatter, wire
from .client import ShardDown
from .funding import Funder, worst_case_minor

log = logging.getLogger(__name__)


class Forward:
    """A request the gateway parsed: its model, and the JSON object a shard is sent."""

    __slots__ = ("req", "obj")

    def __init__(self, req: p.Request, obj: dict) -> None:
        self.req = req
        self.obj = obj


class GatewayOps:
    def __init__(self, *, client, hub, mirror, exchange, shards) -> None:
        self.client = client
        self.hub = hub
        self.mirror = mirror
        self.exchange = exchange
        self.settings = exchange.settings
        self.metrics = exchange.metrics
        self.shards = shards
        self._local = {p.Subscribe: self.subscribe, p.Unsubscribe: self.unsubscribe,
                       p.SlipSet: self.slip_set, p.SlipPlace: self.slip_place}
        self.sharded = Sharded(self) if shards.count > 1 else None
        client.sharded = self.sharded
        if self.sharded is not None:
            self._local.update({p.Orders: self.sharded.orders, p.Wallet: self.sharded.wallet,
                                p.CancelAll: self.sharded.cancel_all,
                                p.LimitsSet: self.sharded.limits_set,
                                p.Catalogue: self.sharded.catalogue,
                                p.Preview: self.sharded.preview,
                                p.SelfLimits: self.sharded.selflimits,
                                p.SelfLimitsSet: self.sharded.selflimits,
                                p.SelfExclude: self.sharded.selfexclude,
                                p.Statement: self.sharded.history,
                                p.Cleared: self.sharded.history})

    def parse(self, obj: dict) -> Forward:
        return Forward(parse_object(obj), obj)

    # -- the order path -------------------------------------------------------------------------

    def submit_order(self, session, request_id, cmd) -> None:
        shard = calls.command_shard(self.shards, cmd)
        if not self.client.up(shard):
            Reply(session, request_id, self.metrics).fail(self._down(shard))
            return
        self.client.order(session, shard, request_id, cmd)

    def submit_now(self, session, fwd: Forward) -> bool:
        build = ORDER_COMMANDS.get(type(fwd.req))
        if build is None:
            return False
        try:
            cmd = build(session.user, fwd.req)
        except OpError as err:
            Reply(session, fwd.req.id, self.metrics).fail(err)
            return True
        self.submit_order(session, fwd.req.id, cmd)
        return True

    # -- everything else ------------------------------------------------------------------------

    async def handle(self, session, fwd: Forward) -> None:
        if self.submit_now(session, fwd):
            return
        req = fwd.req
        reply = Reply(session, req.id, self.metrics)
        try:
            if req.op in p.TRADER_OPS and not session.can("trader"):
                raise OpError(Code.FORBIDDEN, f"{req.op} needs the trader role")
            if isinstance(req, p.Auth):
                raise OpError(Code.BAD_REQUEST, "already authenticated")
            local = self._local.get(type(req))
            if local is None or not await local(session, fwd, reply):
                self.forward(session, fwd)
        except ShardDown as err:
            reply.fail(Unavailable(Code.INTERNAL, f"exchange unavailable: {err}"))
        except Exception as err:  # OpError, Unavailable, or a bug (answered INTERNAL, logged)
            reply.fail(err)

    def forward(self, session, fwd: Forward) -> None:
        """To the shard that owns what the request touches; it replies."""
        shard = self.route(session, fwd.req)
        if not self.client.up(shard):
            raise self._down(shard)
        self.client.request(session, shard, fwd.obj)

    def route(self, session, req: p.Request) -> int:
        """The market's shard; else the bettor's home shard."""
        market = getattr(req, "market", None)
        if market is not None:
            return self.shards.of_market(market)
        return self.shards.of_user(session.user)

    def _down(self, shard: int) -> Unavailable:
        return Unavailable(Code.INTERNAL, f"exchange unavailable: shard {shard} is not running")

    # -- answered here --------------------------------------------------------------------------
    # Each returns True once it has answered (through `reply`), False to send the request on.

    async def subscribe(self, session, fwd: Forward, reply: Reply) -> bool:
        req = fwd.req
        if req.channel is not None:  # exposure and catalogue: the shards' feeds
            return self.sharded is not None and self.sharded.channel(session, fwd)
        markets = subscription_markets(session, req, self.settings.subscriptions_max)
        start_watching(session, self.hub, req, await self.market_states(markets))
        reply.send(None)
        return True

    async def unsubscribe(self, session, fwd: Forward, reply: Reply) -> bool:
        req = fwd.req
        if req.channel is not None:
            return self.sharded is not None and self.sharded.channel(session, fwd)
        reply.send(stop_watching(session, self.hub, req))
        return True

    async def slip_set(self, session, fwd: Forward, reply: Reply) -> bool:
        req = fwd.req
        if len(req.legs) > self.settings.slip_legs_max:
            raise OpError(Code.LIMIT_EXCEEDED, f"at most {self.settings.slip_legs_max} legs")
        slip = slips.Slip([slips.Leg(leg.market, leg.selection, leg.side, leg.stake)
                           for leg in req.legs])
        states = await self.market_states(list(slip.markets()))
        session.slip = slip
        self.hub.slip_watchers.add(session)
        reply.send({"op": "slip", "legs": slips.reprice(slip, states)
                    or [leg.view for leg in slip.legs]})
        return True

    async def slip_place(self, session, fwd: Forward, reply: Reply) -> bool:
        """The slip is the gateway's: the shard gets its legs, as last priced, with the request."""
        slip = session.slip
        if slip is None or not slip.legs:
            raise OpError(Code.BAD_REQUEST, "no bet slip: send slip.set first")
        groups: dict[int, list[int]] = {}  # shard -> its legs' positions in the slip
        for i, leg in enumerate(slip.legs):
            groups.setdefault(self.shards.of_market(leg.market), []).append(i)
        legs = [[leg.market, leg.selection, leg.side, leg.stake, leg.price] for leg in slip.legs]
        if len(groups) == 1:
            shard = next(iter(groups))
            if not self.client.up(shard):
                raise self._down(shard)
            self.client.request(session, shard, fwd.obj, legs)
            return True
        # legs on several shards: each shard places its own in one group; the results in the
        # slip's order
        positions = list(groups.values())

        def merge(parts: list[dict]) -> dict:
            results = [{**r, "leg": where[r["leg"]]}
                       for where, part in zip(positions, parts) for r in part["results"]]
            return {"op": "slip.placed", "results": sorted(results, key=lambda r: r["leg"])}

        self.scatter(session, fwd.req, [(shard, fwd.obj, [legs[i] for i in where])
                                        for shard, where in groups.items()], merge)
        return True

    def scatter(self, session, req: p.Request, parts: list[tuple[int, dict, list | None]],
                merge, on_done=None, on_part=None) -> list[str]:
        """Send `parts` (shard, request object, slip legs), each under a marker id; their
        answers merged answer `req` (scatter.py). Returns the markers, in order."""
        for shard, _, _ in parts:
            if not self.client.up(shard):
                raise self._down(shard)
        markers = [scatter.new_marker() for _ in parts]
        self.client.gathering(session).scatters.append(scatter.Scatter(
            req.id, [(marker, shard) for marker, (shard, _, _) in zip(markers, parts)],
            merge, on_done, on_part))
        for marker, (shard, obj, legs) in zip(markers, parts):
            self.client.request(session, shard, {**obj, "id": marker}, legs)
        return markers

    async def market_states(self, markets: list[str]) -> dict:
        """Each market's state as its shard holds it now, read between batches (so it shows
        every command already answered), kept in the mirror if newer than what it has."""
        by_shard: dict[int, list[str]] = {}
        for market in markets:
            by_shard.setdefault(self.shards.of_market(market), []).append(market)
        states: dict = {}
        for shard, group in by_shard.items():
            seq, read = calls.decode_outcome(await self.client.call(
                shard, calls.encode_read("market_states", {"markets": group})))
            for market, state in read.items():
                if state is not None:
                    self.mirror.update(market, seq, state)
                    state = self.mirror.state(market)
                states[market] = state
        return {market: states[market] for market in markets}


class Sharded:
    """What spans shards, for GatewayOps with more than one (see the module's docstring)."""

    def __init__(self, ops: GatewayOps) -> None:
        self.ops = ops
        self.client = ops.client
        self.shards = ops.shards
        self.settings = ops.settings
        self.wallets = scatter.WalletBook(ops.shards.count)
        self.exposure = scatter.ExposureBook()
        self.funder = Funder(ops.client, ops.shards)
        self.pushed: dict[int, dict[str, dict]] = {}  # connection -> currency -> last total
        self._tasks: set[asyncio.Task] = set()

    def _everywhere(self, obj: dict) -> list[tuple[int, dict, None]]:
        return [(k, obj, None) for k in self.shards.all]

    # -- requests every shard answers ---------------------------------------------------------

    async def orders(self, session, fwd: Forward, reply: Reply) -> bool:
        """Every shard's orders of the user, and (read in the same step on each shard, so every
        later push starts from it) its wallets: from now on this gateway sums them."""
        user, book = session.user, self.wallets
        if not session.watching_orders:
            session.watching_orders = True
            book.watching(user)
        count = self.shards.count

        def on_part(marker, shard, frame) -> None:
            if frame.get("op") == "wallet":
                for w in frame["wallets"]:
                    book.note(user, shard, w)

        def on_done(parts) -> None:  # where this connection's wallet pushes start from
            last = self.pushed.setdefault(session.conn_id, {})
            for currency in book.views.get(user, {}):
                last[currency] = book.total(user, currency)

        self.ops.scatter(session, fwd.req,
                         self._everywhere(fwd.obj) + self._everywhere({"op": "wallet"}),
                         lambda parts: scatter.merge_orders(parts[:count]), on_done, on_part)
        return True

    async def wallet(self, session, fwd: Forward, reply: Reply) -> bool:
        user, book = session.user, self.wallets

        def on_part(marker, shard, frame) -> None:
            if user in book.watchers and frame.get("op") == "wallet":
                for w in frame["wallets"]:
                    book.note(user, shard, w)

        self.ops.scatter(session, fwd.req, self._everywhere(fwd.obj), scatter.merge_wallet,
                         on_part=on_part)
        return True

    async def cancel_all(self, session, fwd: Forward, reply: Reply) -> bool:
        if fwd.req.market is not None:
            return False
        self.ops.scatter(session, fwd.req, self._everywhere(fwd.obj), scatter.merge_orders)
        return True

    async def limits_set(self, session, fwd: Forward, reply: Reply) -> bool:
        """A user's limits hold on every shard (each enforces them on its own markets)."""
        if fwd.req.user is None:
            return False
        self.ops.scatter(session, fwd.req, self._everywhere(fwd.obj), scatter.first)
        return True

    async def history(self, session, fwd: Forward, reply: Reply) -> bool:
        """`statement` and `cleared`: every shard's read model, merged (history.py)."""
        try:
            body = await history.merged(self.client, self.settings, self.shards, session.user,
                                        fwd.req)
        except HistoryError as err:
            raise OpError(err.code, err.message) from None
        reply.send({"op": fwd.req.op, **body})
        return True

    async def selflimits(self, session, fwd: Forward, reply: Reply) -> bool:
        """`selflimits` and `selflimits.set`: a bettor's own limits are set on every shard, each
        enforcing them on what it holds (deposits, all at home, exactly; stakes and losses on
        its own markets: docs/scale-out.md); the reply shows the home shard's limits and what
        was used on every shard, summed."""
        home = self.shards.of_user(session.user)
        self.ops.scatter(session, fwd.req, self._everywhere(fwd.obj),
                         lambda parts: scatter.merge_selflimits(parts[home], parts))
        return True

    async def selfexclude(self, session, fwd: Forward, reply: Reply) -> bool:
        """On every shard: each blocks orders (and, at home, deposits) and cancels its own."""
        home = self.shards.of_user(session.user)
        self.ops.scatter(session, fwd.req, self._everywhere(fwd.obj),
                         lambda parts: scatter.merge_excluded(parts[home], parts))
        return True

    def channel(self, session, fwd: Forward) -> bool:
        """subscribe / unsubscribe to `exposure` or `catalogue`: every shard's feed."""
        req = fwd.req
        on_done = None
        merge = scatter.first
        if req.op == "subscribe" and req.channel == "exposure":
            merge = scatter.merge_exposure
            conn = session.conn_id

            def on_done(parts) -> None:
                for (marker, shard), frames in parts.items():
                    if not scatter.is_error(frames[-2]):
                        self.exposure.pictures.setdefault(conn, {})[shard] = frames[-2]["markets"]
        elif req.channel == "exposure":
            self.exposure.pictures.pop(session.conn_id, None)
        self.ops.scatter(session, req, self._everywhere(fwd.obj), merge, on_done)
        return True

    async def catalogue(self, session, fwd: Forward, reply: Reply) -> bool:
        """Pages over every shard's markets. In creation order: shard by shard, each in its own
        creation order; the cursor (the last market listed) names the shard to carry on from.
        By start time: every shard's next markets merged in that order (ties by shard, then in
        creation order), so the order is one over the whole exchange."""
        req = fwd.req
        limit = min(req.limit, catalogue.PAGE_MAX)
        if req.sort == "start":
            listed, more = await self._by_start(req, limit)
        else:
            listed, more = await self._by_shard(req, limit)
        reply.send({"op": "catalogue", "markets": listed,
                    "next": listed[-1]["market"] if more else None})
        return True

    async def _by_shard(self, req, limit: int) -> tuple[list[dict], bool]:
        start = self.shards.of_market(req.after) if req.after is not None else 0
        listed: list[dict] = []
        more = False
        for shard in range(start, self.shards.count):
            want = limit - len(listed) if len(listed) < limit else 1  # full: is there more?
            page = await self._page(shard, req, want,
                                    after=req.after if shard == start else None)
            if len(listed) == limit:
                more = bool(page["markets"])
            else:
                listed += page["markets"]
                more = page["next"] is not None
            if more:
                break
        return listed, more

    async def _by_start(self, req, limit: int) -> tuple[list[dict], bool]:
        pages: dict[int, dict] = {}
        others = list(self.shards.all)
        after_start = None
        if req.after is not None:  # where the cursor is in the start order, from its shard
            cursor = self.shards.of_market(req.after)
            pages[cursor] = await self._page(cursor, req, limit, after=req.after)
            others.remove(cursor)
            no_start, start = pages[cursor]["after_start"]
        pages.update(zip(others, await asyncio.gather(*(
            self._page(k, req, limit, after=None, after_start=None if req.after is None
                       else [no_start, start, k < cursor]) for k in others))))

        def place(shard: int, entry: dict) -> tuple:
            return entry["start_ts"] is None, entry["start_ts"] or 0, shard

        merged = sorted(((place(k, m), i, m) for k, page in pages.items()
                         for i, m in enumerate(page["markets"])), key=lambda x: x[:2])
        more = len(merged) > limit or any(page["next"] is not None for page in pages.values())
        return [m for _, _, m in merged[:limit]], more

    async def _page(self, shard: int, req, limit: int, **cursor) -> dict:
        if not self.client.up(shard):
            raise self.ops._down(shard)
        statuses = sorted({s.upper() for s in req.status}) if req.status is not None else None
        return calls.decode_outcome(await self.client.call(shard, calls.encode_read(
            "catalogue_page", {"event": req.event, "statuses": statuses, "in_play": req.in_play,
                               "limit": limit, "start_from": req.start_from,
                               "start_to": req.start_to, "sort": req.sort, **cursor})))

    async def preview(self, session, fwd: Forward, reply: Reply) -> bool:
        """As a place would meet it: funded from the bettor's other shards first (which moves
        money between their own wallets, never changes what they have), and `wallet_after`
        the whole wallet."""
        req = fwd.req
        shard = self.shards.of_market(req.market)
        cmd = place_command(session.user, req)
        try:
            await self.funder.fund(session.user, shard, worst_case_minor(cmd),
                                   market=req.market)
        except ShardDown:
            raise
        except Exception as exc:
            log.warning("funding %s for a preview failed: %r", session.user, exc)
        others = [k for k in self.shards.all if k != shard]

        def merge(parts: list[dict]) -> dict:
            result = parts[0]
            after = result["wallet_after"]
            views = [after] + [w for part in parts[1:] for w in part["wallets"]
                               if w["currency"] == after["currency"]]
            return {**result, "wallet_after": scatter.sum_wallets(views)}

        self.ops.scatter(session, req, [(shard, fwd.obj, None)]
                         + [(k, {"op": "wallet"}, None) for k in others], merge)
        return True

    # -- funding ------------------------------------------------------------------------------

    def funds_needed(self, session, shard: int, payload: bytes) -> None:
        """A shard holds a place (or slip) the bettor's wallet there cannot cover, and the
        connection's later work behind it: bring the money, then send it back funded."""
        header, _, held = payload.partition(b"\n")
        shorts, kind = orjson.loads(header)
        funded = wire.ORDER_FUNDED if kind == wire.ORDER else wire.REQUEST_FUNDED

        async def fund() -> None:
            for currency, amount in shorts:
                try:
                    await self.funder.move(session.user, shard, currency, amount)
                except Exception as exc:  # the engine then refuses it INSUFFICIENT_FUNDS
                    log.warning("funding %s on shard %d failed: %r", session.user, shard, exc)
            if not session.closed:
                self.client.writer.add(self.client.cmd_streams[shard], session.conn_id, funded,
                                       held)

        task = asyncio.get_running_loop().create_task(fund())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pushes summed over the shards --------------------------------------------------------

    def intercepts(self, session, shard: int, kind: int, payload: bytes) -> bool:
        """Whether this frame is summed or held here instead of going out as it is."""
        if kind == wire.FRAME:
            if payload.startswith(b'{"op":"wallet"'):
                return self._wallet_push(session, shard, payload)
        elif kind == wire.DROPPABLE:
            if payload.startswith(b'{"op":"exposure"'):
                session.push(self.exposure.push(session.conn_id, shard, orjson.loads(payload)),
                             droppable=True)
                return True
        return False

    def _wallet_push(self, session, shard: int, payload: bytes) -> bool:
        view = orjson.loads(payload)
        del view["op"]
        self.wallets.note(session.user, shard, view)
        total = self.wallets.total(session.user, view["currency"])
        if total is None:  # not every shard's wallet known: a bug in how watching starts
            log.error("wallet push for %s from shard %d before every shard's wallet was known",
                      session.user, shard)
            return False
        # a transfer between the bettor's shards changes no total: nothing to tell them
        last = self.pushed.setdefault(session.conn_id, {})
        if last.get(total["currency"]) != total:
            last[total["currency"]] = total
            session.push({"op": "wallet", **total})
        return True

    def closed(self, session) -> None:
        self.pushed.pop(session.conn_id, None)
        self.exposure.pictures.pop(session.conn_id, None)
        if session.watching_orders:
            self.wallets.gone(session.user)

"""Gateway side: every op of docs/protocol.md, answered here or sent to the shard(s) it needs.

Answered here, from what the gateway holds: market subscriptions (the image from the shard's
state read for it, then deltas from the mirror, conflated here), unsubscribing from markets,
and bet slips' pricing (`slip.set`: the slip lives here and is re-priced from the mirror).
Everything else goes to the shard that owns what it touches, as the client sent it (place,
cancel and replace as their engine command), and the shard's engine-side ops answer it exactly
as one process does (gateway/ops.py), so replies, errors and frame order are the same.

Requests of one connection leave in the order they arrived, and a shard handles them in that
order; a connection's frames from a shard come back in the order that shard produced them.
"""

from engine.rejections import Code

from .. import protocol as p
from .. import slips
from ..exchange import Unavailable
from ..ops import ORDER_COMMANDS, OpError, Reply
from ..protocol import parse_object
from ..views import image
from . import calls
from .client import ShardDown


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

    def forward(self, session, fwd: Forward, legs: list | None = None) -> None:
        """To the shard that owns what the request touches; it replies."""
        shard = self.route(fwd.req)
        if not self.client.up(shard):
            raise self._down(shard)
        self.client.request(session, shard, fwd.obj, legs)

    def route(self, req: p.Request) -> int:
        market = getattr(req, "market", None)
        if market is not None:
            return self.shards.of_market(market)
        return 0

    def _down(self, shard: int) -> Unavailable:
        return Unavailable(Code.INTERNAL, f"exchange unavailable: shard {shard} is not running")

    # -- answered here --------------------------------------------------------------------------
    # Each returns True once it has answered (through `reply`), False to send the request on.

    async def subscribe(self, session, fwd: Forward, reply: Reply) -> bool:
        req = fwd.req
        if req.channel is not None:
            return False  # exposure and catalogue: the shard's feeds
        markets = list(dict.fromkeys(req.markets or []))
        if not markets:
            raise OpError(Code.BAD_REQUEST, "subscribe needs markets or a channel")
        if len(set(session.subs) | set(markets)) > self.settings.subscriptions_max:
            raise OpError(Code.LIMIT_EXCEEDED,
                          f"at most {self.settings.subscriptions_max} market subscriptions")
        states = await self.market_states(markets)
        unknown = [m for m, state in states.items() if state is None]
        if unknown:
            raise OpError(Code.UNKNOWN_MARKET, f"no market {unknown[0]!r}")
        session.push({"op": "subscribed", "id": req.id, "markets": markets})
        for market, state in states.items():
            seq = self.hub.watch_market(session, market, req.depth, state)
            session.push(image(market, state, req.depth, seq))
        reply.send(None)
        return True

    async def unsubscribe(self, session, fwd: Forward, reply: Reply) -> bool:
        req = fwd.req
        if req.channel is not None:
            return False
        markets = req.markets if req.markets is not None else list(session.subs)
        for market in markets:
            self.hub.unwatch_market(session, market)
        reply.send({"op": "unsubscribed", "markets": markets})
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
        markets = slip.markets()
        shards = {self.shards.of_market(m) for m in markets}
        if len(shards) > 1:
            raise OpError(Code.BAD_REQUEST, "a slip's legs must be on markets of one shard to be "
                          "placed together")
        legs = [[leg.market, leg.selection, leg.side, leg.stake, leg.price] for leg in slip.legs]
        shard = shards.pop()
        if not self.client.up(shard):
            raise self._down(shard)
        self.client.request(session, shard, fwd.obj, legs)
        return True

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

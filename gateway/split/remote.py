"""The Exchange a gateway's HTTP edge talks to: the same `read` / `submit` / `ready` as the
one-process gateway/exchange.py, carried to the shards as named calls (calls.py).

A read goes to the shard its arguments name (a market's) or to every shard, whose answers are
merged; a command to the shard that owns what it touches, or (a bettor's own limits) to every
shard, whose views are merged. The HTTP handlers (gateway/http.py)
run unchanged on top; what they may pass is what calls.py lists. Bettors' histories and the
operator's GGR report come from every shard's read model, merged (history.py, reports.py).
"""

import asyncio

from engine import commands as c
from engine.rejections import Code
from persistence.sequencer import wall_clock_ms

from ..exchange import Unavailable
from ..http import HttpError
from . import calls, history, reports
from .client import ShardDown
from .funding import Funder


class ShardsHealth:
    """What the one-process /metrics reads off its sequencer: here, whether every shard runs."""

    def __init__(self, client) -> None:
        self.client = client

    @property
    def healthy(self) -> bool:
        return all(self.client.up(k) for k in self.client.shards.all)

    # the time a bettor's own limits are shown at (gateway/selflimits.py now_ms): this
    # machine's clock; each shard's view never goes behind its own last command
    clock_ms = staticmethod(wall_clock_ms)
    last_ts = 0


class RemoteExchange:
    def __init__(self, settings, metrics, shards, *, redis, pg_pool) -> None:
        self.settings = settings
        self.metrics = metrics
        self.shards = shards
        self.redis = redis
        self.pg_pool = pg_pool
        self.persister = None  # each shard's persister is its engine's (lag: the shard's /metrics)
        self.replay_finished = True
        self.hub = None
        self.ws_port: int | None = None
        self.client = None  # client.EngineClient, set by the gateway node
        self.sequencer = None  # ShardsHealth
        self.funder = None  # funding.Funder, with several shards

    def attach(self, client) -> None:
        self.client = client
        self.sequencer = ShardsHealth(client)
        self.funder = Funder(client, self.shards) if self.shards.count > 1 else None

    async def read(self, fn, deliver=None):
        name, kwargs = calls.named(fn)
        read = calls.READS[name]
        payload = calls.encode_read(name, kwargs)
        shard = read.route(self.shards, kwargs)
        if shard is not None:
            return await self._call(shard, payload)
        answers = await asyncio.gather(*(self._call(k, payload) for k in self.shards.all))
        return read.merge(answers, kwargs)

    async def submit(self, cmd, view=None, deliver=None):
        payload = calls.encode_submit(cmd, view)
        merge = calls.EVERYWHERE.get(type(cmd))
        if merge is not None:  # every shard or none: refused at once if one is down
            for k in self.shards.all:
                if not self.client.up(k):
                    raise Unavailable(Code.INTERNAL, f"exchange unavailable: shard {k} is not "
                                      "running")
            return merge(await asyncio.gather(*(self._call(k, payload)
                                                for k in self.shards.all)), cmd)
        shard = calls.command_shard(self.shards, cmd)
        try:
            return await self._call(shard, payload)
        except HttpError as err:
            # a withdrawal leaves from the home shard: bring the bettor's money there first
            if (err.code != Code.INSUFFICIENT_FUNDS or self.funder is None
                    or type(cmd) is not c.RequestWithdrawal):
                raise
            if not await self.funder.fund(cmd.user, shard, cmd.amount_minor,
                                          currency=cmd.currency):
                raise
        return await self._call(shard, payload)

    async def history(self, user: str, req) -> dict:
        """From every shard's read model, merged (history.py); with one shard, from its own."""
        if self.shards.count > 1:
            return await history.merged(self.client, self.settings, self.shards, user, req)
        return await self._call(0, calls.encode_history("page", user, req.op, req.model_dump(),
                                                        None, False))

    async def ggr_report(self, day_from, day_to, include_seeded: bool) -> dict:
        """The operator's GGR report over every shard's read model (reports.py)."""
        return await reports.merged(self._call, self.shards, self.pg_pool, day_from, day_to,
                                    include_seeded)

    async def _call(self, shard: int, payload: bytes):
        try:
            return calls.decode_outcome(await self.client.call(shard, payload))
        except ShardDown as exc:
            raise Unavailable(Code.INTERNAL, f"exchange unavailable: {exc}") from None

    async def ready(self) -> tuple[bool, dict]:
        """Every shard running, Redis and Postgres reachable."""
        checks = {f"shard_{k}": self.client.up(k) for k in self.shards.all}
        try:
            checks["redis"] = bool(await self.redis.ping())
        except Exception:
            checks["redis"] = False
        try:
            checks["postgres"] = await self.pg_pool.fetchval("SELECT 1") == 1
        except Exception:
            checks["postgres"] = False
        return all(checks.values()), checks

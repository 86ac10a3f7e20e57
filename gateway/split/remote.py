"""The Exchange a gateway's HTTP edge talks to: the same `read` / `submit` / `ready` as the
one-process gateway/exchange.py, carried to the shards as named calls (calls.py).

A read goes to the shard its arguments name (a market's) or to every shard, whose answers are
merged; a command to the shard that owns what it touches. The HTTP handlers (gateway/http.py)
run unchanged on top; what they may pass is what calls.py lists.
"""

import asyncio

from engine.rejections import Code

from ..exchange import Unavailable
from . import calls
from .client import ShardDown


class ShardsHealth:
    """What the one-process /metrics reads off its sequencer: here, whether every shard runs."""

    def __init__(self, client) -> None:
        self.client = client

    @property
    def healthy(self) -> bool:
        return all(self.client.up(k) for k in self.client.shards.all)


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

    def attach(self, client) -> None:
        self.client = client
        self.sequencer = ShardsHealth(client)

    async def read(self, fn, deliver=None):
        name, kwargs = calls.named(fn)
        read = calls.READS[name]
        payload = calls.encode_read(name, kwargs)
        shard = read.route(self.shards, kwargs)
        if shard is not None:
            return await self._call(shard, payload)
        answers = await asyncio.gather(*(self._call(k, payload) for k in self.shards.all))
        return read.merge(answers)

    async def submit(self, cmd, view=None, deliver=None):
        return await self._call(calls.command_shard(self.shards, cmd),
                                calls.encode_submit(cmd, view))

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

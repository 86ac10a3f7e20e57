"""An engine process of the split shape (`backlay engine --shard K`): one shard.

It is the one-process server (gateway/server.py) with its edges swapped: the same start-up
(migrations, recovery from the newest snapshot and the journal, verified byte for byte), the same
sequencer, persister process, snapshots and journal trimming, fail-stop and persister restarts;
but its own names (shards.py: journal stream, Postgres schema, the seq its journal starts
after), no trading socket, and instead the intake (commands and requests from gateways, replies
and pushes back) and the market-data publisher. Its HTTP port serves the one-process HTTP API
over this shard alone: health, readiness and metrics (the persister's lag included) for the
operator and the supervisor.

Liveness: the shard keeps `<prefix>:alive:s<K>` set (value: its epoch, taken at start) and lets
it expire when it stops; gateways watch it.
"""

import asyncio
import logging
import os

import redis.asyncio as aioredis

from ..ops import Ops
from ..server import Server
from . import wire
from .funding import TransferDesk
from .intake import Intake
from .publisher import EngineHub
from .shards import ShardMap, base_seq, journal_stream, schema

log = logging.getLogger(__name__)


def with_schema(database_url: str, name: str) -> str:
    """The URL with the schema first on the search path (asyncpg passes unknown query
    parameters on as server settings)."""
    if name == "public":
        return database_url
    return f"{database_url}{'&' if '?' in database_url else '?'}search_path={name}"


class EngineNode(Server):
    def __init__(self, settings, shard: int) -> None:
        super().__init__(settings)
        self.shard = shard
        self.shards = ShardMap(settings.shards)
        if shard not in self.shards.all:
            raise ValueError(f"shard {shard} of {self.shards.count}")
        self.stream = journal_stream(settings.stream, shard)
        self.base_seq = base_seq(shard)
        self.schema = schema(shard)
        self.names = wire.names(settings.wire_prefix)
        self.process = f"s{shard}"
        self.intake: Intake | None = None
        self.transfers: TransferDesk | None = None
        self.writer: wire.Writer | None = None

    def database_url(self) -> str:
        return with_schema(self.storage.database_url, self.schema)

    async def start(self) -> None:
        s = self.settings
        if not (s.redis_url and s.database_url):
            raise SystemExit("an engine shard needs REDIS_URL and DATABASE_URL (shared with the "
                             "gateways)")
        os.makedirs(s.var_dir, exist_ok=True)  # snapshots are written there first
        await self._check_shard_count()
        self.epoch = await wire.next_epoch(s.redis_url, self.names.epoch(self.process))
        self.wire_redis = aioredis.from_url(s.wire_redis_url or s.redis_url)
        md = self.names.md(self.shard)
        self.writer = wire.Writer(self.wire_redis, self.process, self.epoch, self._wire_failed,
                                  late=frozenset({md}))
        self.writer.start()
        await super().start()
        await self.wire_redis.set(self.names.alive(self.process), self.epoch,
                                  px=int(s.peer_timeout_s * 1000))
        self._tasks.append(asyncio.create_task(self._keep_alive(), name="alive"))

    async def _check_shard_count(self) -> None:
        """Markets are placed by hashing over the shard count: data made with one count cannot
        be served by another (the count is kept in the journal's Redis)."""
        redis = aioredis.from_url(self.settings.redis_url)
        try:
            key = self.names.shard_count()
            await redis.set(key, self.shards.count, nx=True)
            made_with = int(await redis.get(key))
        finally:
            await redis.aclose()
        if made_with != self.shards.count:
            raise SystemExit(f"this data was made with {made_with} shards, not "
                             f"{self.shards.count}: markets live on the shard their id hashes to")

    async def _migrate(self, conn) -> None:
        if self.schema != "public":
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await super()._migrate(conn)
        # a new shard's read model starts where its journal does
        await conn.execute("UPDATE persisted SET seq = $1 WHERE seq < $1", self.base_seq)

    def _hub(self) -> EngineHub:
        return EngineHub(self.exchange, self.writer, self.names, self.shard)

    async def _start_edges(self, hub: EngineHub) -> None:
        ops = Ops(self.exchange, hub)
        self.transfers = TransferDesk(self.shard, self.exchange, self.writer, self.names)
        self.exchange.sequencer.add_renderer(self.transfers.on_batch)
        self.transfers.start()
        self.intake = Intake(shard=self.shard, shards=self.shards.count, redis=self.wire_redis,
                             names=self.names,
                             writer=self.writer, exchange=self.exchange, hub=hub, ops=ops,
                             transfers=self.transfers,
                             peer_timeout_s=self.settings.peer_timeout_s)
        await self.intake.start()
        self.exchange.metrics.registry.register(wire.WireCounters(
            self.writer, lambda: (self.intake.entries_read, self.intake.records_read)))
        await hub.publish_all()
        await self._start_http()

    def _wire_failed(self, exc: BaseException) -> None:
        """Replies that cannot leave: nobody can be told anything, so stop (the supervisor
        restarts the shard, which recovers from its journal)."""
        self.failed = True
        stop = getattr(self, "_stop_requested", None)  # made by serve_forever
        if stop is not None:
            stop.set()

    async def _keep_alive(self) -> None:
        key, ttl_ms = self.names.alive(self.process), int(self.settings.peer_timeout_s * 1000)
        while True:
            await asyncio.sleep(self.settings.peer_timeout_s / 3)
            try:
                await self.wire_redis.set(key, self.epoch, px=ttl_ms)
            except Exception as exc:
                log.warning("shard %d: liveness key not refreshed: %r", self.shard, exc)

    async def stop(self) -> None:
        if self.intake is not None:
            await self.intake.stop()
            await self.transfers.stop()
        await super().stop()

    async def _engine_stopped(self) -> None:
        await self.writer.stop()
        try:
            await self.wire_redis.delete(self.names.alive(self.process))
        except Exception:
            pass
        await self.wire_redis.aclose()

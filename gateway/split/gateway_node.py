"""A gateway process of the split shape (`backlay gateway --id g1`): the trading WebSocket and
the HTTP edge, with no engine of its own.

The one-process connection layer runs unchanged (gateway/connection.py, session.py, either
WebSocket library): auth, the token bucket, parsing and validation, in-flight bounds, send
queues, heartbeats. Its ops are gateway_ops.GatewayOps; its hub is `GatewayHub`: the
one-process Hub's market-data side (subscriptions, conflation, pre-framed deltas, stale images,
slip re-pricing, heartbeats) fed by the mirror instead of the engine, while owner pushes and
channels arrive from the shards ready framed. HTTP is gateway/http.py over a RemoteExchange.

Shutdown (SIGTERM/SIGINT): stop accepting, close connections with 1001 after their queued
frames, tell the shards the connections are gone, stop.
"""

import asyncio
import itertools
import logging

import asyncpg
import redis.asyncio as aioredis

from ..hub import Hub
from ..metrics import Metrics
from ..server import start_http, until_signalled
from ..ws import TradingSocket
from . import wire
from .client import EngineClient
from .gateway_ops import GatewayOps
from .mirror import Mirror
from .remote import RemoteExchange
from .shards import ShardMap

log = logging.getLogger(__name__)


class GatewayHub(Hub):
    """Market data from the mirror; each connection numbered for the wire."""

    def __init__(self, exchange, mirror: Mirror) -> None:
        super().__init__(exchange)
        self.mirror = mirror
        self.client: EngineClient | None = None
        self.by_id: dict[int, object] = {}  # connection id on the wire -> Session
        self._ids = itertools.count(1)
        self._flush_scheduled = False
        mirror.on_change = self.market_changed

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._flush_loop(), name="hub-flush"),
                       asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat")]

    def add(self, session) -> None:
        super().add(session)
        session.conn_id = next(self._ids)
        self.by_id[session.conn_id] = session

    def remove(self, session) -> None:
        super().remove(session)
        if self.by_id.pop(getattr(session, "conn_id", None), None) is not None:
            self.client.closed(session)

    def market_changed(self, market: str) -> None:
        """A newer state is mirrored: subscribers get it at the end of this loop turn (the
        shard conflated it already; several states read together are sent as one)."""
        if market in self.market_watchers or self.slip_watchers:
            self._dirty[market] = None
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        markets = list(self._dirty)
        self._dirty.clear()
        for market in markets:
            state = self.mirror.state(market)
            if state is not None:
                self.published[market] = state
                self._send_deltas(market, state)
        if markets:
            self._update_slips(set(markets))

    async def flush(self) -> None:
        """The conflation tick: changes not yet sent, and fresh images for stale subscribers."""
        self._flush_now()
        self._resend_stale()

    def watch_market(self, session, market: str, depth: int, state: dict) -> int:
        self.published[market] = state
        return super().watch_market(session, market, depth, state)


class GatewayNode:
    def __init__(self, settings, gateway: str) -> None:
        if not gateway.startswith("g") or not gateway[1:].isdigit():
            raise ValueError(f"a gateway id is g<number>, not {gateway!r}")
        self.settings = settings
        self.gateway = gateway
        self.shards = ShardMap(settings.shards)
        self.names = wire.names(settings.wire_prefix)
        self.failed = False
        self.socket: TradingSocket | None = None
        self._http_runner = None
        self.ws_port = settings.ws_port
        self.http_port = settings.http_port
        self._stop_requested = asyncio.Event()

    async def start(self) -> None:
        s = self.settings
        if not (s.redis_url and s.database_url):
            raise SystemExit("a gateway needs REDIS_URL and DATABASE_URL (the shards' storage)")
        epoch = await wire.next_epoch(s.redis_url, self.names.epoch(self.gateway))
        self.redis = aioredis.from_url(s.wire_redis_url or s.redis_url)
        self.pg_pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=4)
        self.metrics = Metrics()
        self.writer = wire.Writer(self.redis, self.gateway, epoch, self._wire_failed)
        self.mirror = Mirror()
        self.exchange = RemoteExchange(s, self.metrics, self.shards, redis=self.redis,
                                       pg_pool=self.pg_pool)
        self.hub = GatewayHub(self.exchange, self.mirror)
        self.client = EngineClient(redis=self.redis, names=self.names, gateway=self.gateway,
                                   epoch=epoch, shards=self.shards, writer=self.writer,
                                   hub=self.hub, mirror=self.mirror,
                                   peer_timeout_s=s.peer_timeout_s)
        self.hub.client = self.client
        self.exchange.attach(self.client)
        self.ops = GatewayOps(client=self.client, hub=self.hub, mirror=self.mirror,
                              exchange=self.exchange, shards=self.shards)
        self.metrics.registry.register(wire.WireCounters(
            self.writer, lambda: (self.client.entries_in, self.client.frames_in)))
        self.writer.start()
        await self.client.start()
        self.hub.start()
        self.metrics.sequencer_healthy.set(1)
        self.socket = TradingSocket(self.exchange, self.hub, self.ops)
        await self.socket.start()
        self.ws_port = self.exchange.ws_port = self.socket.port
        self._http_runner, self.http_port = await start_http(self.exchange, self.socket)

    def _wire_failed(self, exc: BaseException) -> None:
        self.failed = True
        self._stop_requested.set()

    async def serve_forever(self) -> int:
        await until_signalled(self._stop_requested)
        await self.stop()
        return 1 if self.failed else 0

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.stop()  # connections closed: their shards are told
        await self.hub.stop()
        await self.writer.stop()
        await self.client.stop()
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        await self.pg_pool.close()
        await self.redis.aclose()

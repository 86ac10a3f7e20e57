"""`backlay serve`: one process running the whole exchange.

Start-up: storage servers (embedded unless REDIS_URL / DATABASE_URL) -> migrations -> recovery
(newest snapshot + journal replay, verified byte for byte) -> sequencer -> persister -> fan-out
hub -> WebSocket and HTTP servers. Shutdown (SIGTERM/SIGINT): stop intake, flush what is
queued through the journal, close connections with 1001, let the persister catch up, stop.
"""

import asyncio
import logging
import signal

import asyncpg
import redis.asyncio as aioredis

from engine.commands import Configure, ConfigureSelfLimits
from engine.config import EngineConfig
from engine.engine import Engine
from persistence.embedded import start_servers
from persistence.journal import Journal
from persistence.migrate import migrate
from persistence.persister_process import PersisterProcess
from persistence.recovery import recover, trim_journal
from persistence.collector import tune_collector
from persistence.sequencer import Sequencer
from persistence.snapshots import SnapshotSchedule, SnapshotStore, background_snapshot

from .exchange import Exchange
from .hub import Hub
from .metrics import Metrics
from .settings import Settings
from .ws import TradingSocket

log = logging.getLogger(__name__)

PERSISTER_CATCH_UP_S = 5.0
PERSISTER_WATCH_S = 0.5
PERSISTER_RESTART_MIN_S = 1.0
PERSISTER_RESTART_MAX_S = 60.0


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # an empty journal starts from defaults; the settings then arrive as a Configure command
        self.engine_config = EngineConfig()
        self.storage = None
        self.exchange: Exchange | None = None
        self.socket: TradingSocket | None = None
        self._tasks: list[asyncio.Task] = []
        self._http_runner = None
        self.http_port = settings.http_port
        self.ws_port = settings.ws_port
        # what a shard of the split shape changes (gateway/split/engine_node.py): its journal,
        # the seq it starts after and its Postgres schema
        self.stream = settings.stream
        self.base_seq = 0

    def database_url(self) -> str:
        return self.storage.database_url

    async def start(self) -> None:
        s = self.settings
        environ = {"REDIS_URL": s.redis_url or "", "DATABASE_URL": s.database_url or ""}
        self.storage = await asyncio.to_thread(start_servers, s.var_dir, s.appendfsync, environ)
        self.redis = aioredis.from_url(self.storage.redis_url)
        self.pg_pool = await asyncpg.create_pool(self.database_url(), min_size=1, max_size=4)
        async with self.pg_pool.acquire() as conn:
            await self._migrate(conn)
        self.snapshots = SnapshotStore(self.pg_pool)
        journal = Journal(self.redis, self.stream)
        recovered = await recover(journal, self.snapshots,
                                  engine_factory=lambda: Engine(self.engine_config),
                                  base_seq=self.base_seq)
        log.info("recovered seq %d (snapshot %d loaded in %.2f s + %d replayed in %.2f s)",
                 recovered.last_seq, recovered.snapshot_seq, recovered.load_s,
                 recovered.replayed, recovered.replay_s)
        tune_collector()
        metrics = Metrics()
        sequencer = Sequencer(recovered.engine, journal, last_seq=recovered.last_seq)
        self.persister = PersisterProcess(self.storage.redis_url, self.database_url(),
                                          stream=self.stream)
        self.exchange = Exchange(s, sequencer, metrics, redis=self.redis, pg_pool=self.pg_pool,
                                 persister=self.persister)
        hub = self.exchange.hub = self._hub()
        hub.index_orders(recovered.engine)
        sequencer.add_renderer(hub.on_batch)
        sequencer.add_listener(self.exchange.metrics.commands_journaled)
        await sequencer.start()
        await self._configure_engine(recovered.engine.config)
        self.exchange.replay_finished = True
        metrics.sequencer_healthy.set(1)
        await self.persister.start()
        hub.start()
        await self._start_edges(hub)
        self._tasks.append(asyncio.create_task(self._snapshot_loop(), name="snapshots"))
        self._tasks.append(asyncio.create_task(self._watch_sequencer(), name="watchdog"))
        self._tasks.append(asyncio.create_task(self._watch_persister(), name="persister-watch"))

    async def _migrate(self, conn) -> None:
        await migrate(conn)

    def _hub(self) -> Hub:
        return Hub(self.exchange)

    async def _start_edges(self, hub: Hub) -> None:
        self.socket = TradingSocket(self.exchange, hub)
        await self.socket.start()
        self.ws_port = self.exchange.ws_port = self.socket.port
        await self._start_http()

    async def _configure_engine(self, current: EngineConfig) -> None:
        """Settings that decide outcomes change through the journal, never behind its back."""
        s = self.settings
        wanted = (s.velocity_orders_max, s.velocity_window_ms, s.house_default_liability_minor,
                  s.house_back_ticks)
        if wanted != (current.velocity_orders_max, current.velocity_window_ms,
                      current.house_default_liability_minor, current.house_back_ticks):
            await self.exchange.submit(Configure(
                velocity_orders_max=s.velocity_orders_max, velocity_window_ms=s.velocity_window_ms,
                house_default_liability_minor=s.house_default_liability_minor,
                house_back_ticks=s.house_back_ticks))
        if s.self_limit_cooling_off_ms != current.self_limit_cooling_off_ms:
            await self.exchange.submit(ConfigureSelfLimits(
                cooling_off_ms=s.self_limit_cooling_off_ms))

    async def _start_http(self) -> None:
        self._http_runner, self.http_port = await start_http(self.exchange, self.socket)

    async def _snapshot_loop(self) -> None:
        """Snapshot every `snapshot_every_commands`, but no more often than keeps snapshots'
        share of the time under `snapshot_time_share_max_pct`; trim what snapshot and persister
        both hold.

        Why the spacing: a snapshot's cost (fork, the child pickling the whole engine, Postgres
        storing the blob) grows with the state, and a fixed count of commands comes round faster
        the busier the exchange is. At saturation (bench/e2e.py, ~25k orders/s) snapshots every
        100,000 commands took about 6% of the machine and added 20 ms to the ack p99. Spaced by
        their own cost, they take a bounded share whatever the rate; a restart then replays more
        journal (up to 20 snapshot-durations of commands at the default 5%), at the engine's
        replay rate (bench/replay.py)."""
        sequencer = self.exchange.sequencer
        schedule = SnapshotSchedule(self.settings.snapshot_every_commands,
                                    self.settings.snapshot_time_share_max_pct, sequencer.last_seq)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            started = loop.time()
            if not sequencer.healthy or not schedule.due(sequencer.last_seq, started):
                continue
            try:
                taken = await background_snapshot(sequencer, self.snapshots,
                                                  self.settings.var_dir)
                schedule.taken(taken, started)
                tune_collector()  # what survived until now is long-lived
                trimmed = await trim_journal(sequencer.journal, self.snapshots,
                                             self.persister.persisted_seq)
                self.exchange.metrics.snapshot_taken(taken)
                log.info("snapshot at seq %d: %.1f MB in %.2f s (child CPU %.2f s), next in "
                         ">= %.0f s; trimmed %d journal entries", taken.seq,
                         taken.size_bytes / 1e6, taken.elapsed_s, taken.child_cpu_s,
                         schedule.not_before - loop.time(), trimmed)
            except Exception:
                log.exception("snapshot failed; will retry")

    async def _watch_sequencer(self) -> None:
        """Fail-stop is visible: unhealthy metric and /ready; the process exits non-zero."""
        while self.exchange.sequencer.healthy:
            await asyncio.sleep(0.2)
        self.exchange.metrics.sequencer_healthy.set(0)
        log.critical("sequencer stopped journaling: shutting down so a restart can recover")
        self.failed = True
        self._stop_requested.set()

    async def _watch_persister(self) -> None:
        """A persister that dies (OOM killer, a bug, an operator's kill) is started again: the
        journal keeps every command, so a new one resumes where Postgres stopped. Until it is
        back /ready says so and the lag metric grows; retries back off up to a minute."""
        persister = self.persister
        backoff_s = PERSISTER_RESTART_MIN_S
        while True:
            await asyncio.sleep(PERSISTER_WATCH_S)
            if persister.alive:
                continue
            log.critical("persister process exited (code %s) at persisted seq %d; starting a "
                         "new one in %.1f s", persister.exitcode, persister.persisted_seq,
                         backoff_s)
            await asyncio.sleep(backoff_s)
            try:
                await persister.restart()
            except Exception:
                log.exception("persister restart failed")
                backoff_s = min(backoff_s * 2, PERSISTER_RESTART_MAX_S)
                continue
            self.exchange.metrics.persister_restarts.inc()
            log.warning("persister restarted (%d so far), resuming after seq %d",
                        persister.restarts, persister.persisted_seq)
            backoff_s = PERSISTER_RESTART_MIN_S

    async def serve_forever(self) -> int:
        self.failed = False
        self._stop_requested = asyncio.Event()
        await until_signalled(self._stop_requested)
        await self.stop()
        return 1 if self.failed else 0

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.socket is not None:
            await self.socket.stop()
        if self.exchange is not None:
            await self.exchange.sequencer.stop()
            await self.exchange.hub.stop()
            await self._engine_stopped()
            await self._persister_catch_up()
            await self.persister.stop()
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        if self.storage is not None:
            await self.pg_pool.close()
            await self.redis.aclose()
            await asyncio.to_thread(self.storage.stop)

    async def _engine_stopped(self) -> None:
        """The sequencer has released its last batch (a shard then sends what it released)."""

    async def _persister_catch_up(self) -> None:
        target = self.exchange.sequencer.last_seq
        deadline = asyncio.get_running_loop().time() + PERSISTER_CATCH_UP_S
        while self.persister.persisted_seq < target:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("persister at seq %d of %d at shutdown; it resumes on restart",
                            self.persister.persisted_seq, target)
                return
            await asyncio.sleep(0.05)


async def start_http(exchange, socket=None):
    """The HTTP API of `exchange` on its settings' http_port (0: a free one): (runner, port).
    Browsers from that origin are admitted to `socket`, the trading WebSocket, if there is one."""
    from aiohttp import web

    from .http import build_http_app

    settings = exchange.settings
    runner = web.AppRunner(build_http_app(exchange), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.http_port).start()
    port = runner.addresses[0][1]
    if socket is not None:
        for host in {settings.host, "127.0.0.1", "localhost"}:
            socket.allow_origin(f"http://{host}:{port}")
    return runner, port


async def until_signalled(stop_requested: asyncio.Event) -> None:
    """Until SIGTERM or SIGINT (or someone else sets `stop_requested`)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()

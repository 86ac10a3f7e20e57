"""The split shape as real processes, for tests/test_split_*.py: `backlay serve --gateways N
--shards M` (a supervisor, M engine processes with their persisters, N gateway processes) on the
session's Redis and a Postgres database of the test's own, with its own stream names; and what a
test reads behind its back: each shard's journal replayed into an engine (verified byte for byte
by recovery), each shard's read model in its schema, the pids of its processes.

    with split_exchange(redis_url, database_url, gateways=2, shards=2) as x:
        ... x.server (tests/ws_fixtures.ServerProcess), x.pid("g1"), await x.engines() ...
"""

import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
import psutil
import redis.asyncio as aioredis

from engine.engine import EXTERNAL, Engine
from engine.transfers import TRANSIT
from gateway.split.engine_node import with_schema
from gateway.split.shards import ShardMap, base_seq, journal_stream, schema
from persistence.journal import Journal
from persistence.recovery import recover
from persistence.snapshots import SnapshotStore
from tests.ws_fixtures import ServerProcess, scratch_dir, start_server, stop_server

_UP = re.compile(r"^\[(\S+)\] (?:engine|gateway) \S+ up: pid (\d+)")


@dataclass
class SplitExchange:
    server: ServerProcess
    redis_url: str
    database_url: str
    stream: str
    shards: ShardMap

    def pid(self, process: str) -> int:
        """The pid of a shard ("s1") or gateway ("g2") as last started by the supervisor."""
        pids = [int(m.group(2)) for m in map(_UP.match, list(self.server.log))
                if m and m.group(1) == process]
        assert pids, f"{process} never came up:\n{self.server.log_tail()}"
        return pids[-1]

    def starts(self, process: str) -> int:
        return sum(1 for m in map(_UP.match, list(self.server.log))
                   if m and m.group(1) == process)

    async def engines(self) -> list[Engine]:
        """Every shard's engine as a restart would recover it: its newest snapshot (in its
        schema) and its journal after it, every event verified."""
        redis = aioredis.from_url(self.redis_url)
        engines = []
        try:
            for k in self.shards.all:
                pool = await asyncpg.create_pool(with_schema(self.database_url, schema(k)),
                                                 min_size=1, max_size=1)
                try:
                    engines.append((await recover(
                        Journal(redis, journal_stream(self.stream, k)), SnapshotStore(pool),
                        base_seq=base_seq(k))).engine)
                finally:
                    await pool.close()
        finally:
            await redis.aclose()
        return engines

    async def read_model(self, shard: int, sql: str, *args):
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f'SET search_path TO "{schema(shard)}"')
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


def money_outside(engines: list[Engine], currency: str = "BDT") -> int:
    """What every account but EXTERNAL holds over all shards (TRANSIT included): deposits minus
    withdrawals, if no money appeared or vanished."""
    return sum(w.balance for engine in engines for (account, cur), w in engine.wallets.items()
               if cur == currency and account != EXTERNAL)


def transit(engines: list[Engine], currency: str = "BDT") -> int:
    return sum(w.balance for engine in engines for (account, cur), w in engine.wallets.items()
               if cur == currency and account == TRANSIT)


def whole_wallet(engines: list[Engine], user: str, currency: str = "BDT") -> tuple[int, int]:
    """(balance, held) of a bettor over the shards, as their gateway sums them."""
    balance = held = 0
    for engine in engines:
        w = engine.wallets.get((user, currency))
        balance += (w.balance if w else 0) + engine.transfers.net.get((user, currency), 0)
        held += w.held if w else 0
    return balance, held


@contextmanager
def split_exchange(redis_url: str, database_url: str, gateways: int = 2, shards: int = 2,
                   env: dict[str, str] | None = None):
    name = uuid.uuid4().hex[:10]
    stream = f"test:{name}:journal"
    settings = {"REDIS_URL": redis_url, "DATABASE_URL": database_url,
                "BACKLAY_STREAM": stream, "BACKLAY_WIRE_PREFIX": f"test:{name}",
                **(env or {})}
    with scratch_dir("backlay-split-") as base:
        server = start_server(base / "var", settings, gateways=gateways, shards=shards)
        try:
            yield SplitExchange(server, redis_url, database_url, stream, ShardMap(shards))
        finally:
            rc = stop_server(server)
            _kill_leftovers(stream)
            assert rc == 0, f"the supervisor exited {rc}:\n{server.log_tail()}"


def _kill_leftovers(stream: str) -> None:
    """Any process of this exchange still running (one whose parent a test killed, busy when
    its parent went): the session's servers outlive the test, it must not."""
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("BACKLAY_STREAM") == stream:
                proc.kill()
        except psutil.Error:
            continue

"""An in-process exchange behind the real HTTP app, per test, for tests/test_http_*.py.

Real Redis and Postgres (the session servers of conftest.py, a fresh stream and database per
test), a real Engine and Sequencer, the real aiohttp application on a real socket through
aiohttp's TestServer/TestClient. Import the `http_exchange` fixture into a test module:

    from tests.http_fixtures import http_exchange  # noqa: F401  (a pytest fixture)

    def test_something(http_exchange):
        async def scenario(x):  # x: Stack
            response = await x.client.get("/health")
            ...
        http_exchange(scenario)
"""

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from engine import commands as c
from engine import events as ev
from engine.engine import Engine
from gateway.auth import make_token
from gateway.exchange import Exchange
from gateway.http import build_http_app
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.webhooks import sign
from persistence.journal import Journal
from persistence.persister import Persister
from persistence.sequencer import Sequencer

JWT_SECRET = "test-jwt-secret-at-least-32-bytes-long"
WEBHOOK_SECRET = "test-webhook-secret"
CURRENCY = "BDT"


@dataclass
class Stack:
    client: TestClient
    exchange: Exchange
    engine: Engine
    settings: Settings
    persister: Persister | None

    def token(self, user: str, *roles: str, ttl_s: int = 3600, secret: str = JWT_SECRET) -> str:
        return make_token(secret, user, list(roles), ttl_s=ttl_s)

    def auth(self, user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, *roles)}"}

    async def submit(self, cmd: c.Command) -> list:
        """Submit through the exchange, as the WebSocket edge would; a rejection fails the
        test (seeding must not silently do nothing)."""
        events = await self.exchange.submit(cmd)
        rejected = [e for e in events if isinstance(e, ev.CommandRejected)]
        assert not rejected, f"{cmd} was rejected: {rejected}"
        return events

    async def deposit(self, user: str, amount_minor: int) -> None:
        await self.submit(c.Deposit(user=user, currency=CURRENCY, amount_minor=amount_minor,
                                    ref=f"seed-{user}-{amount_minor}-{time.monotonic_ns()}"))

    async def open_market(self, market: str, *selections: str, **create) -> None:
        await self.submit(c.CreateMarket(market=market, event="e1", name=f"Market {market}",
                                         selections=tuple((s, s.upper()) for s in selections),
                                         **create))
        await self.submit(c.SetMarketStatus(market=market, status="open"))

    async def read(self, fn):
        return await self.exchange.read(fn)

    async def wallet(self, user: str) -> tuple[int, int]:
        """(balance, held) in minor units, read from the engine between batches."""
        def get(engine):
            w = engine.wallets.get((user, CURRENCY))
            return (w.balance, w.held) if w is not None else (0, 0)
        return await self.read(get)

    async def webhook(self, body: dict | bytes, provider: str = "bkash",
                      signature: str | None = None, secret: str = WEBHOOK_SECRET):
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json",
                   "X-Signature": sign(secret, raw) if signature is None else signature}
        return await self.client.post(f"/webhooks/deposits/{provider}", data=raw,
                                      headers=headers)


@asynccontextmanager
async def running_stack(redis_url: str, stream: str, database_url: str, *,
                        persister: str | None = None, **settings):
    """persister: None (no persister), "idle" (prepared, never steps: lag stays visible) or
    "running"; `settings` override the Settings fields."""
    redis = aioredis.from_url(redis_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    engine = Engine()
    sequencer = Sequencer(engine, Journal(redis, stream))
    await sequencer.start()
    worker = None
    if persister is not None:
        worker = Persister(redis, database_url, stream=stream)
        if persister == "running":
            await worker.start()
        else:
            await worker.prepare()
    settings = Settings(**{"jwt_secret": JWT_SECRET, "webhook_secret": WEBHOOK_SECRET,
                           "webhook_tolerance_s": 300, "currency": CURRENCY,
                           "jwt_public_key": None, **settings})
    exchange = Exchange(settings, sequencer, Metrics(), redis=redis, pg_pool=pool,
                        persister=worker)
    exchange.replay_finished = True  # a fresh journal: nothing to replay
    client = TestClient(TestServer(build_http_app(exchange)))
    await client.start_server()
    try:
        yield Stack(client, exchange, engine, settings, worker)
    finally:
        await client.close()
        if worker is not None:
            await worker.stop()
        await sequencer.stop()
        await pool.close()
        await redis.aclose()


@pytest.fixture
def http_exchange(run, redis_url, stream, migrated_database_url):
    """http_exchange(scenario, persister=None, **settings): runs `await scenario(stack)`
    against a fresh stack and returns its result."""
    def go(scenario, persister: str | None = None, **settings):
        async def main():
            async with running_stack(redis_url, stream, migrated_database_url,
                                     persister=persister, **settings) as stack:
                return await scenario(stack)
        return run(main())
    return go

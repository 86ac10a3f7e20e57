"""Create the load-test world on a running exchange, the way real clients would.

- markets: a trader connection sends market.create, limits.set, market.status open and
  prices.set (the house then quotes them); a market that already exists is only reopened and
  repriced, so seeding twice is harmless;
- money: one signed deposit webhook per bettor bot, ref `<prefix>-seed-<user>`, so a second
  seeding credits nothing (the exchange credits once per provider ref);
- bookkeeping: every bot gets a row in Postgres `users` with `seeded = true`, so reports can
  tell bots from customers.

    python -m loadtests.seed --ws ws://127.0.0.1:8765/ws --http http://127.0.0.1:8080 \
        --database-url postgresql://... [--markets 6 --bots 50 --prefix lt]

The JWT and webhook secrets come from BACKLAY_JWT_SECRET / BACKLAY_WEBHOOK_SECRET (the server's
own variables, defaulting like gateway/settings.py).
"""

import argparse
import asyncio
import itertools
import os
import sys
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import orjson
from websockets.asyncio.client import connect

from gateway.auth import make_token
from gateway.webhooks import SIGNATURE_HEADER, sign

from .world import (CURRENCY, MARGIN, MARKET_MAX_LIABILITY, MARKET_MAX_STAKE, MARKET_MIN_STAKE,
                    World)

ENV_WEBHOOK_SECRET = "BACKLAY_WEBHOOK_SECRET"
DEFAULT_WEBHOOK_SECRET = "backlay-development-webhook-secret"  # gateway/settings.py's default
PROVIDER = "loadtest"
REPLY_TIMEOUT_S = 15.0
DEPOSITS_CONCURRENT_MAX = 16
HTTP_TIMEOUT_S = 15.0

# Postgres table of the platform's users (persistence/migrations 0002 creates it too); created
# here if missing so seeding works against a database whose migration has not landed yet.
USERS_DDL = """CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    seeded BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
USERS_UPSERT = """INSERT INTO users (user_id, seeded) SELECT unnest($1::text[]), true
ON CONFLICT (user_id) DO UPDATE SET seeded = true"""


class SeedError(Exception):
    pass


@dataclass
class SeedReport:
    markets_created: int = 0
    markets_existing: int = 0
    deposits: int = 0
    users_flagged: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"seeded {self.markets_created} markets (+{self.markets_existing} existing), "
                f"{self.deposits} deposits, {self.users_flagged} users flagged seeded "
                f"in {self.seconds:.1f} s")


class Rpc:
    """A minimal sequential client: one request at a time, pushes skipped."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def __call__(self, payload: dict) -> dict:
        rid = next(self.ids)
        await self.ws.send(orjson.dumps({**payload, "id": rid}).decode())
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while True:
                msg = orjson.loads(await self.ws.recv())
                if msg.get("id") == rid:
                    return msg


def _expect(reply: dict, op: str, what: str) -> dict:
    if reply.get("op") != op:
        raise SeedError(f"{what}: expected {op}, got {reply}")
    return reply


async def seed_markets(world: World, ws_url: str, report: SeedReport) -> None:
    token = make_token(world.jwt_secret, world.seeder(), ["trader"])
    async with connect(ws_url, open_timeout=REPLY_TIMEOUT_S, compression=None) as ws:
        rpc = Rpc(ws)
        _expect(await rpc({"op": "auth", "token": token}), "authed", "seeder auth")
        for spec in world.market_specs():
            reply = await rpc({"op": "market.create", "market": spec.market, "event": spec.event,
                               "name": spec.name, "type": "exchange", "currency": CURRENCY,
                               "selections": [{"id": sid, "name": name}
                                              for sid, name in spec.selections]})
            if reply.get("op") == "market":
                report.markets_created += 1
            elif reply.get("code") == "BAD_REQUEST" and "exists" in reply.get("message", ""):
                report.markets_existing += 1
            else:
                raise SeedError(f"market.create {spec.market}: {reply}")
            _expect(await rpc({"op": "limits.set", "market": spec.market,
                               "max_liability": MARKET_MAX_LIABILITY,
                               "min_stake": MARKET_MIN_STAKE, "max_stake": MARKET_MAX_STAKE}),
                    "market", f"limits.set {spec.market}")
            _expect(await rpc({"op": "market.status", "market": spec.market, "status": "open"}),
                    "market", f"market.status {spec.market}")
            _expect(await rpc({"op": "prices.set", "market": spec.market, "margin": MARGIN,
                               "prices": {sid: f"{p // 100}.{p % 100:02d}"
                                          for sid, p in spec.fair.items()}}),
                    "market", f"prices.set {spec.market}")


async def fund_bots(world: World, http_url: str, webhook_secret: str,
                    report: SeedReport) -> None:
    url = f"{http_url.rstrip('/')}/webhooks/deposits/{PROVIDER}"
    gate = asyncio.Semaphore(DEPOSITS_CONCURRENT_MAX)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)

    async def deposit(session: aiohttp.ClientSession, user: str, amount: str) -> None:
        body = orjson.dumps({"ref": f"{world.prefix}-seed-{user}", "user": user,
                             "amount": amount, "currency": CURRENCY, "ts": int(time.time())})
        async with gate, session.post(url, data=body, headers={
                SIGNATURE_HEADER: sign(webhook_secret, body),
                "Content-Type": "application/json"}) as resp:
            reply = await resp.json(content_type=None)
            if resp.status != 200 or reply.get("status") != "credited":
                raise SeedError(f"deposit for {user}: HTTP {resp.status} {reply}")

    async with aiohttp.ClientSession(timeout=timeout) as session:
        bettors = world.bettors()
        await asyncio.gather(*(deposit(session, user, profile.funds)
                               for user, profile in bettors))
        report.deposits += len(bettors)


async def flag_users(world: World, database_url: str, report: SeedReport) -> None:
    users = [user for user, _ in world.bettors()]
    conn = await asyncpg.connect(database_url, timeout=HTTP_TIMEOUT_S)
    try:
        await conn.execute(USERS_DDL)
        await conn.execute(USERS_UPSERT, users)
    finally:
        await conn.close()
    report.users_flagged = len(users)


async def seed(world: World, ws_url: str, http_url: str, database_url: str | None,
               webhook_secret: str) -> SeedReport:
    started = time.perf_counter()
    report = SeedReport()
    await seed_markets(world, ws_url, report)
    await fund_bots(world, http_url, webhook_secret, report)
    if database_url:
        await flag_users(world, database_url, report)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    env_world = World.from_env()
    parser.add_argument("--ws", required=True, help="ws://HOST:PORT/ws")
    parser.add_argument("--http", required=True, help="http://HOST:PORT")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="Postgres URL for the users table (default $DATABASE_URL)")
    parser.add_argument("--prefix", default=env_world.prefix)
    parser.add_argument("--markets", type=int, default=env_world.markets)
    parser.add_argument("--bots", type=int, default=env_world.bots,
                        help="identities per bettor profile")
    args = parser.parse_args(argv)
    world = World(prefix=args.prefix, markets=args.markets, bots=args.bots,
                  jwt_secret=env_world.jwt_secret)
    secret = os.environ.get(ENV_WEBHOOK_SECRET) or DEFAULT_WEBHOOK_SECRET
    try:
        report = asyncio.run(seed(world, args.ws, args.http, args.database_url, secret))
    except (SeedError, OSError, asyncpg.PostgresError, aiohttp.ClientError, TimeoutError) as exc:
        print(f"seeding failed: {exc}", file=sys.stderr)
        return 1
    print(report.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

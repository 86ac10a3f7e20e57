"""The books after a load test, checked from outside the server: what an auditor could check.

1. The persister caught up: Postgres `persisted.seq` equals the journal's last seq (Redis
   XINFO STREAM last-generated-id; an entry's id is its batch's last seq).
2. Money is conserved in the read model: per currency, the balances of every account (users,
   house, commission, external) sum to zero, and so do all ledger entries.
3. Nobody is below zero: no user wallet (house and external are exempt by design) has
   balance - held < 0, in the read model or in the engine.
4. The engine agrees: every wallet the read model holds has the same balance and held in the
   engine (GET /admin/users/{id}), and the engine's balances also sum to zero.
5. No crossed book: on every load-test market, best to_back price < best to_lay price
   (GET /admin/markets/{id}).

Every wait and loop here is bounded in time and count.
"""

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from gateway.auth import make_token

from .book import hundredths

EXEMPT = ("house", "external")  # accounts allowed below zero available (engine/engine.py)
CATCH_UP_TIMEOUT_S = 60.0
CATCH_UP_POLL_S = 0.2
HTTP_TIMEOUT_S = 15.0
HTTP_CONCURRENT_MAX = 16
REPORT_ITEMS_MAX = 5  # offending rows listed per broken check


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _first(items: list, n: int = REPORT_ITEMS_MAX) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


async def journal_last_seq(redis_url: str, stream: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        info = await client.xinfo_stream(stream)
    except aioredis.ResponseError:
        return 0
    finally:
        await client.aclose()
    last = info["last-generated-id"]
    return int((last.decode() if isinstance(last, bytes) else last).partition("-")[0])


async def persister_caught_up(conn, redis_url: str, stream: str,
                              timeout_s: float = CATCH_UP_TIMEOUT_S) -> Check:
    """Waits (bounded) until persisted == journal last seq on two polls in a row: the server
    should be idle by now, though cancel-on-disconnect may still be journaling for a moment."""
    deadline = time.monotonic() + timeout_s
    polls = int(timeout_s / CATCH_UP_POLL_S) + 1
    persisted = last = 0
    previous = None
    for _ in range(polls):
        last = await journal_last_seq(redis_url, stream)
        persisted = await conn.fetchval("SELECT seq FROM persisted")
        if persisted == last and last > 0 and previous == last:
            return Check("persister caught up", True, f"persisted seq {persisted} == journal "
                         f"last seq {last}")
        previous = last if persisted == last else None
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(CATCH_UP_POLL_S)
    return Check("persister caught up", False, f"persisted seq {persisted}, journal last seq "
                 f"{last} after {timeout_s:g} s")


async def read_model_checks(conn) -> tuple[list[Check], list]:
    rows = await conn.fetch("SELECT user_id, currency, balance_minor, held_minor FROM wallets")
    sums: dict[str, int] = {}
    for r in rows:
        sums[r["currency"]] = sums.get(r["currency"], 0) + r["balance_minor"]
    unbalanced = [f"{cur} {total:+d}" for cur, total in sums.items() if total]
    ledger = await conn.fetch("SELECT currency, sum(amount_minor) AS total FROM ledger_entries "
                              "GROUP BY currency HAVING sum(amount_minor) <> 0")
    checks = [
        Check("money conserved (read model)", not unbalanced and bool(rows),
              f"{len(rows)} wallets sum to zero per currency" if not unbalanced and rows else
              f"wallet balances sum to {_first(unbalanced)} minor units" if rows else
              "no wallets in the read model"),
        Check("ledger balances (read model)", not ledger,
              "ledger entries sum to zero per currency" if not ledger else
              f"ledger sums {_first([(r['currency'], r['total']) for r in ledger])}"),
    ]
    negative = [f"{r['user_id']} {r['balance_minor'] - r['held_minor']}" for r in rows
                if r["user_id"] not in EXEMPT and r["balance_minor"] < r["held_minor"]]
    checks.append(Check("no negative available (read model)", not negative,
                        f"all {len(rows)} wallets >= 0 available" if not negative else
                        f"below zero: {_first(negative)}"))
    return checks, rows


async def engine_checks(http_url: str, token: str, rows: list,
                        markets: list[str]) -> list[Check]:
    base = http_url.rstrip("/")
    gate = asyncio.Semaphore(HTTP_CONCURRENT_MAX)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)

    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        async def get(path: str) -> tuple[int, dict]:
            async with gate, session.get(base + path) as resp:
                return resp.status, await resp.json(content_type=None)

        users = sorted({r["user_id"] for r in rows})
        details = await asyncio.gather(*(get(f"/admin/users/{u}") for u in users))
        books = await asyncio.gather(*(get(f"/admin/markets/{m}") for m in markets))

    engine = {}
    errors = []
    for user, (status, body) in zip(users, details):
        if status != 200:
            errors.append(f"{user}: HTTP {status} {body.get('code')}")
            continue
        for w in body["wallets"]:
            engine[(user, w["currency"])] = (hundredths_signed(w["balance"]),
                                            hundredths_signed(w["held"]))
    differ = [f"{r['user_id']}/{r['currency']}: pg {r['balance_minor']}/{r['held_minor']} "
              f"engine {engine.get((r['user_id'], r['currency']))}" for r in rows
              if engine.get((r["user_id"], r["currency"])) != (r["balance_minor"],
                                                              r["held_minor"])]
    sums: dict[str, int] = {}
    for (user, cur), (balance, _) in engine.items():
        sums[cur] = sums.get(cur, 0) + balance
    negative = [f"{u} {b - h}" for (u, _), (b, h) in engine.items() if u not in EXEMPT and b < h]

    crossed = []
    for market, (status, body) in zip(markets, books):
        if status != 200:
            errors.append(f"{market}: HTTP {status} {body.get('code')}")
            continue
        for sel in body["selections"]:
            if sel["to_back"] and sel["to_lay"] and \
                    hundredths(sel["to_back"][0][0]) >= hundredths(sel["to_lay"][0][0]):
                crossed.append(f"{market}/{sel['id']} {sel['to_back'][0][0]} >= "
                               f"{sel['to_lay'][0][0]}")
    return [
        Check("admin API answered", not errors,
              f"{len(users)} users, {len(markets)} markets" if not errors else _first(errors)),
        Check("engine equals read model", not differ and not errors,
              f"{len(rows)} wallets identical" if not differ else f"differ: {_first(differ)}"),
        Check("money conserved (engine)", not any(sums.values()) and bool(sums),
              "engine balances sum to zero per currency" if not any(sums.values()) else
              f"engine balances sum to {sums}"),
        Check("no negative available (engine)", not negative,
              "every user wallet >= 0 available" if not negative else _first(negative)),
        Check("no crossed book", not crossed,
              f"{len(markets)} markets uncrossed" if not crossed else _first(crossed)),
    ]


def hundredths_signed(text: str) -> int:
    return -hundredths(text[1:]) if text.startswith("-") else hundredths(text)


async def check_books(*, http_url: str, database_url: str, redis_url: str, stream: str,
                      jwt_secret: str, markets: list[str],
                      catch_up_timeout_s: float = CATCH_UP_TIMEOUT_S) -> list[Check]:
    conn = await asyncpg.connect(database_url, timeout=HTTP_TIMEOUT_S)
    try:
        caught_up = await persister_caught_up(conn, redis_url, stream, catch_up_timeout_s)
        model, rows = await read_model_checks(conn)
    finally:
        await conn.close()
    token = make_token(jwt_secret, "loadtest-auditor", ["operator"], ttl_s=600)
    return [caught_up, *model, *await engine_checks(http_url, token, rows, markets)]


def main(argv: list[str] | None = None) -> int:
    """`python -m loadtests.checks`: audit a running exchange (compose runs it after Locust)."""
    import argparse
    import os
    import sys

    from .world import World

    parser = argparse.ArgumentParser(prog="python -m loadtests.checks",
                                     description="Audit the books of a running exchange.")
    parser.add_argument("--http", required=True, help="http://HOST:PORT of the exchange")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--stream", default=os.environ.get("BACKLAY_STREAM", "backlay:journal"))
    parser.add_argument("--timeout", type=float, default=CATCH_UP_TIMEOUT_S,
                        help="seconds to wait for the persister to catch up")
    args = parser.parse_args(argv)
    if not args.database_url or not args.redis_url:
        parser.error("--database-url and --redis-url (or DATABASE_URL / REDIS_URL) are needed")
    world = World.from_env()

    async def bounded() -> list[Check]:
        async with asyncio.timeout(args.timeout + 60):
            return await check_books(http_url=args.http, database_url=args.database_url,
                                     redis_url=args.redis_url, stream=args.stream,
                                     jwt_secret=world.jwt_secret, markets=world.market_ids(),
                                     catch_up_timeout_s=args.timeout)

    try:
        checks = asyncio.run(bounded())
    except (OSError, TimeoutError, asyncpg.PostgresError, aiohttp.ClientError,
            aioredis.RedisError) as exc:
        print(f"audit failed: {exc!r}", file=sys.stderr)
        return 1
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The operator's GGR report (gateway/reports.py) with several shards: every shard's read model
holds the markets that live there (its own Postgres schema), and the gateway merges them.

Each shard reads its part in one snapshot of its own (REPEATABLE READ): its market rows and the
distinct bettors of each (currency, day). A market lives on one shard, so the market rows are a
union; a day's or a currency's money is the sum of its market rows (int minor units) and its
`markets` their count; its `bettors` is the size of the union of the shards' bettor sets, so a
bettor who traded on two shards counts once. Rows keep the one-process nesting: currencies, their
days, each day's markets, ordered by code point (in one process Postgres orders them by the
database's collation, which may differ for ids mixing case or punctuation). `persisted_seq`
stays shard 0's, and `persisted_seqs` says each shard's: seqs count per shard, so no one number
covers them all.

Seeded users: the operator marks them in the `users` table of the gateway's database
(DATABASE_URL, shard 0's schema `public`, where loadtests/seed.py writes them); the gateway
reads them and every shard leaves them out as well as any marked in its own schema.

With one shard, that shard's own report (the one-process figures and order), with
`persisted_seqs`.
"""

import asyncio
from datetime import date

from ..reports import build_report, ggr_part, ggr_report
from . import calls
from .shards import ShardMap

_MONEY = ("matched", "commission", "house_pnl", "deductions")
SEEDED_SQL = "SELECT user_id FROM users WHERE seeded"


async def part(exchange, day_from: str, day_to: str, include_seeded: bool,
               seeded: list[str] | None) -> dict:
    """Shard side: this shard's whole report (`seeded` None), or its part of a merged one."""
    dates = date.fromisoformat(day_from), date.fromisoformat(day_to)
    if seeded is None:
        return await ggr_report(exchange.pg_pool, *dates, include_seeded)
    return await ggr_part(exchange.pg_pool, *dates, include_seeded, seeded)


async def merged(call, shards: ShardMap, pg_pool, day_from: date, day_to: date,
                 include_seeded: bool) -> dict:
    """The report over every shard, with `persisted_seqs` per shard; `call(shard, payload)`
    gives a named call's value (RemoteExchange)."""
    seeded = None
    if shards.count > 1:  # the operator marks seeded users in shard 0's `users` (public)
        seeded = [] if include_seeded else [
            r["user_id"] for r in await pg_pool.fetch(SEEDED_SQL)]
    payload = calls.encode_report(day_from.isoformat(), day_to.isoformat(), include_seeded,
                                  seeded)
    parts = await asyncio.gather(*(call(k, payload) for k in shards.all))
    seqs = {str(k): p["persisted_seq"] for k, p in zip(shards.all, parts)}
    if seeded is None:
        return {**parts[0], "persisted_seqs": seqs}
    return {**build_report(day_from, day_to, include_seeded, parts[0]["persisted_seq"],
                           _rows(parts)),
            "persisted_seqs": seqs}


def _rows(parts: list[dict]) -> list[dict]:
    """Every shard's market rows with the day and currency totals, in GGR_SQL's grain and
    order."""
    bettors: dict[tuple[str, str], set[str]] = {}
    for p in parts:
        for currency, day, users in p["bettors"]:
            bettors.setdefault((currency, day), set()).update(users)
    markets = sorted((m for p in parts for m in p["markets"]),
                     key=lambda m: (m["currency"], m["day"], m["market"]))
    rows: list[dict] = []
    for currency in dict.fromkeys(m["currency"] for m in markets):
        of_currency = [m for m in markets if m["currency"] == currency]
        for day in dict.fromkeys(m["day"] for m in of_currency):
            of_day = [m for m in of_currency if m["day"] == day]
            rows += of_day
            rows.append(_total(1, currency, day, of_day, bettors.get((currency, day), set())))
        rows.append(_total(3, currency, None, of_currency,
                           set().union(*(users for (cur, _), users in bettors.items()
                                         if cur == currency))))
    return rows


def _total(grain: int, currency: str, day: str | None, markets: list[dict],
           bettors: set[str]) -> dict:
    return {"grain": grain, "currency": currency, "day": day, "markets": len(markets),
            "bettors": len(bettors), **{k: sum(m[k] for m in markets) for k in _MONEY}}

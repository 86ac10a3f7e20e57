"""A bettor's statement and cleared orders with several shards: every shard's read model holds
the movements and bets made there (its own Postgres schema), and the gateway merges them.

Order: every shard's rows merged by time, ties by shard, then in the shard's own order (seq):
one order over the exchange, the same for every page. A cursor stays in the protocol's form
(`s<seq>.<currency>`, `c<settled seq>.<placed seq>`): its seq names the shard of the row it
points at, which says when that row was (`place`); the other shards' pages start at that time
(`Page.from_place`), rows at that very time coming after it on the shards after its shard.
Each shard waits until its read model holds what it had journaled when asked, as in one
process; `as_of_seq` is the highest of the shards' (seqs count per shard, from the shard's base:
every seq the bettor was told before asking, on any shard, is below it).

Running balance: a movement's balance is the bettor's whole wallet right after it, the sum over
the shards of each one's balance at that moment less what that shard's transfers moved (a
transfer moves the bettor's money between their own wallets and changes no sum, so transfers
are not listed). The shard of a movement gives its own figure with the row; the others say
theirs at that moment (`balances`), each bounded by the seq its own rows were read at, so a
movement is never counted in a balance before the page can list it. `held` likewise;
`held_change` and `amount` are the movement's own.
"""

import asyncio

from engine.money import format_money
from engine.rejections import Code

from ..statements import OWN_BALANCE, HistoryError, as_of, checked
from ..statements import _journaled_seq as journaled_seq
from . import calls
from .scatter import minor
from .shards import ShardMap

# -- shard side: named calls run on the shard's read model ------------------------------------

_STATEMENT_PLACE = "SELECT ts_ms FROM wallet_movements WHERE user_id = $1 AND seq = $2 LIMIT 1"
_CLEARED_PLACE = "SELECT ts_ms FROM settlements WHERE seq = $1"

# For each place [ts, currency, at that ts too]: the wallet's last movement before it (seq at
# most $5), its balance less what its transfers moved, and its held.
_BALANCES_SQL = """
SELECT p.i, s.own_balance, s.held_minor
FROM unnest($2::bigint[], $3::text[], $4::bool[]) WITH ORDINALITY AS p(ts, currency, at_ts, i)
LEFT JOIN LATERAL (
    SELECT mv.held_minor, """ + OWN_BALANCE + """ AS own_balance
    FROM wallet_movements mv
    WHERE mv.user_id = $1 AND mv.currency = p.currency AND mv.seq <= $5
      AND (mv.ts_ms < p.ts OR (p.at_ts AND mv.ts_ms = p.ts))
    ORDER BY mv.seq DESC LIMIT 1) s ON true
ORDER BY p.i"""


async def place(exchange, user: str, op: str, seq: int) -> int:
    """When the row a cursor of this shard names was (ms)."""
    async with exchange.pg_pool.acquire() as conn:
        ts = await (conn.fetchval(_STATEMENT_PLACE, user, seq) if op == "statement"
                    else conn.fetchval(_CLEARED_PLACE, seq))
    if ts is None:
        raise HistoryError(Code.BAD_REQUEST, "cursor: not a position of this history")
    return ts


async def balances(exchange, user: str, places: list, bound_seq: int | None) -> list:
    """[own balance, held] of the user's wallet on this shard at each place (None: none yet),
    once the read model holds what the shard had journaled."""
    target = await exchange.read(journaled_seq)

    async def read(conn) -> list:
        rows = await conn.fetch(_BALANCES_SQL, user, [p[0] for p in places],
                                [p[1] for p in places], [p[2] for p in places],
                                target if bound_seq is None else bound_seq)
        return [None if r["own_balance"] is None else [r["own_balance"], r["held_minor"]]
                for r in rows]

    _, found = await as_of(exchange.pg_pool, target, exchange.settings.statement_wait_ms_max
                           / 1000, read)
    return found


# -- gateway side -----------------------------------------------------------------------------


async def merged(client, settings, shards: ShardMap, user: str, req) -> dict:
    """The `statement` or `cleared` page, over every shard."""
    checked(settings, req)
    is_statement = req.op == "statement"
    fields = req.model_dump()
    cursor_shard = from_ts = None
    if req.cursor is not None:
        seq = int(req.cursor[1:].split(".")[0])
        cursor_shard = shards.of_seq(seq)
        from_ts = await _call(client, cursor_shard, "place", user, req.op, seq)
    listing = [shards.of_market(req.market)] if req.market else list(shards.all)

    def part(k: int):
        if k == cursor_shard or cursor_shard is None:
            return _call(client, k, "page", user, req.op, fields, None, True)
        # the cursor is another shard's: after its time; at that time too if this shard comes
        # after the cursor's (newest first: before it)
        at_ts = k > cursor_shard if req.sort == "oldest" else k < cursor_shard
        return _call(client, k, "page", user, req.op, {**fields, "cursor": None},
                     [from_ts, at_ts], True)

    parts = dict(zip(listing, await asyncio.gather(*(part(k) for k in listing))))
    rows = _merge(parts, "movements" if is_statement else "orders", req.sort == "newest",
                  _statement_key if is_statement else _cleared_key)
    page, more = rows[:req.limit], (len(rows) > req.limit
                                    or any(p["next"] is not None for p in parts.values()))
    as_of_seq = max(p["as_of_seq"] for p in parts.values())
    if is_statement:
        movements = await _balanced(client, shards, user, page, parts)
        last = page[-1][1] if page else None
        return {"as_of_seq": as_of_seq, "movements": movements,
                "next": f"s{last['seq']}.{last['currency']}" if more else None}
    orders = [row for _, row in page]
    lines = {m["market"]: m for p in parts.values() for m in p["markets"]}
    last = orders[-1] if orders else None
    return {"as_of_seq": as_of_seq, "orders": orders,
            "markets": [lines[m] for m in dict.fromkeys(o["market"] for o in orders)],
            "next": f"c{last['settled_seq']}.{last['placed_seq']}" if more else None}


def _statement_key(shard: int, row: dict) -> tuple:
    return row["ts"], shard, row["seq"], row["currency"]


def _cleared_key(shard: int, row: dict) -> tuple:
    return row["settled_ts"], shard, row["settled_seq"], row["placed_seq"]


def _merge(parts: dict, name: str, newest_first: bool, key) -> list[tuple[int, dict]]:
    """Every shard's rows, (shard, row), in the one order over the shards."""
    rows = [(shard, row) for shard, part in parts.items() for row in part[name]]
    return sorted(rows, key=lambda r: key(*r), reverse=newest_first)


async def _balanced(client, shards: ShardMap, user: str, page: list, parts: dict) -> list[dict]:
    """The page's movements with the whole wallet after each: their own shard's figure plus
    every other shard's at that moment."""
    others = {k: [(i, [row["ts"], row["currency"], k < shard])
                  for i, (shard, row) in enumerate(page) if shard != k] for k in shards.all}
    asked = [k for k in shards.all if others[k]]
    answers = await asyncio.gather(*(
        _call(client, k, "balances", user, [place for _, place in others[k]],
              parts[k]["as_of_seq"] if k in parts else None) for k in asked))
    balance = [row["own_balance"] for _, row in page]
    held = [minor(row["held"]) for _, row in page]
    for k, answer in zip(asked, answers):
        for (i, _), found in zip(others[k], answer):
            if found is not None:
                balance[i] += found[0]
                held[i] += found[1]
    movements = []
    for (_, row), total, on_hold in zip(page, balance, held):
        movement = {**row, "balance": format_money(total), "held": format_money(on_hold),
                    "available": format_money(total - on_hold)}
        del movement["own_balance"]
        movements.append(movement)
    return movements


async def _call(client, shard: int, kind: str, *args):
    return calls.decode_outcome(await client.call(shard, calls.encode_history(kind, *args)))

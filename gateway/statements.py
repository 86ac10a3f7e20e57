"""A bettor's account statement and cleared orders, read from the Postgres read model
(Betfair's getAccountStatement and listClearedOrders), for the `statement` and `cleared` ops and
their HTTP endpoints.

Statement: every change of the user's wallets (persistence/migrations/0004_statements.sql,
folded by persistence/fold.py), newest or oldest first, each with the wallet right after it, so
the running balance is the exchange's own figure, never a sum recomputed here.

Cleared orders: the user's bets (orders with a matched part) in settled and voided markets,
with each bet's profit, plus one line per market of the page with what settlement actually
moved: the market's profit, the commission charged on it (commission is charged on the net
winnings of a market, never per bet) and the net. A bet's profit is exact except for dead-heat
and pool shares, which are rounded down per bet while settlement rounds the user's market total
once: the market line is what was paid.

As of: the persister lags the engine. A request first learns the journal seq the engine had
reached when it arrived (everything the caller was told about by then), then reads, in one
REPEATABLE READ snapshot, once Postgres has folded that seq, waiting for it up to
`statement_wait_ms_max`; past it the answer is READ_MODEL_BEHIND and nothing is read. The
reply's `as_of_seq` says which seq the snapshot covers (at least the one waited for).
"""

import asyncio
from dataclasses import dataclass
from fractions import Fraction

import orjson

from engine.money import average_price, format_money, format_odds
from engine.rejections import Code
from persistence.readmodel import POOL_BET

PAGE_MAX = 500  # movements or bets per page (the request models' `limit` bound)
POLL_FIRST_S = 0.005  # waiting for the persister: first pause, doubled up to POLL_MAX_S
POLL_MAX_S = 0.05
STATEMENT_CURSOR = r"^s[0-9]{1,18}\.[A-Z]{3}$"  # s<seq>.<currency> of the last movement
CLEARED_CURSOR = r"^c[0-9]{1,18}\.[0-9]{1,18}$"  # c<settled seq>.<placed seq> of the last bet
TS_MAX_MS = 9_999_999_999_999  # from_ts / to_ts bound: 13 digits of ms, past the year 2286


class HistoryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Page:
    """Which part of a user's history: filters (None: any), order and position."""

    user: str
    currency: str | None = None
    market: str | None = None
    from_ts: int | None = None  # ms since the epoch, inclusive
    to_ts: int | None = None  # exclusive
    newest_first: bool = True
    cursor: str | None = None  # the `next` of the previous page
    limit: int = 50
    # Several shards' histories merged (gateway/split/history.py): this shard's page starts
    # after (newest first: before) `from_place` = [ts, whether rows at that very ts come too],
    # where another shard's cursor is in the order of every shard's rows; and its rows carry
    # what the merge needs.
    from_place: tuple[int, bool] | None = None
    merged: bool = False

    def window(self) -> tuple[int, int]:
        return (0 if self.from_ts is None else self.from_ts,
                TS_MAX_MS + 1 if self.to_ts is None else self.to_ts)


def checked(settings, req) -> None:
    """A `statement` or `cleared` request's checks beyond its model's; raises HistoryError."""
    if req.currency is not None and settings.unsupported(req.currency):
        raise HistoryError(Code.BAD_REQUEST, settings.unsupported(req.currency))
    if req.from_ts is not None and req.to_ts is not None and req.from_ts > req.to_ts:
        raise HistoryError(Code.BAD_REQUEST, "from_ts is after to_ts")


async def history(exchange, user: str, req, from_place=None, merged: bool = False) -> dict:
    """The answer to a `statement` or `cleared` request (gateway/protocol.py) about `user`,
    as of the seq the exchange had reached when it arrived; raises HistoryError. (`from_place`
    and `merged`: a shard's part of a merged history, see Page.)"""
    settings = exchange.settings
    checked(settings, req)
    page = Page(user, req.currency, req.market, req.from_ts, req.to_ts, req.sort == "newest",
                req.cursor, req.limit, None if from_place is None else tuple(from_place), merged)
    target_seq = await exchange.read(_journaled_seq)
    read = statement if req.op == "statement" else cleared
    return await read(exchange.pg_pool, page, target_seq, settings.statement_wait_ms_max / 1000)


def _journaled_seq(engine) -> int:
    return engine.last_seq  # read between batches: the last journaled command


# -- reading at a seq -----------------------------------------------------------------------------


async def as_of(pool, target_seq: int, wait_s: float, read) -> tuple[int, dict]:
    """(persisted seq, await read(conn)) in one read-only snapshot that has folded
    `target_seq`, waiting up to `wait_s` for the persister to get there."""
    if pool is None:
        raise HistoryError(Code.INTERNAL, "no Postgres read model configured")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    pause = POLL_FIRST_S
    while True:
        async with pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                seq = await conn.fetchval("SELECT seq FROM persisted")
                if seq >= target_seq:
                    return seq, await read(conn)
        left = deadline - loop.time()
        if left <= 0:
            raise HistoryError(Code.READ_MODEL_BEHIND,
                               f"the history is at seq {seq}, the exchange at {target_seq}, "
                               f"still after {wait_s:g} s: try again shortly")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, POLL_MAX_S)


async def _check_market(conn, page: Page) -> None:
    if page.market is not None and not await conn.fetchval(
            "SELECT 1 FROM markets WHERE market = $1", page.market):
        raise HistoryError(Code.UNKNOWN_MARKET, f"no market {page.market!r}")


def _after(page: Page, tie=str) -> tuple:
    """The position a cursor names: (seq, tie-break), or (None, None) from the start."""
    if page.cursor is None:
        return None, None
    seq, second = page.cursor[1:].split(".")
    return int(seq), tie(second)


async def _rows(conn, sql: str, page: Page, after: tuple, *more) -> tuple[list, bool]:
    """The page's rows after `after` (one more fetched, to know whether more follow); `more`:
    the query's own parameters after the common ones."""
    await _check_market(conn, page)
    cmp, order = ("<", "DESC") if page.newest_first else (">", "ASC")
    place_ts, at_place = page.from_place or (None, False)
    rows = await conn.fetch(sql.format(cmp=cmp, dir=order,
                                       own=OWN_BALANCE if page.merged else "NULL::bigint"),
                            page.user, page.currency, page.market, *page.window(), *after,
                            page.limit + 1, place_ts, at_place, *more)
    return rows[:page.limit], len(rows) > page.limit


# $9/$10: from_place (Page), the same in both queries
_FROM_PLACE = "($9::bigint IS NULL OR {ts} {cmp} $9 OR ($10::bool AND {ts} = $9))"


# -- the statement --------------------------------------------------------------------------------

# $1 user, $2 currency, $3 market, $4/$5 ts window, $6/$7 cursor (seq, currency), $8 limit + 1,
# $9/$10 from_place, $11 merged (transfers between the bettor's shards left out: they change
# no merged balance). held_change: this row's held minus the wallet's previous row's (0 before
# the first); own_balance (merged): the balance less what this shard's transfers moved.
_STATEMENT_SQL = """
SELECT mv.seq, mv.ts_ms, mv.currency, mv.cause, coalesce(mv.market, o.market) AS market,
       mv.order_id, mv.ref, mv.amount_minor, mv.commission_minor, mv.balance_minor,
       mv.held_minor, {own} AS own_balance,
       mv.held_minor - coalesce((SELECT p.held_minor FROM wallet_movements p
                                 WHERE p.user_id = mv.user_id AND p.currency = mv.currency
                                   AND p.seq < mv.seq
                                 ORDER BY p.seq DESC LIMIT 1), 0) AS held_change
FROM wallet_movements mv
LEFT JOIN orders o ON mv.market IS NULL AND o.order_id = mv.order_id
WHERE mv.user_id = $1
  AND ($2::text IS NULL OR mv.currency = $2)
  AND ($3::text IS NULL OR coalesce(mv.market, o.market) = $3)
  AND mv.ts_ms >= $4 AND mv.ts_ms < $5
  AND ($6::bigint IS NULL OR (mv.seq, mv.currency) {cmp} ($6, $7::text))
  AND """ + _FROM_PLACE.format(ts="mv.ts_ms", cmp="{cmp}") + """
  AND NOT ($11::bool AND mv.cause IN ('transfer_out', 'transfer_in'))
ORDER BY mv.seq {dir}, mv.currency {dir}
LIMIT $8"""

# a movement `mv`'s balance less what the transfers of its wallet up to it moved (between the
# bettor's shards: gateway/split/history.py)
OWN_BALANCE = """(mv.balance_minor - coalesce(
    (SELECT sum(t.amount_minor) FROM wallet_movements t
     WHERE t.user_id = mv.user_id AND t.currency = mv.currency AND t.seq <= mv.seq
       AND t.cause IN ('transfer_out', 'transfer_in')), 0))::bigint"""


def _movement(r) -> dict:
    cause, held_change = r["cause"], r["held_change"]
    if cause == "trade":  # an order placed, matched, cancelled or lapsed moved the hold
        cause = "hold" if held_change > 0 else "release"
    balance, held = r["balance_minor"], r["held_minor"]
    return {"seq": r["seq"], "ts": r["ts_ms"], "currency": r["currency"], "kind": cause,
            "amount": format_money(r["amount_minor"]),
            "commission": format_money(r["commission_minor"]),
            "held_change": format_money(held_change), "balance": format_money(balance),
            "held": format_money(held), "available": format_money(balance - held),
            "market": r["market"], "order": r["order_id"], "ref": r["ref"],
            **({} if r["own_balance"] is None else {"own_balance": r["own_balance"]})}


async def statement(pool, page: Page, target_seq: int, wait_s: float) -> dict:
    """{"as_of_seq", "movements", "next"}: one page of the user's wallet movements."""
    async def read(conn) -> dict:
        rows, more = await _rows(conn, _STATEMENT_SQL, page, _after(page), page.merged)
        last = rows[-1] if rows else None
        return {"movements": [_movement(r) for r in rows],
                "next": f"s{last['seq']}.{last['currency']}" if more else None}

    as_of_seq, body = await as_of(pool, target_seq, wait_s, read)
    return {"as_of_seq": as_of_seq, **body}


# -- cleared orders -------------------------------------------------------------------------------

# $1 user, $2 currency, $3 market, $4/$5 settled ts window, $6/$7 cursor (settled seq, placed
# seq), $8 limit + 1. A command places at most one order of a user, so placed_seq is a key.
_CLEARED_SQL = """
SELECT o.order_id, o.market, o.selection, o.side, o.price, o.size_minor, o.matched_minor,
       o.cancelled_minor, o.lapsed_minor, o.matched_value, o.matched_win_minor, o.persistence,
       o.ref, o.placed_seq, o.placed_ts_ms, f.seq AS settled_seq, f.ts_ms AS settled_ts_ms,
       f.outcome, f.winners, f.dead_heat, m.currency, m.type, m.take_bp, sel.removed_seq
FROM orders o
JOIN markets m ON m.market = o.market
JOIN selections sel ON sel.market = o.market AND sel.selection = o.selection
JOIN LATERAL (SELECT s.seq, s.ts_ms, s.outcome, s.winners, s.dead_heat FROM settlements s
              WHERE s.market = o.market ORDER BY s.seq DESC LIMIT 1) f ON true
WHERE o.user_id = $1 AND o.matched_minor > 0
  AND ($2::text IS NULL OR m.currency = $2)
  AND ($3::text IS NULL OR o.market = $3)
  AND f.ts_ms >= $4 AND f.ts_ms < $5
  AND ($6::bigint IS NULL OR (f.seq, o.placed_seq) {cmp} ($6, $7::bigint))
  AND """ + _FROM_PLACE.format(ts="f.ts_ms", cmp="{cmp}") + """
ORDER BY f.seq {dir}, o.placed_seq {dir}
LIMIT $8"""

# What settlement moved for the user in each market: the P&L and the commission on it.
_MARKET_LINES_SQL = """
SELECT m.market, m.event, m.name, m.type, m.currency, f.outcome, f.seq, f.ts_ms, f.winners,
       coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'settlement'), 0)::bigint AS profit,
       -coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'commission'), 0)::bigint
           AS commission
FROM markets m
JOIN LATERAL (SELECT s.seq, s.ts_ms, s.outcome, s.winners FROM settlements s
              WHERE s.market = m.market ORDER BY s.seq DESC LIMIT 1) f ON true
LEFT JOIN ledger_entries l ON l.account = $1 AND l.currency = m.currency
                          AND l.ref = m.market AND l.kind IN ('settlement', 'commission')
WHERE m.market = any($2::text[])
GROUP BY m.market, f.outcome, f.seq, f.ts_ms, f.winners"""

_POOL_STAKES_SQL = """
SELECT o.market, o.selection, sum(o.matched_minor)::bigint AS staked FROM orders o
WHERE o.market = any($1::text[]) AND """ + POOL_BET + """ GROUP BY o.market, o.selection"""


def factors(winners: list[str], dead_heat: list) -> dict[str, Fraction]:
    """Each winner's share of a win, as settlement weighs it: the dead-heat factors given, or
    an equal share of the place among several winners (engine.Engine._dead_heat_factors)."""
    if dead_heat:
        return {sid: Fraction(num, den) for sid, num, den in dead_heat}
    return {sid: Fraction(1, len(winners)) for sid in winners}


def exchange_bet(is_back: bool, matched: int, matched_win: int, factor: Fraction) -> int:
    """A matched exchange bet's profit: a back wins `factor` of its win amount and loses the
    rest of its stake; a lay the other way round. Rounded down (only dead heats need it)."""
    backer = factor * matched_win - (1 - factor) * matched
    exact = backer if is_back else -backer
    return exact.numerator // exact.denominator


def pool_bet(stake: int, selection: str, shares: dict[str, Fraction], staked: dict[str, int],
             take_bp: int) -> int | None:
    """A pool bet's profit: its part of the pool after the take, shared among the stakes on the
    winners (weighted by their factors), less its stake, rounded down; None when nobody backed a
    winner and every stake was handed back."""
    backed = {sid: f for sid, f in shares.items() if staked.get(sid)}
    if not backed:
        return None
    if selection not in backed:
        return -stake
    pool = sum(staked.values())
    net = pool - pool * take_bp // 10000
    share = Fraction(stake * net, staked[selection]) * backed[selection] / sum(backed.values())
    return share.numerator // share.denominator - stake


def _bet(r, stakes: dict) -> dict:
    # a voided market's bets are void, and so are a non-runner's (stakes back, nothing paid)
    voided = r["outcome"] == "voided" or r["removed_seq"] is not None
    shares = {} if voided else factors(r["winners"], orjson.loads(r["dead_heat"]))
    factor = shares.get(r["selection"], Fraction(0))
    is_back = r["side"] == "back"
    if voided:
        profit, result = 0, "void"
    elif r["type"] == "pool":
        profit = pool_bet(r["matched_minor"], r["selection"], shares,
                          stakes.get(r["market"], {}), r["take_bp"])
        result = "void" if profit is None else _result(factor, True)
        profit = profit or 0
    else:
        profit = exchange_bet(is_back, r["matched_minor"], r["matched_win_minor"], factor)
        result = _result(factor, is_back)
    return {"order": r["order_id"], "market": r["market"], "selection": r["selection"],
            "side": r["side"], "price": format_odds(r["price"]),
            "size": format_money(r["size_minor"]), "matched": format_money(r["matched_minor"]),
            "avg_price_matched": format_odds(average_price(r["matched_value"],
                                                           r["matched_minor"])),
            "cancelled": format_money(r["cancelled_minor"]),
            "lapsed": format_money(r["lapsed_minor"]), "persistence": r["persistence"],
            "ref": r["ref"] or None, "placed_seq": r["placed_seq"], "placed_ts": r["placed_ts_ms"],
            "currency": r["currency"], "result": result, "profit": format_money(profit),
            "settled_seq": r["settled_seq"], "settled_ts": r["settled_ts_ms"]}


def _result(factor: Fraction, is_back: bool) -> str:
    if 0 < factor < 1:
        return "dead_heat"
    return "won" if (factor == 1) == is_back else "lost"


def _market_line(r) -> dict:
    profit, commission = r["profit"], r["commission"]
    return {"market": r["market"], "event": r["event"], "name": r["name"], "type": r["type"],
            "currency": r["currency"], "outcome": r["outcome"], "winners": list(r["winners"]),
            "settled_seq": r["seq"], "settled_ts": r["ts_ms"], "profit": format_money(profit),
            "commission": format_money(commission), "net": format_money(profit - commission)}


async def cleared(pool, page: Page, target_seq: int, wait_s: float) -> dict:
    """{"as_of_seq", "orders", "markets", "next"}: one page of the user's settled and voided
    bets, and a line for each market among them."""
    async def read(conn) -> dict:
        rows, more = await _rows(conn, _CLEARED_SQL, page, _after(page, int))
        markets = list(dict.fromkeys(r["market"] for r in rows))
        pools = list(dict.fromkeys(r["market"] for r in rows if r["type"] == "pool"))
        stakes: dict = {}
        if pools:
            for s in await conn.fetch(_POOL_STAKES_SQL, pools):
                stakes.setdefault(s["market"], {})[s["selection"]] = s["staked"]
        lines = {r["market"]: r for r in (await conn.fetch(_MARKET_LINES_SQL, page.user, markets)
                                          if markets else [])}
        last = rows[-1] if rows else None
        return {"orders": [_bet(r, stakes) for r in rows],
                "markets": [_market_line(lines[m]) for m in markets],  # in the page's order
                "next": f"c{last['settled_seq']}.{last['placed_seq']}" if more else None}

    as_of_seq, body = await as_of(pool, target_seq, wait_s, read)
    return {"as_of_seq": as_of_seq, **body}


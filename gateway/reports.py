"""Operator reports over the persisted read model (Postgres), never engine memory.

`GET /admin/reports/ggr?from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|csv&include_seeded=false`
(operator or admin JWT as `Authorization: Bearer`): GGR and NGR per market, per day and per
currency, on a settlement basis (a market counts on the UTC day it was settled or voided), with
matched volume, commission, bettor counts and settlement times. docs/reports.md defines every
figure; in short, for the customers C (users that are neither system accounts nor, by default,
seeded):

    house_pnl   = -sum(settlement ledger entries of C on the market)
    commission  = -sum(commission ledger entries of C on the market)
    GGR         = house_pnl + commission
    NGR         = GGR - sum(NGR_DEDUCTION_KINDS ledger entries credited to C on the market)

Because every ledger movement sums to zero, with include_seeded=true GGR equals what the
house and commission accounts booked on the market, to the cent (the tests check it).

The report reads one consistent snapshot (REPEATABLE READ) and says which journal seq it
covers (`persisted_seq`): the persister may lag the engine, never the other way round. With
several shards, each shard's read model gives its part in a snapshot of its own and the gateway
merges them (gateway/split/reports.py).
"""

import csv
import io
from datetime import date, datetime, timedelta, timezone

import orjson
from aiohttp import web

from engine.engine import SYSTEM_ACCOUNTS
from engine.money import format_money
from engine.rejections import Code
from persistence.readmodel import POOL_BET

from .auth import AuthError, verify

REPORT_DAYS_MAX = 366
# Ledger kinds that turn GGR into NGR when credited to a customer (refunds of the operator's
# own revenue). The engine books none yet, so NGR = GGR until it does; the column is there so
# consumers need no change then.
NGR_DEDUCTION_KINDS = ("bonus", "adjustment")
FORMATS = ("json", "csv")
CSV_COLUMNS = ("level", "day", "currency", "market", "name", "type", "outcome", "settled_at",
               "markets", "bettors", "matched", "commission", "house_pnl", "ggr", "deductions",
               "ngr")
_MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)

# $1 from (ms, inclusive), $2 to (ms, exclusive), $3 include_seeded, $4 system accounts,
# $5 NGR deduction kinds. The markets in the report and every customer fact about them.
_FACTS = """
WITH final AS (
    -- the market's last settlement row: settled or voided
    SELECT DISTINCT ON (market) market, outcome, ts_ms
    FROM settlements
    ORDER BY market, seq DESC
), chosen AS (
    SELECT f.market, f.outcome, f.ts_ms, m.name, m.type, m.currency,
           (DATE '1970-01-01' + (f.ts_ms / 86400000)::integer)::text AS day  -- UTC, exact
    FROM final f JOIN markets m USING (market)
    WHERE f.ts_ms >= $1 AND f.ts_ms < $2
), excluded AS (
    SELECT unnest($4::text[]) AS user_id
    UNION
    SELECT user_id FROM users WHERE seeded AND NOT $3::boolean
), money AS (
    SELECT c.market,
           -coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'settlement'), 0) AS house_pnl,
           -coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'commission'), 0) AS commission,
           coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = ANY($5::text[])), 0) AS deductions
    FROM chosen c
    JOIN ledger_entries l ON l.ref = c.market AND l.currency = c.currency
    WHERE (l.kind IN ('settlement', 'commission') OR l.kind = ANY($5::text[]))
      AND NOT EXISTS (SELECT 1 FROM excluded x WHERE x.user_id = l.account)
    GROUP BY c.market
), volume AS (
    -- a fill counts once, when a customer is on at least one side of it
    SELECT f.market, f.size_minor AS matched
    FROM fills f JOIN chosen USING (market)
    WHERE NOT EXISTS (SELECT 1 FROM excluded x WHERE x.user_id = f.taker_user)
       OR NOT EXISTS (SELECT 1 FROM excluded x WHERE x.user_id = f.maker_user)
    UNION ALL
    -- pool stakes are matched into the pool, not against another order
    SELECT o.market, o.matched_minor
    FROM orders o JOIN chosen c USING (market)
    WHERE c.type = 'pool' AND """ + POOL_BET + """
      AND NOT EXISTS (SELECT 1 FROM excluded x WHERE x.user_id = o.user_id)
), bettors AS (
    SELECT DISTINCT s.market, s.user_id
    FROM (
        SELECT f.market, f.taker_user AS user_id FROM fills f JOIN chosen USING (market)
        UNION ALL
        SELECT f.market, f.maker_user FROM fills f JOIN chosen USING (market)
        UNION ALL
        SELECT o.market, o.user_id
        FROM orders o JOIN chosen c USING (market)
        WHERE c.type = 'pool' AND """ + POOL_BET + """
    ) s
    WHERE NOT EXISTS (SELECT 1 FROM excluded x WHERE x.user_id = s.user_id)
), facts AS (
    SELECT market, 1 AS markets, NULL::text AS user_id, 0::bigint AS matched,
           0::bigint AS house_pnl, 0::bigint AS commission, 0::bigint AS deductions
    FROM chosen
    UNION ALL
    SELECT market, 0, NULL, 0, house_pnl, commission, deductions FROM money
    UNION ALL
    SELECT market, 0, NULL, matched, 0, 0, 0 FROM volume
    UNION ALL
    SELECT market, 0, user_id, 0, 0, 0, 0 FROM bettors
)
"""
# One row per market, per (currency, day) and per currency, in that nesting order: each day's
# markets, then the day's total; each currency's days, then its total.
GGR_SQL = _FACTS + """
SELECT GROUPING(c.day, c.market) AS grain, c.currency, c.day, c.market,
       min(c.name) AS name, min(c.type) AS type, min(c.outcome) AS outcome,
       min(c.ts_ms) AS ts_ms, sum(fa.markets)::bigint AS markets,
       count(DISTINCT fa.user_id) AS bettors, sum(fa.matched)::bigint AS matched,
       sum(fa.commission)::bigint AS commission, sum(fa.house_pnl)::bigint AS house_pnl,
       sum(fa.deductions)::bigint AS deductions
FROM facts fa JOIN chosen c USING (market)
GROUP BY GROUPING SETS ((c.currency, c.day, c.market), (c.currency, c.day), (c.currency))
ORDER BY c.currency, c.day NULLS LAST, c.market NULLS LAST
"""
# The distinct bettors of each (currency, day): what a day's or a currency's `bettors` counts,
# for totals over several shards (gateway/split/reports.py), where counts cannot be added.
BETTORS_SQL = _FACTS + """
SELECT c.currency, c.day, array_agg(DISTINCT b.user_id ORDER BY b.user_id) AS users
FROM bettors b JOIN chosen c USING (market)
GROUP BY c.currency, c.day
"""

_LEVELS = {0: "market", 1: "day", 3: "currency"}

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_MONEY = {"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,12})\.[0-9]{2}$"}
_ROW = {"type": "object", "properties": {
    "level": {"enum": ["market", "day", "currency"]}, "day": {"type": ["string", "null"]},
    "currency": {"type": "string"}, "market": {"type": "string"}, "name": {"type": "string"},
    "type": {"enum": ["exchange", "pool"]}, "outcome": {"enum": ["settled", "voided"]},
    "settled_at": {"type": "string", "format": "date-time"},
    "markets": {"type": "integer"}, "bettors": {"type": "integer"}, "matched": _MONEY,
    "commission": _MONEY, "house_pnl": _MONEY, "ggr": _MONEY, "deductions": _MONEY,
    "ngr": _MONEY}}
# This route's part of the OpenAPI description (gateway/openapi.py merges it into PATHS).
OPENAPI_PATHS = {"/admin/reports/ggr": {"get": {
    "summary": "GGR and NGR per market, day and currency, from the Postgres read model "
               "(definitions: docs/reports.md)",
    "operationId": "ggrReport", "tags": ["admin"], "security": [{"bearer": []}],
    "x-roles": ["operator", "admin"],
    "parameters": [
        {"name": "from", "in": "query", "required": True,
         "schema": {"type": "string", "format": "date"}, "description": "first UTC day"},
        {"name": "to", "in": "query", "required": True,
         "schema": {"type": "string", "format": "date"}, "description": "last UTC day"},
        {"name": "format", "in": "query", "schema": {"enum": list(FORMATS), "default": "json"}},
        {"name": "include_seeded", "in": "query",
         "schema": {"type": "boolean", "default": False},
         "description": "count seeded (bot) accounts as customers"},
    ],
    "responses": {
        "200": {"description": "the report; header X-Backlay-Persisted-Seq: the journal seq "
                               "it covers (with several shards, shard 0's; then also "
                               "X-Backlay-Persisted-Seqs: every shard's, as "
                               "`0=<seq>,1=<seq>`)",
                "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "from": {"type": "string"}, "to": {"type": "string"},
                    "timezone": {"const": "UTC"}, "basis": {"const": "settlement"},
                    "include_seeded": {"type": "boolean"}, "persisted_seq": {"type": "integer"},
                    "persisted_seqs": {
                        "type": "object", "additionalProperties": {"type": "integer"},
                        "description": "the split shape only (docs/scale-out.md): each shard's "
                                       "persisted seq, by shard number; persisted_seq is "
                                       "shard 0's"},
                    "markets": {"type": "array", "items": _ROW},
                    "days": {"type": "array", "items": _ROW},
                    "currencies": {"type": "array", "items": _ROW}}}},
                    "text/csv": {"schema": {"type": "string"}}}},
        "400": {"description": "BAD_REQUEST: a missing or malformed parameter", **_ERROR},
        "401": {"description": "UNAUTHENTICATED: no, malformed, expired or wrongly signed "
                               "bearer token", **_ERROR},
        "403": {"description": "FORBIDDEN: neither operator nor admin", **_ERROR},
    },
}}}


class ReportError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _refuse(err: ReportError) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="backlay"'} if err.status == 401 else None
    return web.Response(body=orjson.dumps({"code": err.code, "message": err.message}),
                        status=err.status, headers=headers, content_type="application/json")


def _authorize(request: web.Request, settings) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ReportError(401, Code.UNAUTHENTICATED,
                          "an Authorization: Bearer <JWT> header is required")
    try:
        identity = verify(token.strip(), settings.jwt_secret, settings.jwt_public_key)
    except AuthError as exc:
        raise ReportError(401, Code.UNAUTHENTICATED, str(exc)) from None
    if not identity.can("operator"):  # admin can do anything an operator can
        raise ReportError(403, Code.FORBIDDEN, "needs role operator or admin")


def _day(query, name: str) -> date:
    text = query.get(name)
    if text is None:
        raise ReportError(400, Code.BAD_REQUEST, f"{name}=YYYY-MM-DD is required")
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(400, Code.BAD_REQUEST, f"{name} must be a date YYYY-MM-DD, "
                          f"got {text!r}") from None


def _flag(query, name: str, default: bool) -> bool:
    text = query.get(name)
    if text is None:
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ReportError(400, Code.BAD_REQUEST, f"{name} must be true or false, got {text!r}")


def _ms(day: date) -> int:
    return (day - _EPOCH).days * _MS_PER_DAY


def _iso(ts_ms: int) -> str:
    at = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _row(r) -> dict:
    level = _LEVELS[r["grain"]]
    ggr = r["house_pnl"] + r["commission"]
    row = {"level": level, "day": r["day"] if level != "currency" else None,
           "currency": r["currency"]}
    if level == "market":
        row |= {"market": r["market"], "name": r["name"], "type": r["type"],
                "outcome": r["outcome"], "settled_at": _iso(r["ts_ms"])}
    row |= {"markets": r["markets"], "bettors": r["bettors"],
            "matched": format_money(r["matched"]), "commission": format_money(r["commission"]),
            "house_pnl": format_money(r["house_pnl"]), "ggr": format_money(ggr),
            "deductions": format_money(r["deductions"]),
            "ngr": format_money(ggr - r["deductions"])}
    return row


def build_report(day_from: date, day_to: date, include_seeded: bool, persisted_seq: int,
                 records) -> dict:
    """The GGR report as plain data, from its rows as GGR_SQL gives them (in that order)."""
    rows = [_row(r) for r in records]
    return {"from": day_from.isoformat(), "to": day_to.isoformat(), "timezone": "UTC",
            "basis": "settlement", "include_seeded": include_seeded,
            "persisted_seq": persisted_seq,
            "markets": [r for r in rows if r["level"] == "market"],
            "days": [r for r in rows if r["level"] == "day"],
            "currencies": [r for r in rows if r["level"] == "currency"],
            "rows": rows}


def _args(day_from: date, day_to: date, include_seeded: bool, seeded=()) -> tuple:
    return (_ms(day_from), _ms(day_to + timedelta(days=1)), include_seeded,
            [*SYSTEM_ACCOUNTS, *seeded], list(NGR_DEDUCTION_KINDS))


async def ggr_report(pool, day_from: date, day_to: date, include_seeded: bool) -> dict:
    """The GGR report as plain data (see the module docstring and docs/reports.md)."""
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            persisted_seq = await conn.fetchval("SELECT seq FROM persisted")
            records = await conn.fetch(GGR_SQL, *_args(day_from, day_to, include_seeded))
    return build_report(day_from, day_to, include_seeded, persisted_seq, records)


async def ggr_part(pool, day_from: date, day_to: date, include_seeded: bool,
                   seeded: list[str]) -> dict:
    """This read model's part of a report over several (gateway/split/reports.py), read in one
    snapshot: its persisted seq, its market rows (as GGR_SQL gives them, `ts_ms` for
    `settled_at`) and the distinct bettors of each (currency, day): [currency, day, [user]].
    `seeded`: users left out as well as this read model's seeded ones."""
    args = _args(day_from, day_to, include_seeded, seeded)
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            persisted_seq = await conn.fetchval("SELECT seq FROM persisted")
            records = await conn.fetch(GGR_SQL, *args)
            bettors = await conn.fetch(BETTORS_SQL, *args)
    return {"persisted_seq": persisted_seq,
            "markets": [dict(r) for r in records if _LEVELS[r["grain"]] == "market"],
            "bettors": [[r["currency"], r["day"], r["users"]] for r in bettors]}


def to_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in report["rows"]:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def add_report_routes(app: web.Application, exchange) -> None:
    """GET /admin/reports/ggr on `app`, reading `exchange.pg_pool` with
    `exchange.settings` for auth."""

    async def ggr(request: web.Request) -> web.Response:
        try:
            _authorize(request, exchange.settings)
            query = request.query
            day_from, day_to = _day(query, "from"), _day(query, "to")
            if day_to < day_from:
                raise ReportError(400, Code.BAD_REQUEST, "to is before from")
            if (day_to - day_from).days + 1 > REPORT_DAYS_MAX:
                raise ReportError(400, Code.BAD_REQUEST,
                                  f"at most {REPORT_DAYS_MAX} days per report")
            fmt = query.get("format", "json")
            if fmt not in FORMATS:
                raise ReportError(400, Code.BAD_REQUEST, f"format must be one of {FORMATS}")
            include_seeded = _flag(query, "include_seeded", False)
            if exchange.pg_pool is None:
                raise ReportError(503, Code.INTERNAL, "no Postgres read model configured")
        except ReportError as err:
            return _refuse(err)
        # the split shape's exchange merges every shard's (gateway/split/remote.py)
        over_shards = getattr(exchange, "ggr_report", None)
        report = await (over_shards(day_from, day_to, include_seeded) if over_shards
                        else ggr_report(exchange.pg_pool, day_from, day_to, include_seeded))
        headers = {"X-Backlay-Persisted-Seq": str(report["persisted_seq"]),
                   "Cache-Control": "no-store"}
        if "persisted_seqs" in report:
            headers["X-Backlay-Persisted-Seqs"] = ",".join(
                f"{shard}={seq}" for shard, seq in report["persisted_seqs"].items())
        if fmt == "csv":
            headers["Content-Disposition"] = (f'attachment; filename="ggr_{day_from}_{day_to}'
                                              f'{"_with_seeded" if include_seeded else ""}.csv"')
            return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8",
                                headers=headers)
        del report["rows"]
        return web.Response(body=orjson.dumps(report), content_type="application/json",
                            headers=headers)

    app.router.add_get("/admin/reports/ggr", ggr)

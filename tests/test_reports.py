"""The GGR report (gateway/reports.py, docs/reports.md) over the real Postgres read model.

A known trading history is run through a real Engine, journaled to real Redis and folded into
Postgres by the real persister; the report is then read over HTTP. Every expected figure below
is worked out by hand in the comments next to the bets (money in minor units: 1000 = 10.00).
"""

import csv
import dataclasses
import io
from datetime import datetime, timezone
from types import SimpleNamespace

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from engine import commands as c
from engine import events as ev
from engine.engine import Engine
from engine.money import format_money
from gateway.auth import make_token
from gateway.reports import add_report_routes
from gateway.settings import Settings
from persistence.journal import Journal
from persistence.persister import Persister

JWT_SECRET = "test-reports-jwt-secret-of-32-bytes-or-more"


def at(text: str) -> int:
    """'2024-03-01T12:00:00.000' (UTC) -> ms since the epoch."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def back(user, market, selection, price, size_minor):
    return c.PlaceOrder(user=user, market=market, selection=selection, side="back",
                        price=price, size_minor=size_minor)


def lay(user, market, selection, price, size_minor):
    return c.PlaceOrder(user=user, market=market, selection=selection, side="lay",
                        price=price, size_minor=size_minor)


def exchange_market(market, *selections, currency="BDT"):
    return [c.CreateMarket(market=market, event="e1", name=f"Market {market}",
                           currency=currency, selections=tuple((s, s.upper()) for s in selections)),
            c.SetMarketStatus(market=market, status="open")]


def history() -> list[tuple[int, c.Command]]:
    """(ts_ms, command) in time order. u1 and u2 are customers, bot1 is a seeded bot; every
    market has the default 5% commission (exchange) or 10% take (pool)."""
    setup = [
        *[c.Deposit(user=u, currency="BDT", amount_minor=100_000, ref=f"d-{u}")
          for u in ("u1", "u2", "bot1")],
        *[c.Deposit(user=u, currency="USD", amount_minor=10_000, ref=f"usd-{u}")
          for u in ("u1", "u2")],
        # mA: u1 backs h 10.00 @ 3.00 against u2; bot1 backs a 20.00 @ 2.00 against u2.
        # h wins: u1 +20.00 (commission 1.00), u2 -20.00 + 20.00 = 0, bot1 -20.00.
        *exchange_market("mA", "h", "a"),
        back("u1", "mA", "h", 300, 1_000), lay("u2", "mA", "h", 300, 1_000),
        back("bot1", "mA", "a", 200, 2_000), lay("u2", "mA", "a", 200, 2_000),
        # mB: the house quotes h at 2.00 (fair 2.10/1.90, 5% margin); u1 backs 10.00 and bot1
        # 5.00 against it. a wins: u1 -10.00, bot1 -5.00, the house +15.00.
        *exchange_market("mB", "h", "a"),
        c.SetMarketLimits(market="mB", max_liability_minor=100_000),
        c.SetPrices(market="mB", prices=(("h", 210), ("a", 190)), margin_bp=500),
        back("u1", "mB", "h", 200, 1_000), back("bot1", "mB", "h", 200, 500),
        # mC: u1 backs x 10.00 @ 2.50 against u2; x, y and z dead-heat (1/3 each). u1: a third
        # of the stake wins 1.5 x 3.33.. = 5.00, two thirds lose 6.666..: -1.666.. floored to
        # -1.67; u2 +1.666.. floored to +1.66 (commission 5% of 1.66 = 0.083 -> 0.08); the
        # house gets the 0.01 breakage.
        *exchange_market("mC", "w", "x", "y", "z"),
        back("u1", "mC", "x", 250, 1_000), lay("u2", "mC", "x", 250, 1_000),
        # mU (USD): u1 backs h 5.00 @ 4.00 against u2; h wins: u1 +15.00 (commission 0.75).
        *exchange_market("mU", "h", "a", currency="USD"),
        back("u1", "mU", "h", 400, 500), lay("u2", "mU", "h", 400, 500),
        # mP (pool, 10% take): u1 30.00 and bot1 10.00 on p1, u2 10.00 on p2; p1 wins.
        # Pool 50.00, take 5.00, 45.00 shared by the 40.00 on p1: u1 33.75 (+3.75), bot1 11.25
        # (+1.25), u2 -10.00; the house +5.00.
        c.CreateMarket(market="mP", event="e2", name="Market mP", type="pool",
                       selections=(("p1", "P1"), ("p2", "P2"))),
        c.SetMarketStatus(market="mP", status="open"),
        back("u1", "mP", "p1", 200, 3_000), back("bot1", "mP", "p1", 200, 1_000),
        back("u2", "mP", "p2", 200, 1_000),
        # mV: u1 backs 10.00 against u2, then the market is voided: no money moves.
        *exchange_market("mV", "h", "a"),
        back("u1", "mV", "h", 200, 1_000), lay("u2", "mV", "h", 200, 1_000),
        # mZ: settled on 3 March, outside the reported days.
        *exchange_market("mZ", "h", "a"),
        back("u1", "mZ", "h", 200, 1_000), lay("u2", "mZ", "h", 200, 1_000),
        # mO: still open, never in a settlement report.
        *exchange_market("mO", "h", "a"),
        back("u1", "mO", "h", 200, 1_000), lay("u2", "mO", "h", 200, 1_000),
    ]
    start = at("2024-03-01T08:00:00")
    timeline = [(start + i * 1_000, cmd) for i, cmd in enumerate(setup)]
    return timeline + [
        (at("2024-03-01T12:00:00.000"), c.SettleMarket(market="mA", winners=("h",))),
        (at("2024-03-01T12:30:00.000"), c.SettleMarket(market="mB", winners=("a",))),
        (at("2024-03-01T13:00:00.000"), c.SettleMarket(market="mC", winners=("x", "y", "z"))),
        (at("2024-03-01T23:59:59.999"), c.SettleMarket(market="mU", winners=("h",))),
        (at("2024-03-02T00:00:00.000"), c.SettleMarket(market="mP", winners=("p1",))),
        (at("2024-03-02T10:00:00.000"), c.VoidMarket(market="mV")),
        (at("2024-03-03T09:00:00.000"), c.SettleMarket(market="mZ", winners=("h",))),
    ]


def journal_records(timeline):
    engine = Engine()
    records = []
    for ts, cmd in timeline:
        seq = engine.last_seq + 1
        cmd = dataclasses.replace(cmd, seq=seq, ts=ts)
        events = engine.apply(cmd)
        rejected = [e for e in events if isinstance(e, ev.CommandRejected)]
        assert not rejected, f"{cmd} was rejected: {rejected}"
        records.append((seq, cmd, events))
    return records


@pytest.fixture
def read_model(redis_url, stream, migrated_database_url, run):
    """The history above, persisted into Postgres; bot1 registered as seeded, u1 as a customer
    (u2 has no users row: a customer too)."""
    records = journal_records(history())

    async def persist():
        redis = aioredis.from_url(redis_url)
        journal = Journal(redis, stream)
        for i in range(0, len(records), 7):
            await journal.append(records[i:i + 7])
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        while await persister.step(block_ms=1):
            pass
        await persister.make_durable()
        assert persister.persisted_seq == records[-1][0]
        await persister.stop()
        await redis.aclose()
        conn = await asyncpg.connect(migrated_database_url)
        await conn.execute("INSERT INTO users (user_id, seeded) VALUES ('bot1', true), "
                           "('u1', false)")
        await conn.close()

    run(persist())
    return migrated_database_url


def token(user: str, *roles: str) -> str:
    return make_token(JWT_SECRET, user, list(roles))


def get_report(run, database_url, query: str, roles=("operator",), headers=None):
    """GET /admin/reports/ggr?<query> -> (status, headers, body bytes)."""
    if headers is None:
        headers = {"Authorization": f"Bearer {token('ops1', *roles)}"}

    async def scenario():
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        exchange = SimpleNamespace(settings=Settings(jwt_secret=JWT_SECRET, jwt_public_key=None),
                                   pg_pool=pool)
        app = web.Application()
        add_report_routes(app, exchange)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            response = await client.get(f"/admin/reports/ggr?{query}", headers=headers)
            return response.status, dict(response.headers), await response.read()
        finally:
            await client.close()
            await pool.close()

    return run(scenario())


EXPECTED_CSV = """\
level,day,currency,market,name,type,outcome,settled_at,markets,bettors,matched,commission,house_pnl,ggr,deductions,ngr
market,2024-03-01,BDT,mA,Market mA,exchange,settled,2024-03-01T12:00:00.000Z,1,2,30.00,1.00,-20.00,-19.00,0.00,-19.00
market,2024-03-01,BDT,mB,Market mB,exchange,settled,2024-03-01T12:30:00.000Z,1,1,10.00,0.00,10.00,10.00,0.00,10.00
market,2024-03-01,BDT,mC,Market mC,exchange,settled,2024-03-01T13:00:00.000Z,1,2,10.00,0.08,0.01,0.09,0.00,0.09
day,2024-03-01,BDT,,,,,,3,2,50.00,1.08,-9.99,-8.91,0.00,-8.91
market,2024-03-02,BDT,mP,Market mP,pool,settled,2024-03-02T00:00:00.000Z,1,2,40.00,0.00,6.25,6.25,0.00,6.25
market,2024-03-02,BDT,mV,Market mV,exchange,voided,2024-03-02T10:00:00.000Z,1,2,10.00,0.00,0.00,0.00,0.00,0.00
day,2024-03-02,BDT,,,,,,2,2,50.00,0.00,6.25,6.25,0.00,6.25
currency,,BDT,,,,,,5,2,100.00,1.08,-3.74,-2.66,0.00,-2.66
market,2024-03-01,USD,mU,Market mU,exchange,settled,2024-03-01T23:59:59.999Z,1,2,5.00,0.75,0.00,0.75,0.00,0.75
day,2024-03-01,USD,,,,,,1,2,5.00,0.75,0.00,0.75,0.00,0.75
currency,,USD,,,,,,1,2,5.00,0.75,0.00,0.75,0.00,0.75
"""


def figures(rows: list[dict]) -> dict:
    key = {"market": lambda r: r["market"], "day": lambda r: (r["currency"], r["day"]),
           "currency": lambda r: r["currency"]}
    return {key[r["level"]](r): (r["bettors"], r["matched"], r["commission"], r["house_pnl"],
                                 r["ggr"], r["ngr"]) for r in rows}


def test_the_csv_has_exact_figures_per_market_day_and_currency_without_seeded_users(
        read_model, run):
    status, headers, body = get_report(run, read_model, "from=2024-03-01&to=2024-03-02&format=csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert 'filename="ggr_2024-03-01_2024-03-02.csv"' in headers["Content-Disposition"]
    assert body.decode().replace("\r\n", "\n") == EXPECTED_CSV


def test_including_seeded_users_counts_the_bots_as_customers(read_model, run):
    status, _, body = get_report(run, read_model,
                                 "from=2024-03-01&to=2024-03-02&include_seeded=true")
    assert status == 200
    report = orjson.loads(body)
    assert report["include_seeded"] is True
    rows = report["markets"] + report["days"] + report["currencies"]
    # (bettors, matched, commission, house_pnl, ggr, ngr)
    assert figures(rows) == {
        "mA": (3, "30.00", "1.00", "0.00", "1.00", "1.00"),  # bot1's 20.00 loss is u2's win
        "mB": (2, "15.00", "0.00", "15.00", "15.00", "15.00"),
        "mC": (2, "10.00", "0.08", "0.01", "0.09", "0.09"),
        "mP": (3, "50.00", "0.00", "5.00", "5.00", "5.00"),  # exactly the pool's take
        "mV": (2, "10.00", "0.00", "0.00", "0.00", "0.00"),
        "mU": (2, "5.00", "0.75", "0.00", "0.75", "0.75"),
        ("BDT", "2024-03-01"): (3, "55.00", "1.08", "15.01", "16.09", "16.09"),
        ("BDT", "2024-03-02"): (3, "60.00", "0.00", "5.00", "5.00", "5.00"),
        ("USD", "2024-03-01"): (2, "5.00", "0.75", "0.00", "0.75", "0.75"),
        "BDT": (3, "115.00", "1.08", "20.01", "21.09", "21.09"),
        "USD": (2, "5.00", "0.75", "0.00", "0.75", "0.75"),
    }


def test_with_seeded_users_ggr_is_what_the_house_and_commission_accounts_booked(
        read_model, run):
    _, _, body = get_report(run, read_model, "from=2024-03-01&to=2024-03-03&include_seeded=true")
    reported = {r["market"]: r["ggr"] for r in orjson.loads(body)["markets"]}

    async def booked():
        conn = await asyncpg.connect(read_model)
        rows = await conn.fetch(
            "SELECT ref, sum(amount_minor)::bigint AS total FROM ledger_entries "
            "WHERE account IN ('house', 'commission') AND kind IN ('settlement', 'commission') "
            "GROUP BY ref")
        await conn.close()
        return {r["ref"]: r["total"] for r in rows}

    ledger = run(booked())
    assert set(reported) == {"mA", "mB", "mC", "mU", "mP", "mV", "mZ"}
    assert reported == {m: format_money(ledger.get(m, 0)) for m in reported}


def test_a_market_counts_on_the_utc_day_it_was_settled(read_model, run):
    _, _, body = get_report(run, read_model, "from=2024-03-01&to=2024-03-01")
    assert [r["market"] for r in orjson.loads(body)["markets"]] == ["mA", "mB", "mC", "mU"]
    _, _, body = get_report(run, read_model, "from=2024-03-02&to=2024-03-02")
    assert [r["market"] for r in orjson.loads(body)["markets"]] == ["mP", "mV"]


def test_the_report_says_which_journal_seq_it_covers(read_model, run):
    status, headers, body = get_report(run, read_model, "from=2024-03-01&to=2024-03-02")
    report = orjson.loads(body)
    assert status == 200
    assert report["persisted_seq"] == len(history())
    assert headers["X-Backlay-Persisted-Seq"] == str(len(history()))


def test_ngr_is_ggr_less_bonuses_credited_to_customers(read_model, run):
    async def book_bonus():  # no engine command books a bonus yet: write the ledger row directly
        conn = await asyncpg.connect(read_model)
        await conn.execute(
            "INSERT INTO ledger_entries (seq, movement, entry, ts_ms, kind, ref, account, "
            "currency, amount_minor) VALUES (9999, 0, 0, $1, 'bonus', 'mA', 'u1', 'BDT', 200), "
            "(9999, 0, 1, $1, 'bonus', 'mA', 'house', 'BDT', -200)",
            at("2024-03-01T12:00:00"))
        await conn.close()

    run(book_bonus())
    _, _, body = get_report(run, read_model, "from=2024-03-01&to=2024-03-01")
    m_a = orjson.loads(body)["markets"][0]
    assert (m_a["market"], m_a["ggr"], m_a["deductions"], m_a["ngr"]) == (
        "mA", "-19.00", "2.00", "-21.00")


def test_an_empty_range_is_a_header_only_csv(read_model, run):
    status, _, body = get_report(run, read_model, "from=2023-01-01&to=2023-01-31&format=csv")
    assert status == 200
    assert list(csv.reader(io.StringIO(body.decode()))) == [EXPECTED_CSV.split("\n")[0].split(",")]


@pytest.mark.parametrize("roles", [("operator",), ("admin",)])
def test_operators_and_admins_may_read_reports(migrated_database_url, run, roles):
    status, _, body = get_report(run, migrated_database_url, "from=2024-03-01&to=2024-03-01",
                                 roles=roles)
    assert status == 200
    assert orjson.loads(body)["markets"] == []


@pytest.mark.parametrize("roles", [("bettor",), ("trader",)])
def test_other_roles_are_forbidden(migrated_database_url, run, roles):
    status, _, body = get_report(run, migrated_database_url, "from=2024-03-01&to=2024-03-01",
                                 roles=roles)
    assert (status, orjson.loads(body)["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"},
                                     {"Authorization": "Basic b3BzOnB3"}])
def test_a_missing_or_bad_token_is_unauthenticated(migrated_database_url, run, headers):
    status, response_headers, body = get_report(run, migrated_database_url,
                                                "from=2024-03-01&to=2024-03-01", headers=headers)
    assert (status, orjson.loads(body)["code"]) == (401, "UNAUTHENTICATED")
    assert response_headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("query", [
    "to=2024-03-01", "from=2024-03-01", "from=2024-3-1&to=2024-03-01",
    "from=2024-03-02&to=2024-03-01", "from=2024-01-01&to=2025-01-02",
    "from=2024-03-01&to=2024-03-01&format=xlsx",
    "from=2024-03-01&to=2024-03-01&include_seeded=maybe",
])
def test_bad_parameters_are_bad_requests(migrated_database_url, run, query):
    status, _, body = get_report(run, migrated_database_url, query)
    assert (status, orjson.loads(body)["code"]) == (400, "BAD_REQUEST")

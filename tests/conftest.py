"""Real Redis and Postgres for the tests, started once per session from the pip packages
(persistence.embedded), in a temporary directory; each test gets its own stream names and its
own database, so tests are isolated without restarting servers.

Async code runs inside sync tests through the `run` fixture (asyncio.run with a time limit):
pytest-asyncio is not a dependency.
"""

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

from persistence.embedded import EmbeddedPostgres, EmbeddedRedis
from persistence.migrate import migrate

TEST_TIMEOUT_S = 30


@pytest.fixture(scope="session")
def servers_dir():
    """The session's servers' data, not under pytest's basetemp: another pytest run starting
    meanwhile prunes old basetemps and makes its root private, which took the embedded Postgres
    (running as another user) down mid-run. Readable by that user, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="backlay-test-servers-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(servers_dir):
    server = EmbeddedRedis(servers_dir / "redis", appendfsync="always")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(servers_dir):
    server = EmbeddedPostgres(servers_dir / "pg")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def run():
    def run_coroutine(coro, timeout_s: float = TEST_TIMEOUT_S):
        async def bounded():
            async with asyncio.timeout(timeout_s):
                return await coro
        return asyncio.run(bounded())
    return run_coroutine


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def stream(redis_server) -> str:
    """A journal stream name of this test's own; its keys are deleted afterwards."""
    name = f"test:{uuid.uuid4().hex[:12]}:journal"
    yield name
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _admin(postgres_server, sql: str) -> None:
    conn = await asyncpg.connect(postgres_server.url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def database_url(postgres_server) -> str:
    """An empty database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_server, f'CREATE DATABASE "{name}"'))
    yield postgres_server.url_for(name)
    asyncio.run(_admin(postgres_server, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def migrated_database_url(database_url) -> str:
    async def apply():
        conn = await asyncpg.connect(database_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    asyncio.run(apply())
    return database_url


@pytest.fixture
def trading_commands():
    """Unstamped commands for a short but complete trading day, for seqs 1.. in order: markets,
    deposits, matched, partly matched, cancelled, replaced and lapsed orders, a rejection, a
    withdrawal approved and one rejected, a settled and a voided market, limits, house
    quotes from a trader's prices matched and re-quoted, a race with two non-runners, and
    bettors' own limits and exclusion."""
    from engine import commands as c

    place = c.PlaceOrder
    return [
        c.CreateMarket(market="m1", event="e1", name="Match Odds",
                       selections=(("s1", "Home"), ("s2", "Away"))),
        c.CreateMarket(market="m2", event="e1", name="Both Score",
                       selections=(("y", "Yes"), ("n", "No"))),
        c.SetMarketStatus(market="m1", status="open"),
        c.SetMarketStatus(market="m2", status="open"),
        *[c.Deposit(user=u, currency="BDT", amount_minor=100_000, ref=f"dep-{u}")
          for u in ("u1", "u2", "u3", "u4")],
        place(user="u1", market="m1", selection="s1", side="back", price=250, size_minor=2_000,
              persistence="persist", ref="r1"),                                       # seq 9
        place(user="u2", market="m1", selection="s1", side="lay", price=250, size_minor=1_500),
        place(user="u3", market="m1", selection="s1", side="lay", price=240, size_minor=1_000),
        place(user="u4", market="m1", selection="s2", side="back", price=300, size_minor=500),
        c.CancelOrder(user="u4", order="o12"),
        place(user="u2", market="m1", selection="s2", side="lay", price=180, size_minor=700),
        c.ReplaceOrder(user="u2", order="o14", price=190),
        place(user="u1", market="m1", selection="s1", side="back", price=250, size_minor=2_000,
              persistence="persist", ref="r1"),  # a repeat: the same order, nothing changes
        place(user="u3", market="m1", selection="s1", side="back", price=250,
              size_minor=10_000_000),  # far beyond the wallet: rejected
        place(user="u3", market="m2", selection="y", side="back", price=200, size_minor=300),
        place(user="u4", market="m2", selection="y", side="lay", price=200, size_minor=200),
        c.RequestWithdrawal(user="u4", currency="BDT", amount_minor=1_000),           # seq 20
        c.ApproveWithdrawal(withdrawal="w20"),
        c.RequestWithdrawal(user="u3", currency="BDT", amount_minor=2_000),           # seq 22
        c.RejectWithdrawal(withdrawal="w22"),
        c.SetMarketStatus(market="m1", in_play=True, bet_delay_ms=0),
        c.SettleMarket(market="m1", winners=("s1",)),
        c.VoidMarket(market="m2"),
        # the house quotes m3 from a trader's prices, within its liability limit
        c.CreateMarket(market="m3", event="e2", name="Winner",
                       selections=(("h", "Home"), ("a", "Away"))),
        c.SetMarketStatus(market="m3", status="open"),
        c.SetMarketLimits(market="m3", max_liability_minor=50_000, min_stake_minor=100,
                          max_stake_minor=100_000),
        c.SetUserLimits(user="u1", max_stake_minor=50_000),
        c.SetPrices(market="m3", prices=(("h", 210), ("a", 190)), margin_bp=500),
        place(user="u1", market="m3", selection="h", side="back", price=190, size_minor=5_000),
        place(user="u1", market="m3", selection="h", side="back", price=150, size_minor=30_000),
        # a race with a start time and two non-runners: fills voided, and repriced twice
        c.CreateMarket(market="m4", event="e3", name="Race", start_ts=1_767_225_600_000,
                       selections=(("r1", "One"), ("r2", "Two"), ("r3", "Three"),
                                   ("r4", "Four"))),                                  # seq 34
        c.SetMarketStatus(market="m4", status="open"),
        place(user="u2", market="m4", selection="r1", side="lay", price=800, size_minor=1_000),
        place(user="u3", market="m4", selection="r1", side="back", price=800, size_minor=1_000),
        place(user="u2", market="m4", selection="r3", side="lay", price=400, size_minor=500),
        place(user="u4", market="m4", selection="r3", side="back", price=400, size_minor=500),
        place(user="u4", market="m4", selection="r2", side="back", price=300, size_minor=300),
        c.RemoveSelection(market="m4", selection="r3", reduction_bp=2_000),
        place(user="u2", market="m4", selection="r1", side="lay", price=600, size_minor=700),
        place(user="u4", market="m4", selection="r1", side="back", price=600, size_minor=700),
        c.RemoveSelection(market="m4", selection="r4", reduction_bp=1_000),
        # bettors' own limits: set, a raise left pending, an exclusion, a refused deposit
        c.SetSelfLimits(user="u2", currency="BDT", daily_deposit_minor=5_000,
                        weekly_stake_minor=20_000),
        c.SetSelfLimits(user="u2", currency="BDT", weekly_stake_minor=40_000,
                        remove=("daily_deposit",)),
        c.Deposit(user="u2", currency="BDT", amount_minor=5_001, ref="dep-u2-big"),
        c.ExcludeSelf(user="u3", days=7),
    ]


@pytest.fixture
def engine_records():
    """apply(commands) -> (engine, records): what the sequencer would journal for them, made
    by a real Engine with seqs 1.. and ts 1_000_000 + seq."""
    import dataclasses

    from engine.engine import Engine

    def apply(commands, engine=None):
        engine = Engine() if engine is None else engine
        records = []
        for cmd in commands:
            seq = engine.last_seq + 1
            cmd = dataclasses.replace(cmd, seq=seq, ts=1_000_000 + seq)
            records.append((seq, cmd, engine.apply(cmd)))
        return engine, records
    return apply

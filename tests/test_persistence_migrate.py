"""Migrations: plain versioned SQL, applied at start-up, each exactly once."""

import asyncio
from datetime import date

import asyncpg

from gateway import reports, statements
from persistence.migrate import load_migrations, migrate, schema_version


def test_migrations_are_numbered_sql_files_in_order():
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == 1


def test_first_run_applies_every_migration_and_records_the_version(database_url, run):
    async def check():
        conn = await asyncpg.connect(database_url)
        applied = await migrate(conn)
        version = await schema_version(conn)
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        await conn.close()
        return applied, version, tables

    applied, version, tables = run(check())
    assert applied == [m.version for m in load_migrations()]
    assert version == applied[-1]
    assert {"markets", "selections", "orders", "fills", "ledger_entries", "settlements",
            "wallets", "user_limits", "market_limits", "withdrawals", "persisted",
            "snapshots", "schema_version"} <= tables


def test_hot_tables_ids_compare_bytewise(migrated_database_url, run):
    """Migration 0009: the ids the persister's busiest tables are indexed by use COLLATE "C"
    (memcmp, not strcoll, for every index comparison), and a join with a column of the
    database's collation, and ordering by them, still work."""
    async def check():
        conn = await asyncpg.connect(migrated_database_url)
        rows = await conn.fetch(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = any($1::text[]) "
            "AND data_type = 'text'",
            ["orders", "fills", "wallet_movements", "wallets", "ledger_entries"])
        # parsed, planned and run: a collation conflict would raise here
        joined = await conn.fetch(
            "SELECT o.order_id FROM orders o JOIN markets m ON m.market = o.market "
            "WHERE o.user_id = $1 OR o.market < m.name ORDER BY o.market, m.market", "u1")
        await conn.close()
        return {(r["table_name"], r["column_name"]): r["collation_name"] for r in rows}, joined

    collations, joined = run(check())
    for key in [("orders", "order_id"), ("orders", "user_id"), ("orders", "market"),
                ("orders", "selection"), ("orders", "ref"), ("fills", "market"),
                ("fills", "selection"), ("wallet_movements", "user_id"),
                ("wallet_movements", "currency"), ("wallets", "user_id"),
                ("wallets", "currency"), ("ledger_entries", "account"),
                ("ledger_entries", "currency")]:
        assert collations[key] == "C", key
    assert collations[("orders", "side")] is None  # not indexed: the database's collation
    assert joined == []


def test_orders_are_indexed_by_market_for_pool_bets_only_and_the_pool_queries_use_it(
        migrated_database_url, run):
    """Migration 0010: orders_market_pool holds pool bets only (matched at no price), and the
    queries of orders by market (a pool's stakes for cleared bets, the reports' pool volume
    and bettors) can use it: their WHERE implies its predicate."""
    async def check():
        conn = await asyncpg.connect(migrated_database_url)
        try:
            indexes = dict(await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders'"))
            await conn.execute("SET enable_seqscan = off")  # an empty table: scan it otherwise
            plans = [await conn.fetch("EXPLAIN " + statements._POOL_STAKES_SQL, ["m1"])]
            for sql in (reports.GGR_SQL, reports.BETTORS_SQL):
                plans.append(await conn.fetch("EXPLAIN " + sql, *reports._args(
                    date(2026, 1, 1), date(2026, 1, 2), False)))
        finally:
            await conn.close()
        return indexes, ["\n".join(r[0] for r in plan) for plan in plans]

    indexes, plans = run(check())
    assert "orders_market" not in indexes
    assert indexes["orders_market_pool"].endswith(
        "(market, selection) WHERE pool")
    for plan in plans:
        assert "orders_market_pool" in plan, plan


def test_snapshots_are_stored_uncompressed_out_of_line(migrated_database_url, run):
    """Restart reads a 100 MB snapshot back whole: Postgres's own compression made writing it
    1.7 times and reading it up to 1.8 times slower (migration 0003)."""
    async def check():
        conn = await asyncpg.connect(migrated_database_url)
        storage = await conn.fetchval(
            "SELECT attstorage::text FROM pg_attribute "
            "WHERE attrelid = 'snapshots'::regclass AND attname = 'engine'")
        await conn.close()
        return storage

    assert run(check()) == "e"  # EXTERNAL; a bytea column is 'x' (EXTENDED) by default


def test_second_run_applies_nothing_and_changes_nothing(migrated_database_url, run):
    async def check():
        conn = await asyncpg.connect(migrated_database_url)
        before = await conn.fetch("SELECT version, name, applied_at FROM schema_version")
        applied = await migrate(conn)
        after = await conn.fetch("SELECT version, name, applied_at FROM schema_version")
        persisted = await conn.fetchrow("SELECT seq, ts_ms FROM persisted")
        await conn.close()
        return before, applied, after, persisted

    before, applied, after, persisted = run(check())
    assert applied == []
    assert before == after
    assert tuple(persisted) == (0, 0)


def test_concurrent_start_ups_apply_each_migration_once(database_url, run):
    async def check():
        conns = [await asyncpg.connect(database_url) for _ in range(3)]
        results = await asyncio.gather(*(migrate(c) for c in conns))
        rows = await conns[0].fetchval("SELECT count(*) FROM schema_version")
        for c in conns:
            await c.close()
        return results, rows

    results, rows = run(check())
    assert sorted(v for applied in results for v in applied) == [
        m.version for m in load_migrations()]
    assert rows == len(load_migrations())

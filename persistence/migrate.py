"""Plain versioned SQL migrations, applied at start-up.

`migrations/NNNN_name.sql` files run in version order, each in its own transaction together with
its `schema_version` row, so a migration is applied completely or not at all and never twice.
An advisory lock serialises processes that start at the same moment.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x6261636B6C6179  # "backlay": one advisory lock id for every migrating process
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.iterdir()):
        m = _NAME.match(path.name)
        if m is None:
            if path.suffix == ".sql":
                raise ValueError(f"migration file not named NNNN_name.sql: {path.name}")
            continue
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version in {directory}")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply the migrations not yet applied; return the versions applied now."""
    async with conn.transaction():
        # Under the lock too: two concurrent CREATE TABLE IF NOT EXISTS can still collide.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )""")
    applied_now = []
    for migration in load_migrations(directory):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            done = await conn.fetchval(
                "SELECT 1 FROM schema_version WHERE version = $1", migration.version)
            if done:
                continue
            await conn.execute(migration.sql)
            await conn.execute("INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                               migration.version, migration.name)
            applied_now.append(migration.version)
    return applied_now


async def schema_version(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")

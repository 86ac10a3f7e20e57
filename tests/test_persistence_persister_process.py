"""The persister in its own process: it catches up, reports lag, stops when asked, and never
outlives the server that started it."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import asyncpg
import redis.asyncio as aioredis

from persistence.journal import Journal
from persistence.persister_process import PersisterProcess
from persistence.readmodel import read_persisted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by a dead parent's init) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def test_it_persists_the_journal_reports_lag_and_stops(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        journal = Journal(redis, stream)
        await journal.append(records[:10])
        persister = PersisterProcess(redis_url, migrated_database_url, stream=stream)
        await persister.start()
        pid = persister.pid
        await journal.append(records[10:])
        deadline = time.monotonic() + 30
        while persister.persisted_seq < len(records) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        lag = await persister.lag()
        await persister.stop()
        conn = await asyncpg.connect(migrated_database_url)
        persisted, _ = await read_persisted(conn)
        balances = {(r["user_id"], r["currency"]): (r["balance_minor"], r["held_minor"])
                    for r in await conn.fetch("SELECT * FROM wallets")}
        await conn.close()
        await redis.aclose()
        return pid, persister.persisted_seq, lag, persisted, balances

    pid, seen, lag, persisted, balances = run(scenario())
    assert seen == persisted == len(records)
    assert (lag.seqs, lag.seconds) == (0, 0.0)
    assert balances == {k: (w.balance, w.held) for k, w in engine.wallets.items()}
    assert not _alive(pid)


def test_it_exits_when_the_server_that_started_it_is_killed(
        redis_url, stream, migrated_database_url):
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import asyncio
        from persistence.persister_process import PersisterProcess

        async def main():
            persister = PersisterProcess({redis_url!r}, {migrated_database_url!r},
                                         stream={stream!r})
            await persister.start()
            print(persister.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the persister outlived its server"
    finally:
        parent.kill()

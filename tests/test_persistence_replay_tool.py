"""`backlay replay` (persistence/replay_tool.py): rebuild from the journal, verified, summarised."""

import io
import re

import asyncpg
import redis
import redis.asyncio as aioredis

from engine.events import MoneyMoved
from persistence.embedded import EmbeddedRedis, _live_pid, _read_pid
from persistence.journal import STREAM, Journal
from persistence.replay_tool import main
from persistence.snapshots import SnapshotStore, save_snapshot


async def _journal(redis_url, stream, records, batch=4):
    client = aioredis.from_url(redis_url)
    journal = Journal(client, stream)
    for i in range(0, len(records), batch):
        await journal.append(records[i:i + batch])
    await client.aclose()


def _replay(argv, environ=None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out, environ={} if environ is None else environ)
    return code, out.getvalue()


def test_replays_the_whole_journal_and_prints_rate_seq_and_summary(
        redis_url, stream, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands)
    run(_journal(redis_url, stream, records))

    code, out = _replay(["--redis-url", redis_url, "--stream", stream])

    assert code == 0, out
    n = len(trading_commands)
    assert re.search(rf"replayed {n} commands of {re.escape(stream)} \(\d+ stream entries\) "
                     r"from empty in [\d.]+ s: [\d,]+ entries/s; every event verified", out), out
    assert f"final seq {n}\n" in out
    assert "markets 4 (2 OPEN, 1 SETTLED, 1 VOIDED)" in out
    open_orders = sum(1 for o in engine.orders.values() if o.remaining)
    assert f"orders {len(engine.orders)} ({open_orders} open)" in out
    users = sum(1 for (u, _) in engine.wallets if u not in ("house", "commission", "external"))
    assert f"wallets {len(engine.wallets)} ({users} user wallets)" in out
    assert "total balance BDT 0.00 (users " in out  # money conserved: every balance sums to 0
    assert "invariants ok" in out


def test_from_snapshot_replays_only_what_follows_it(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    snapshot_engine, _ = engine_records(trading_commands[:15])
    _, records = engine_records(trading_commands)

    async def prepare():
        await _journal(redis_url, stream, records)
        db = await asyncpg.connect(migrated_database_url)
        await save_snapshot(SnapshotStore(db), snapshot_engine, 15)
        await db.close()

    run(prepare())
    code, out = _replay(["--from-snapshot", "--stream", stream],
                        environ={"REDIS_URL": redis_url, "DATABASE_URL": migrated_database_url})

    assert code == 0, out
    assert f"replayed {len(records) - 15} commands" in out
    assert "from snapshot at seq 15 in" in out
    assert f"final seq {len(records)}\n" in out and "invariants ok" in out


def test_from_snapshot_without_any_snapshot_replays_from_empty(
        redis_url, stream, database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:10])
    run(_journal(redis_url, stream, records))
    # database_url is not even migrated: no snapshots table, so no snapshot
    code, out = _replay(["--from-snapshot", "--redis-url", redis_url, "--database-url",
                         database_url, "--stream", stream])
    assert code == 0, out
    assert "replayed 10 commands" in out and "from empty" in out


def test_journaled_events_the_engine_does_not_reproduce_fail_the_replay(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:6])
    seq, cmd, events = records[5]  # a deposit, journaled with a forged amount
    forged = [MoneyMoved(seq=seq, ts=cmd.ts, kind="deposit", ref=cmd.ref, currency="BDT",
                         entries=(("external", -1), (cmd.user, 1))), *events[1:]]

    async def prepare():
        await _journal(redis_url, stream, records[:5])
        client = aioredis.from_url(redis_url)
        await Journal(client, stream).append([(seq, cmd, forged)])
        await client.aclose()

    run(prepare())
    code, out = _replay(["--redis-url", redis_url, "--stream", stream])
    assert code == 1
    assert "replay FAILED: the engine does not reproduce the journal" in out
    assert f"seq {seq} Deposit" in out


def test_a_trimmed_journal_fails_from_empty_and_suggests_the_snapshot(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:9])

    async def prepare():
        await _journal(redis_url, stream, records, batch=3)
        client = aioredis.from_url(redis_url)
        await Journal(client, stream).trim_below(4)
        await client.aclose()

    run(prepare())
    code, out = _replay(["--redis-url", redis_url, "--stream", stream])
    assert code == 1
    assert "replay FAILED" in out and "try --from-snapshot" in out


def test_stream_and_redis_come_from_the_environment(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:8])
    run(_journal(redis_url, stream, records))
    code, out = _replay([], environ={"BACKLAY_REDIS_URL": redis_url, "BACKLAY_STREAM": stream})
    assert code == 0, out
    assert "replayed 8 commands" in out and "final seq 8\n" in out


def test_without_urls_it_starts_redis_in_the_var_dir_and_stops_it_again(tmp_path):
    code, out = _replay(["--var-dir", str(tmp_path)])
    assert code == 0, out
    assert f"replayed 0 commands of {STREAM}" in out and "final seq 0\n" in out
    assert "markets 0\n" in out and "total balance 0.00 (no wallets)" in out
    pid = _read_pid(tmp_path / "redis" / "redis.pid")
    assert pid is None or not _live_pid(pid)


def test_a_running_embedded_redis_is_used_as_it_is_and_left_running(
        tmp_path, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:12])
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec")
    server.start()
    try:
        run(_journal(server.url, STREAM, records))
        code, out = _replay(["--var-dir", str(tmp_path)])
        assert code == 0, out
        assert "replayed 12 commands" in out
        assert _live_pid(server.pid)
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}  # untouched
        client.close()
    finally:
        server.stop()


def test_unknown_options_are_a_usage_error(capsys):
    assert main(["--no-such-option"], out=io.StringIO(), environ={}) == 2
    assert "usage: backlay replay" in capsys.readouterr().err


def test_unreachable_redis_is_reported_not_raised(tmp_path):
    code, out = _replay(["--redis-url", f"unix://{tmp_path}/nothing-here.sock"])
    assert code == 1
    assert "replay FAILED: storage unreachable" in out

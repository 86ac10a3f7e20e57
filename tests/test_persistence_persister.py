"""The persister: journal entries folded into Postgres exactly once, acknowledged once durable."""

import asyncio

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from engine import events as ev
from engine.commands import Deposit
from persistence.fold import fold
from persistence.journal import Journal
from persistence.persister import Persister, SeqGap
from persistence import readmodel
from persistence.readmodel import write_changes
from tests.read_model_oracle import TABLES, dump


async def journal_batches(redis, stream, records, batch_size=5):
    journal = Journal(redis, stream)
    for i in range(0, len(records), batch_size):
        await journal.append(records[i:i + batch_size])


async def drain(persister: Persister) -> None:
    """Fold everything there is, then flush it to disk (acknowledging it) without waiting for
    Postgres's WAL writer."""
    while await persister.step(block_ms=1):
        pass
    await persister.make_durable()


def test_the_read_model_matches_the_engine(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records)
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        wallets = {(r["user_id"], r["currency"]): (r["balance_minor"], r["held_minor"])
                   for r in await conn.fetch("SELECT * FROM wallets")}
        orders = {r["order_id"]: r for r in await conn.fetch("SELECT * FROM orders")}
        markets = {r["market"]: r["status"] for r in await conn.fetch("SELECT * FROM markets")}
        withdrawals = {r["withdrawal"]: r["status"]
                       for r in await conn.fetch("SELECT * FROM withdrawals")}
        fills = await conn.fetchval("SELECT count(*) FROM fills")
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return persister, wallets, orders, markets, withdrawals, fills

    persister, wallets, orders, markets, withdrawals, fills = run(scenario())
    assert persister.persisted_seq == records[-1][0]
    assert wallets == {k: (w.balance, w.held) for k, w in engine.wallets.items()}
    # the engine keeps only open markets' orders (settled/voided ones are retired); the read
    # model keeps them all, final
    assert set(engine.orders) <= set(orders)
    assert all(orders[oid]["remaining_minor"] == 0 and orders[oid]["market"] in ("m1", "m2")
               for oid in set(orders) - set(engine.orders))
    for oid, o in engine.orders.items():
        row = orders[oid]
        assert (row["matched_minor"], row["remaining_minor"], row["cancelled_minor"],
                row["lapsed_minor"], row["matched_value"], row["status"]) == (
            o.matched, o.remaining, o.cancelled, o.lapsed, o.matched_value, o.status), oid
    assert markets == {"m1": "SETTLED", "m2": "VOIDED", "m3": "OPEN", "m4": "OPEN"}
    assert withdrawals == {"w20": "APPROVED", "w22": "REJECTED"}
    assert fills == sum(isinstance(e, ev.BetMatched) for _, _, es in records for e in es)


def test_non_runners_and_start_times_reach_the_read_model(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    """Written in batches of three, so the fills of the race are repriced both in the batch
    that inserts them and in later ones: each fill row ends with the engine's current terms,
    the price it was matched at, or `voided` for the non-runner's."""
    engine, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records, batch_size=3)
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        start = await conn.fetchval("SELECT start_ts_ms FROM markets WHERE market = 'm4'")
        selections = {r["selection"]: (r["removed_seq"], r["reduction_bp"]) for r in
                      await conn.fetch("SELECT * FROM selections WHERE market = 'm4'")}
        fills = [tuple(r) for r in await conn.fetch(
            "SELECT selection, size_minor, price, win_minor, original_price, voided "
            "FROM fills WHERE market = 'm4' ORDER BY seq, idx")]
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return start, selections, fills

    start, selections, fills = run(scenario())
    assert start == 1_767_225_600_000
    assert selections == {"r1": (None, None), "r2": (None, None), "r3": (41, 2_000),
                          "r4": (44, 1_000)}
    assert fills == [
        ("r1", 1_000, 576, 4_760, 800, False),  # 8.00 -> 6.40 -> 5.76
        ("r3", 500, 400, 1_500, None, True),  # on the first non-runner: void
        ("r1", 700, 540, 3_080, 600, False),  # matched between the two: 6.00 -> 5.40
    ]
    m4 = engine.markets["m4"]
    assert [(f[3], f[2]) for f in m4.fills] == [(1_000, 576), (700, 540)]


def test_every_ledger_movement_sums_to_zero(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records)
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        movements = await conn.fetch(
            "SELECT seq, movement, sum(amount_minor) AS total FROM ledger_entries "
            "GROUP BY seq, movement")
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return movements

    movements = run(scenario())
    assert len(movements) == sum(isinstance(e, ev.MoneyMoved) for _, _, es in records for e in es)
    assert all(m["total"] == 0 for m in movements)


def test_entries_delivered_twice_leave_postgres_unchanged(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records, batch_size=4)
        persister = Persister(redis, migrated_database_url, stream=stream, read_count_max=3)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        once = await dump(conn)
        # Redeliver everything, as after a crash between commit and XACK.
        await redis.xgroup_setid(stream, persister.group, id="0")
        again = Persister(redis, migrated_database_url, stream=stream, read_count_max=2)
        await again.prepare()
        await drain(again)
        twice = await dump(conn)
        pending = await redis.xpending(stream, persister.group)
        await conn.close()
        await persister.stop()
        await again.stop()
        await redis.aclose()
        return once, twice, pending

    once, twice, pending = run(scenario())
    assert twice == once
    assert pending["pending"] == 0


def test_folding_the_same_batch_twice_changes_nothing_even_past_the_persisted_seq(
        migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        conn = await asyncpg.connect(migrated_database_url)
        for i in range(0, len(records), 6):
            async with conn.transaction():
                await write_changes(conn, fold(records[i:i + 6]))
        once = await dump(conn)
        for i in range(0, len(records), 6):
            async with conn.transaction():
                await write_changes(conn, fold(records[i:i + 6]))
        twice = await dump(conn)
        await conn.close()
        return once, twice

    once, twice = run(scenario())
    assert twice == once


def test_a_persister_takes_over_entries_left_pending_by_a_crashed_one(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records)
        await redis.xgroup_create(stream, "persister", id="0")
        # Another persister read everything and died before committing anything.
        await redis.xreadgroup("persister", "crashed-host", {stream: ">"}, count=1000)
        persister = Persister(redis, migrated_database_url, stream=stream, consumer="new-host")
        await persister.prepare()
        await drain(persister)
        pending = await redis.xpending(stream, "persister")
        await persister.stop()
        await redis.aclose()
        return persister, pending

    persister, pending = run(scenario())
    assert persister.persisted_seq == records[-1][0]
    assert pending["pending"] == 0


def test_an_entry_failing_attempts_max_times_is_dead_lettered_and_the_rest_persisted(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:8])  # markets and deposits: seqs 1-8

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records[:4])
        # seq 5: a fill between orders the read model never saw: cannot be folded.
        poison = ev.BetMatched(seq=5, ts=1, market="m1", selection="s1", price=200,
                               size_minor=1, win_minor=1, taker_order="ghost", taker_user="u1",
                               taker_side="back", maker_order="phantom", maker_user="u2")
        await Journal(redis, stream).append([(5, records[4][1], [poison])])
        await Journal(redis, stream).append(records[5:])
        persister = Persister(redis, migrated_database_url, stream=stream, attempts_max=3)
        await persister.prepare()
        for _ in range(10):
            try:
                await drain(persister)
                break
            except Exception:
                pass
        dead = await redis.xrange(f"{stream}:dead")
        conn = await asyncpg.connect(migrated_database_url)
        deposits = await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE kind='deposit'")
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return persister, dead, deposits

    persister, dead, deposits = run(scenario())
    assert persister.dead_lettered == 1
    assert [fields[b"entry_id"] for _, fields in dead] == [b"5-0"]
    assert b"ReadModelMismatch" in dead[0][1][b"error"]
    assert persister.persisted_seq == 8
    assert deposits == 2 * 3  # the deposits at seqs 6, 7, 8 (seq 5's was replaced by poison)


def test_a_gap_in_the_journal_stalls_the_persister_instead_of_skipping_it(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:8])

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await Journal(redis, stream).append(records[5:])  # seqs 1-5 never arrive
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        try:
            await persister.step(block_ms=1)
            raised = None
        except SeqGap as exc:
            raised = exc
        await persister.stop()
        await redis.aclose()
        return persister, raised

    persister, raised = run(scenario())
    assert raised is not None
    assert persister.persisted_seq == 0


def test_lag_counts_unpersisted_commands_and_the_age_of_the_oldest(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:10])

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records)
        persister = Persister(redis, migrated_database_url, stream=stream,
                              clock_ms=lambda: 1_000_000 + 1 + 2_500)
        await persister.prepare()
        before = await persister.lag()
        await drain(persister)
        after = await persister.lag()
        await persister.stop()
        await redis.aclose()
        return before, after

    before, after = run(scenario())
    assert before.seqs == 10 and before.seconds == 2.5  # seq 1 has ts 1_000_001
    assert after.seqs == 0 and after.seconds == 0


async def entry_seqs(redis, stream, group) -> tuple[set[int], set[int]]:
    """(every entry's seq, the acknowledged ones'): an entry's id is its last command's seq;
    acknowledged = delivered to the group and no longer pending."""
    def seq(entry_id) -> int:
        return int((entry_id.encode() if isinstance(entry_id, str) else entry_id).split(b"-")[0])

    pending = {seq(p["message_id"])
               for p in await redis.xpending_range(stream, group, "-", "+", 10_000)}
    [info] = [g for g in await redis.xinfo_groups(stream) if g["name"] in (group, group.encode())]
    delivered_up_to = seq(info["last-delivered-id"])
    entries = {seq(eid) for eid, _ in await redis.xrange(stream)}
    return entries, {s for s in entries if s <= delivered_up_to} - pending


def test_folds_are_acknowledged_only_once_the_wal_is_flushed_past_their_commit(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records, batch_size=3)
        persister = Persister(redis, migrated_database_url, stream=stream, read_count_max=1)
        await persister.prepare()
        seen = []
        while await persister.step(block_ms=1):
            entries, acked = await entry_seqs(redis, stream, persister.group)
            seen.append((persister.persisted_seq, persister.committed_seq, entries, acked))
        conn = await asyncpg.connect(migrated_database_url)
        in_postgres = await conn.fetchval("SELECT seq FROM persisted")
        await conn.close()
        # no make_durable: Postgres's WAL writer flushes on its own, and step notices
        deadline = asyncio.get_running_loop().time() + 30
        while persister.persisted_seq < persister.committed_seq:
            assert asyncio.get_running_loop().time() < deadline, "the WAL was never flushed"
            assert await persister.step(block_ms=50) == 0
        pending = await redis.xpending(stream, persister.group)
        await persister.stop()
        await redis.aclose()
        return seen, in_postgres, persister, pending

    seen, in_postgres, persister, pending = run(scenario())
    last = records[-1][0]
    assert in_postgres == last == persister.committed_seq == persister.persisted_seq
    assert pending["pending"] == 0
    assert len(seen) > 5
    for persisted, committed, entries, acked in seen:
        assert persisted <= committed
        assert acked == {seq for seq in entries if seq <= persisted}  # exactly the durable ones


def test_folds_awaiting_their_flush_are_read_again_after_the_connection_is_lost(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    """A lost connection may be a Postgres that crashed and forgot its unflushed commits, so
    nothing awaiting a flush is acknowledged through the new connection: it is read again
    (and skipped, when Postgres still has it)."""
    _, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records, batch_size=2)
        persister = Persister(redis, migrated_database_url, stream=stream, read_count_max=2)
        await persister.prepare()
        awaiting = 0
        while not awaiting:  # until a fold is still waiting for the WAL writer's flush
            assert await persister.step(block_ms=1), "every fold was flushed at once"
            awaiting = (await redis.xpending(stream, persister.group))["pending"]
        while await persister.step(block_ms=1):
            pass
        conn = await asyncpg.connect(migrated_database_url)
        once = await dump(conn)
        awaiting = (await redis.xpending(stream, persister.group))["pending"]
        persister._conn.terminate()  # as a Postgres restart would
        reread = 0
        while n := await persister.step(block_ms=1):
            reread += n
        await persister.make_durable()
        twice = await dump(conn)
        pending = await redis.xpending(stream, persister.group)
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return once, twice, awaiting, reread, pending, persister

    once, twice, awaiting, reread, pending, persister = run(scenario())
    assert reread == awaiting > 0  # every entry that was waiting came back, folded again
    assert twice == once  # ... and changed nothing: Postgres still had them
    assert pending["pending"] == 0
    assert persister.persisted_seq == records[-1][0]


def test_limits_prices_and_suspensions_fold_into_their_tables(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:1])  # market m1 with s1, s2

    def made(seq, *events):
        cmd = Deposit(seq=seq, ts=seq, user="trader", currency="BDT", amount_minor=1, ref="x")
        return seq, cmd, list(events)

    later = [
        made(2, ev.MarketLimitsSet(seq=2, ts=2, market="m1", max_liability_minor=5_000_000,
                                   selection_max_liability_minor=None, min_stake_minor=200,
                                   max_stake_minor=100_000),
             ev.UserLimitsSet(seq=2, ts=2, user="u1", max_stake_minor=50_000,
                              daily_stake_minor=None, weekly_stake_minor=None,
                              stake_factor=(1, 2), max_exposure_minor=None)),
        made(3, ev.PricesSet(seq=3, ts=3, market="m1", fair=(("s1", 210), ("s2", 340)),
                             offered=(("s1", 200), ("s2", 320)), margin_bp=500)),
        made(4, ev.SelectionSuspended(seq=4, ts=4, market="m1", selection="s2",
                                      house_liability_minor=5_000_000),
             ev.UserLimitsSet(seq=4, ts=4, user="u1", max_stake_minor=40_000,
                              daily_stake_minor=None, weekly_stake_minor=None,
                              stake_factor=None, max_exposure_minor=None)),
    ]

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await Journal(redis, stream).append(records)
        await Journal(redis, stream).append(later[:2])
        await Journal(redis, stream).append(later[2:])
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        rows = (await conn.fetch("SELECT * FROM market_limits"),
                await conn.fetch("SELECT * FROM user_limits"),
                await conn.fetch("SELECT selection, fair_price, offered_price, house_suspended "
                                 "FROM selections ORDER BY position"))
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return rows

    market_limits, user_limits, selections = run(scenario())
    assert [(r["max_liability_minor"], r["min_stake_minor"]) for r in market_limits] == [
        (5_000_000, 200)]
    assert [(r["max_stake_minor"], r["stake_factor_num"], r["updated_seq"])
            for r in user_limits] == [(40_000, None, 4)]
    assert [tuple(r) for r in selections] == [("s1", 210, 200, False), ("s2", 340, 320, True)]


def test_every_event_type_has_a_fold():
    from persistence.fold import _FOLDERS

    assert set(ev.EVENT_TYPES.values()) <= set(_FOLDERS)


def test_settlement_dead_heat_is_stored_as_json(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    from engine import commands as c

    commands = trading_commands[:8] + [
        c.SettleMarket(market="m1", winners=("s1", "s2"), dead_heat=(("s1", 1, 2), ("s2", 1, 2)))]
    _, records = engine_records(commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_batches(redis, stream, records)
        persister = Persister(redis, migrated_database_url, stream=stream)
        await persister.prepare()
        await drain(persister)
        conn = await asyncpg.connect(migrated_database_url)
        row = await conn.fetchrow("SELECT * FROM settlements")
        await conn.close()
        await persister.stop()
        await redis.aclose()
        return row

    row = run(scenario())
    assert (row["market"], row["outcome"], row["winners"]) == ("m1", "settled", ["s1", "s2"])
    assert orjson.loads(row["dead_heat"]) == [["s1", 1, 2], ["s2", 1, 2]]


def test_a_running_persister_follows_the_sequencer_into_postgres(
        redis_url, stream, migrated_database_url, run, trading_commands):
    from engine.engine import Engine
    from persistence.sequencer import Sequencer

    async def scenario():
        redis = aioredis.from_url(redis_url)
        sequencer = Sequencer(Engine(), Journal(redis, stream), batch_max=8)
        persister = Persister(redis, migrated_database_url, stream=stream, read_block_ms=50)
        await sequencer.start()
        await persister.start()
        for cmd in trading_commands:
            sequencer.submit(cmd)
        while persister.persisted_seq < len(trading_commands):
            await asyncio.sleep(0.01)
        lag = await persister.lag()
        await sequencer.stop()
        await persister.stop()
        await redis.aclose()
        return sequencer, lag

    sequencer, lag = run(scenario(), timeout_s=10)
    assert sequencer.last_seq == len(trading_commands)
    assert lag.seqs == 0



@pytest.mark.parametrize("commit_interval_s, most, least", [(0.5, 2, 1), (0.0, 11, 4)])
def test_once_caught_up_the_persister_gathers_a_trickle_of_entries_into_one_transaction(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands,
        commit_interval_s, most, least):
    """With a long interval the 11 entries that trickle in after the first commit go in one or
    two transactions; with none, the caught-up persister commits them (nearly) one by one."""
    _, records = engine_records(trading_commands[:12])

    async def persisted(persister: Persister, seq: int) -> None:
        while persister.persisted_seq < seq:
            await asyncio.sleep(0.005)

    async def scenario() -> int:
        redis = aioredis.from_url(redis_url)
        journal = Journal(redis, stream)
        await journal.append(records[:1])
        persister = Persister(redis, migrated_database_url, stream=stream, read_block_ms=20,
                              commit_interval_s=commit_interval_s)
        await persister.start()
        await persisted(persister, 1)
        first = persister.transactions
        for record in records[1:]:  # a trickle: one small entry every few milliseconds
            await journal.append([record])
            await asyncio.sleep(0.01)
        await persisted(persister, len(records))
        transactions = persister.transactions - first
        await persister.stop()
        await redis.aclose()
        return transactions

    assert least <= run(scenario(), timeout_s=20) <= most


class CountingCopies(asyncpg.Connection):
    """A real connection that counts its COPYs into tables."""

    copies = 0

    async def copy_records_to_table(self, *args, **kwargs):
        CountingCopies.copies += 1
        return await super().copy_records_to_table(*args, **kwargs)


def test_big_batches_are_copied_into_the_tables_with_the_same_rows_and_twice_changes_nothing(
        migrated_database_url, run, engine_records, trading_commands, monkeypatch):
    _, records = engine_records(trading_commands)

    async def fold_in_batches(conn) -> None:
        for i in range(0, len(records), 6):
            async with conn.transaction():
                await write_changes(conn, fold(records[i:i + 6]))

    async def scenario():
        conn = await asyncpg.connect(migrated_database_url, connection_class=CountingCopies)
        await fold_in_batches(conn)  # a handful of rows each: inserted
        inserted = await dump(conn)
        assert CountingCopies.copies == 0
        await conn.execute(f"TRUNCATE {', '.join(t for t in TABLES if t != 'persisted')}")
        monkeypatch.setattr(readmodel, "COPY_ROWS_MIN", 1)  # every batch counts as big
        await fold_in_batches(conn)
        copied = await dump(conn)
        copies = CountingCopies.copies
        await fold_in_batches(conn)  # a redelivery: every COPY meets its rows and falls back
        twice = await dump(conn)
        await conn.close()
        return inserted, copied, copies, twice

    inserted, copied, copies, twice = run(scenario())
    assert copies > 0
    assert copied == inserted
    assert twice == copied

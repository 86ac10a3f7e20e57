"""Restart: newest snapshot + verified replay of the journal after it; trimming only what both
the snapshot and the persister are done with."""

import asyncio
import pickle

import asyncpg
import pytest
import orjson
import redis.asyncio as aioredis

from engine import commands as c
from engine.codec import _KEYED_BUILDERS, encode_event_lists
from engine.engine import Engine
from engine.events import MoneyMoved
from persistence.journal import Journal
from persistence.recovery import DeterminismError, JournalGap, recover, trim_journal
from persistence.sequencer import Sequencer
from persistence.snapshots import SnapshotStore, save_snapshot


def state(engine) -> tuple:
    return (engine.last_seq,
            {k: (w.balance, w.held) for k, w in engine.wallets.items()},
            {oid: (o.matched, o.remaining, o.cancelled, o.lapsed) for oid, o in
             engine.orders.items()},
            {mid: m.status for mid, m in engine.markets.items()})


def test_replay_from_an_empty_engine_reproduces_the_state(
        redis_url, stream, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands)

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        for i in range(0, len(records), 7):
            await journal.append(records[i:i + 7])
        recovered = await recover(journal, None)
        await journal.redis.aclose()
        return recovered

    recovered = run(scenario())
    assert recovered.snapshot_seq == 0 and recovered.replayed == len(records)
    assert state(recovered.engine) == state(engine)
    recovered.engine.validate()


async def journal_keyed(redis, stream, records, per_entry: int) -> None:
    """Entries as journals written before records were positional hold them: keyed records."""
    for i in range(0, len(records), per_entry):
        batch = records[i:i + per_entry]
        await redis.xadd(stream, {
            "c": orjson.dumps([_KEYED_BUILDERS[type(cmd)](cmd) for _, cmd, _ in batch]),
            "e": encode_event_lists([events for _, _, events in batch], keyed=True)},
            id=f"{batch[-1][0]}-0")


def test_a_journal_of_keyed_records_still_replays_and_verifies_byte_for_byte(
        redis_url, stream, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands)

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_keyed(redis, stream, records[:20], per_entry=6)
        await Journal(redis, stream).append(records[20:])  # then the positional kind
        recovered = await recover(Journal(redis, stream), None)
        entries = await redis.xrange(stream)
        await redis.aclose()
        return recovered, entries

    recovered, entries = run(scenario())
    assert [f[b"c"][:2] for _, f in entries] == [b"[{"] * 4 + [b"[["]
    assert recovered.replayed == len(records)
    assert state(recovered.engine) == state(engine)


def test_a_keyed_entry_whose_events_differ_is_still_a_determinism_error(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:12])
    seq, cmd, events = records[-1]
    forged = records[:-1] + [(seq, cmd, events + [MoneyMoved(
        seq=seq, ts=cmd.ts, kind="deposit", ref="forged", currency="BDT", entries=())])]

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await journal_keyed(redis, stream, forged, per_entry=5)
        try:
            await recover(Journal(redis, stream), None)
        finally:
            await redis.aclose()

    with pytest.raises(DeterminismError, match=f"seq {seq} "):
        run(scenario())


def test_restart_loads_the_newest_snapshot_and_replays_only_what_follows(
        redis_url, stream, migrated_database_url, run, trading_commands):
    async def scenario():
        redis = aioredis.from_url(redis_url)
        db = await asyncpg.connect(migrated_database_url)
        store = SnapshotStore(db)
        engine = Engine()
        sequencer = Sequencer(engine, Journal(redis, stream))
        await sequencer.start()
        for cmd in trading_commands[:15]:
            await sequencer.submit(cmd)
        await store.save(*await sequencer.snapshot())
        await asyncio.gather(*(sequencer.submit(cmd) for cmd in trading_commands[15:]))
        await sequencer.stop()

        recovered = await recover(Journal(redis, stream), store)
        recovered_state = state(recovered.engine)
        # The recovered engine carries on where the first left off.
        again = Sequencer(recovered.engine, Journal(redis, stream), last_seq=recovered.last_seq)
        await again.start()
        events = await again.submit(c.Deposit(user="u9", currency="BDT", amount_minor=5,
                                              ref="after-restart"))
        await again.stop()
        await db.close()
        await redis.aclose()
        return engine, recovered, recovered_state, events

    engine, recovered, recovered_state, events = run(scenario())
    assert recovered.snapshot_seq == 15
    assert recovered.replayed == len(trading_commands) - 15
    assert recovered_state == state(engine)
    assert events[0].seq == len(trading_commands) + 1 and isinstance(events[0], MoneyMoved)


@pytest.mark.parametrize("entries_prefetched", [1, 3, 4, 100])
def test_replay_goes_on_past_the_entries_read_while_the_snapshot_was_fetched(
        redis_url, stream, run, engine_records, trading_commands, monkeypatch,
        entries_prefetched):
    # The journal after the snapshot is 4 entries (11..16, 17..22, 23..28, 29..); whether the
    # prefetch stops before, at or after its end, every command is replayed exactly once.
    monkeypatch.setattr("persistence.recovery.PREFETCH_ENTRIES", entries_prefetched)
    engine, records = engine_records(trading_commands[:30])
    snapshot, _ = engine_records(trading_commands[:10])
    store_calls = []

    class Store:
        async def latest_seq(self):
            return 10

        async def at(self, seq):
            store_calls.append(seq)
            return pickle.dumps(snapshot)

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        await journal.append(records[:10])
        for i in range(10, len(records), 6):
            await journal.append(records[i:i + 6])
        recovered = await recover(journal, Store())
        await journal.redis.aclose()
        return recovered

    recovered = run(scenario())
    assert store_calls == [10]
    assert (recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (10, 20, 30)
    assert state(recovered.engine) == state(engine)


def test_a_snapshot_inside_a_journal_entry_replays_the_rest_of_that_entry_verified(
        redis_url, stream, run, engine_records, trading_commands):
    # Entries hold whole batches; a snapshot at seq 10 of a 7..13 entry must replay 11..13 from
    # it, and compare their events byte for byte with that slice of the entry's events.
    engine, records = engine_records(trading_commands)
    snapshot, _ = engine_records(trading_commands[:10])

    class Store:
        async def latest_seq(self):
            return 10

        async def at(self, seq):
            return pickle.dumps(snapshot) if seq == 10 else None

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        for i in range(0, len(records), 6):
            await journal.append(records[i:i + 6])  # entries 1-6, 7-12, 13-18, ...
        recovered = await recover(journal, Store())
        await journal.redis.aclose()
        return recovered

    recovered = run(scenario())
    assert (recovered.snapshot_seq, recovered.replayed) == (10, len(records) - 10)
    assert state(recovered.engine) == state(engine)


def test_a_forged_event_in_the_middle_of_an_entry_names_its_own_command(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:8])
    seq, cmd, events = records[5]  # a deposit, inside an entry holding seqs 4..8
    forged = [MoneyMoved(seq=seq, ts=cmd.ts, kind="deposit", ref=cmd.ref, currency="BDT",
                         entries=(("external", -1), (cmd.user, 1))), *events[1:]]

    async def scenario():
        redis = aioredis.from_url(redis_url)
        journal = Journal(redis, stream)
        await journal.append(records[:3])
        await journal.append([*records[3:5], (seq, cmd, forged), *records[6:]])
        try:
            with pytest.raises(DeterminismError, match=f"^seq {seq} Deposit"):
                await recover(journal, None)
        finally:
            await redis.aclose()

    run(scenario())


def test_replayed_events_that_differ_from_the_journal_raise_determinism_error(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:6])
    seq, cmd, events = records[5]  # a deposit
    forged = list(events)
    forged[0] = MoneyMoved(seq=seq, ts=cmd.ts, kind="deposit", ref=cmd.ref, currency="BDT",
                           entries=(("external", -1), (cmd.user, 1)))

    async def scenario():
        redis = aioredis.from_url(redis_url)
        await Journal(redis, stream).append(records[:5])
        await Journal(redis, stream).append([(seq, cmd, forged)])
        try:
            with pytest.raises(DeterminismError, match=f"seq {seq} Deposit"):
                await recover(Journal(redis, stream), None)
        finally:
            await redis.aclose()

    run(scenario())


def test_a_journal_trimmed_past_the_snapshot_is_refused(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:9])

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        for i in range(0, 9, 3):
            await journal.append(records[i:i + 3])
        await journal.trim_below(4)
        try:
            with pytest.raises(JournalGap):
                await recover(journal, None)
            await journal.trim_below(10)  # everything gone, no snapshot
            with pytest.raises(JournalGap):
                await recover(journal, None)
        finally:
            await journal.redis.aclose()

    run(scenario())


def test_trim_keeps_everything_the_snapshot_or_the_persister_still_needs(
        redis_url, stream, migrated_database_url, run, engine_records, trading_commands):
    engine, records = engine_records(trading_commands[:12])

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        for i in range(0, 12, 2):  # entries end at seqs 2, 4, ..., 12
            await journal.append(records[i:i + 2])
        db = await asyncpg.connect(migrated_database_url)
        store = SnapshotStore(db)
        await save_snapshot(store, engine, 12)
        await trim_journal(journal, store, persisted_seq=7)  # the persister lags
        kept = [seq async for seq, _, _ in journal.read()]
        await db.close()
        await journal.redis.aclose()
        return kept

    kept = run(scenario())
    assert kept[0] <= 8 and kept[-1] == 12  # seqs after 7 are still there for the persister


def test_only_the_newest_snapshots_are_kept(migrated_database_url, run):
    async def scenario():
        db = await asyncpg.connect(migrated_database_url)
        store = SnapshotStore(db)
        for seq in (10, 20, 30, 40):
            await store.save(seq, b"engine-at-%d" % seq, keep=2)
        seqs = [r["seq"] for r in await db.fetch("SELECT seq FROM snapshots ORDER BY seq")]
        latest = await store.latest()
        await db.close()
        return seqs, latest

    seqs, latest = run(scenario())
    assert seqs == [30, 40]
    assert latest == (40, b"engine-at-40")


def test_recovery_hands_its_objects_to_the_permanent_generation_before_collecting_again(
        redis_url, stream, run, engine_records, trading_commands):
    """Everything replay built is young; left in sight, the collector's first pass after
    recovery would scan all of it, so recover() freezes it before re-enabling the collector."""
    import gc

    _, records = engine_records(trading_commands)

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url), stream)
        await journal.append(records)
        recovered = await recover(journal, None)
        await journal.redis.aclose()
        return recovered

    gc.collect()
    try:
        recovered = run(scenario())
        assert gc.isenabled()
        # a position (orders themselves are never tracked: engine/order.py)
        position = next(iter(recovered.engine.orders.values())).pos
        assert gc.is_tracked(position)
        assert not any(o is position for o in gc.get_objects())  # frozen: out of every generation
    finally:
        gc.unfreeze()
    assert any(o is position for o in gc.get_objects())  # what the check above could have found

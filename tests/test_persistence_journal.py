"""The journal: a Redis Stream, one entry per batch with id <last seq>-0, read back in order."""

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import Connection

from engine.codec import encode_events
from persistence.journal import (Journal, JournalWriteError, decode_entry, encode_entry,
                                 xadd_command)


def batches_of(records, *sizes):
    out, i = [], 0
    for size in sizes:
        out.append(records[i:i + size])
        i += size
    assert i == len(records)
    return out


async def journal_for(redis_url, stream):
    return Journal(aioredis.from_url(redis_url), stream)


def test_batches_read_back_as_the_same_records_in_order(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        journal = await journal_for(redis_url, stream)
        for batch in batches_of(records, 1, 7, 12, len(records) - 20):
            await journal.append(batch)
        read = [r async for r in journal.read()]
        entries = await journal.redis.xlen(stream)
        await journal.redis.aclose()
        return read, entries

    read, entries = run(scenario())
    assert read == records
    assert entries == 4  # one stream entry per batch: group commit


def test_read_after_a_seq_inside_a_batch_starts_right_after_it(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:10])

    async def scenario():
        journal = await journal_for(redis_url, stream)
        await journal.append(records[:6])
        await journal.append(records[6:])
        seqs = [seq async for seq, _, _ in journal.read(after_seq=3)]
        await journal.redis.aclose()
        return seqs

    assert run(scenario()) == list(range(4, 11))


def test_raw_read_returns_the_events_bytes_as_journaled(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:12])

    async def scenario():
        journal = await journal_for(redis_url, stream)
        await journal.append(records)
        raw = [r async for r in journal.read_raw()]
        await journal.redis.aclose()
        return raw

    raw = run(scenario())
    assert [(seq, cmd, blob) for seq, cmd, blob in raw] == [
        (seq, cmd, encode_events(events)) for seq, cmd, events in records]


def test_a_duplicate_or_out_of_order_batch_is_refused_and_not_stored(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:6])

    async def scenario():
        journal = await journal_for(redis_url, stream)
        await journal.append(records[:4])
        errors = []
        for batch in (records[:4], records[2:3], records[3:4]):  # same, older, equal last seq
            try:
                await journal.append(batch)
            except JournalWriteError as exc:
                errors.append(exc)
        await journal.append(records[4:])
        read = [r async for r in journal.read()]
        await journal.redis.aclose()
        return errors, read

    errors, read = run(scenario())
    assert len(errors) == 3
    assert read == records


def test_a_batch_must_carry_the_seqs_stamped_on_its_commands(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:2])
    seq, cmd, events = records[1]

    async def scenario():
        journal = await journal_for(redis_url, stream)
        try:
            with pytest.raises(ValueError):
                await journal.append([records[0], (seq + 5, cmd, events)])
        finally:
            await journal.redis.aclose()

    run(scenario())


def test_last_seq_survives_trimming_and_trim_keeps_every_seq_at_or_above_the_mark(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:12])

    async def scenario():
        journal = await journal_for(redis_url, stream)
        empty_last = await journal.last_seq()
        for batch in batches_of(records, 3, 3, 3, 3):  # entries end at seqs 3, 6, 9, 12
            await journal.append(batch)
        trimmed = await journal.trim_below(7)
        seqs = [seq async for seq, _, _ in journal.read()]
        last = await journal.last_seq()
        await journal.trim_below(13)
        last_after_trimming_all = await journal.last_seq()
        await journal.redis.aclose()
        return empty_last, trimmed, seqs, last, last_after_trimming_all

    empty_last, trimmed, seqs, last, last_after_trimming_all = run(scenario())
    assert empty_last == 0
    assert trimmed == 2  # entries ending at 3 and 6
    assert seqs == list(range(7, 13))
    assert last == last_after_trimming_all == 12


def test_a_client_decoding_responses_is_refused(redis_url, stream):
    with pytest.raises(ValueError):
        Journal(aioredis.from_url(redis_url, decode_responses=True), stream)


# -- the XADD as pre-encoded RESP, on a connection of the client's pool ---------------------------


def test_an_entry_written_as_raw_resp_holds_exactly_the_encoded_fields(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands)

    async def scenario():
        journal = await journal_for(redis_url, stream)
        await journal.append(records[:9])
        await journal.append(records[9:])
        entries = await journal.redis.xrange(stream)
        await journal.redis.aclose()
        return entries

    entries = run(scenario())
    assert [entry_id for entry_id, _ in entries] == [b"9-0", f"{len(records)}-0".encode()]
    for (_, fields), batch in zip(entries, (records[:9], records[9:])):
        assert fields == {k.encode(): v for k, v in encode_entry(batch).items()}


def test_an_entry_decodes_to_its_records_and_one_without_events_for_each_command_is_refused(
        engine_records, trading_commands):
    _, records = engine_records(trading_commands)
    fields = {k.encode(): v for k, v in encode_entry(records).items()}
    assert decode_entry(fields) == records
    cut = encode_entry(records[:-1])
    for mismatched in ({b"c": fields[b"c"], b"e": cut["e"]}, {b"c": cut["c"], b"e": fields[b"e"]}):
        with pytest.raises(ValueError, match="events for"):
            decode_entry(mismatched)


def test_xadd_command_is_the_resp_array_redis_py_would_send(engine_records, trading_commands):
    _, records = engine_records(trading_commands[:5])
    fields = encode_entry(records)
    packed = b"".join(Connection().pack_command(
        "XADD", "a:stream", "5-0", "c", fields["c"], "e", fields["e"]))
    assert b"".join(xadd_command(b"a:stream", records)) == packed


def test_the_client_settings_hold_for_the_journal_connection_db_and_name(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:4])
    name = f"journal-{stream.split(':')[1]}"

    async def scenario():
        journal = Journal(aioredis.from_url(redis_url, db=3, client_name=name), stream)
        await journal.append(records)
        other_db = aioredis.from_url(redis_url, db=3)
        db3 = await other_db.xlen(stream)
        db0 = await aioredis.from_url(redis_url).exists(stream)
        clients = await other_db.client_list()
        open_named = sum(1 for client in clients if client["name"] == name)
        await journal.redis.aclose()  # closing the client closes the journal's connection too
        await asyncio.sleep(0.05)
        closed_named = sum(1 for client in await other_db.client_list() if client["name"] == name)
        await other_db.delete(stream)
        await other_db.aclose()
        return db3, db0, open_named, closed_named

    db3, db0, open_named, closed_named = run(scenario())
    assert (db3, db0) == (1, 0)
    assert open_named >= 1 and closed_named == 0


def test_a_journal_whose_connection_was_killed_reconnects_for_the_next_batch(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:10])

    async def scenario():
        journal = await journal_for(redis_url, stream)
        await journal.append(records[:4])
        admin = aioredis.from_url(redis_url)
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await journal.append(records[4:])  # the client's retry policy reconnects and resends
        read = [r async for r in journal.read()]
        await admin.aclose()
        await journal.redis.aclose()
        return killed, read

    killed, read = run(scenario())
    assert killed >= 1
    assert read == records


def test_no_redis_to_reach_is_a_journal_write_error(tmp_path, run, engine_records,
                                                     trading_commands):
    _, records = engine_records(trading_commands[:2])

    async def scenario():
        redis = aioredis.from_url(f"unix://{tmp_path}/nobody.sock", retry=Retry(NoBackoff(), 1))
        try:
            with pytest.raises(JournalWriteError):
                await Journal(redis, "test:unreachable").append(records)
        finally:
            await redis.aclose()

    run(scenario())


def test_a_write_redis_does_not_answer_in_time_is_a_journal_write_error_and_the_next_goes_through(
        redis_url, stream, run, engine_records, trading_commands):
    _, records = engine_records(trading_commands[:8])

    async def scenario():
        redis = aioredis.from_url(redis_url, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
        journal = Journal(redis, stream)
        admin = aioredis.from_url(redis_url)
        await journal.append(records[:2])
        await admin.execute_command("CLIENT", "PAUSE", "1000", "WRITE")  # XADD waits, unanswered
        try:
            with pytest.raises(JournalWriteError):
                await journal.append(records[2:5])
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        # the timed-out XADD may or may not have landed (JournalWriteError says so); a later
        # batch goes out on a fresh connection and its reply is its own, not the stale one
        await journal.append(records[5:])
        last = await journal.last_seq()
        await admin.aclose()
        await redis.aclose()
        return last

    assert run(scenario()) == 8

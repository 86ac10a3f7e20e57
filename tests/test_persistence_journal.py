"""The journal: a Redis Stream, one entry per batch with id <last seq>-0, read back in order."""

import pytest
import redis.asyncio as aioredis

from engine.codec import encode_events
from persistence.journal import Journal, JournalWriteError


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

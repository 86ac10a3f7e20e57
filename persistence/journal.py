"""The journal: a Redis Stream holding every command the engine applied, with its events.

Shape, chosen by measurement (bench/journal_shapes.py, appendfsync always): ONE stream entry per
batch, id `<last seq of the batch>-0`, fields `c0, e0, c1, e1, ...` holding each command and its
events as engine.codec bytes. One XADD per batch is one fsync and one round trip, commits 2-3x
more commands/s than pipelining an XADD per command at batches of 100-500, reads back faster,
and is atomic: a batch is in the journal completely or not at all.

Because ids are explicit and Redis only accepts ids above the stream's top, a duplicate or
out-of-order append (a second writer, a replayed batch) is refused, never stored twice.
Every record's seq is the seq stamped on its command.
"""

from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from engine.codec import decode_command, decode_events, encode_command, encode_events
from engine.commands import Command
from engine.events import Event

STREAM = "backlay:journal"
READ_COUNT_MAX = 50  # entries per XRANGE during replay; each holds up to a batch of commands

Record = tuple[int, Command, list[Event]]


class JournalWriteError(Exception):
    """Redis did not confirm the batch: it may or may not be in the journal."""


def entry_id_seq(entry_id: bytes | str) -> int:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.partition("-")[0])


def encode_entry(batch: list[Record]) -> dict[str, bytes]:
    fields = {}
    previous = None
    for i, (seq, cmd, events) in enumerate(batch):
        if cmd.seq != seq or (previous is not None and seq <= previous):
            raise ValueError(f"batch seqs must rise and match their commands: {seq} {cmd.seq}")
        previous = seq
        fields[f"c{i}"] = encode_command(cmd)
        fields[f"e{i}"] = encode_events(events)
    return fields


def entry_raw_records(fields: dict) -> list[tuple[Command, bytes]]:
    """(command, events as stored) for each command of an entry, in order."""
    records = []
    i = 0
    while (cmd := fields.get(f"c{i}".encode())) is not None:
        records.append((decode_command(cmd), fields[f"e{i}".encode()]))
        i += 1
    return records


def decode_entry(fields: dict) -> list[Record]:
    return [(cmd.seq, cmd, decode_events(events)) for cmd, events in entry_raw_records(fields)]


class Journal:
    def __init__(self, redis: aioredis.Redis, stream: str = STREAM):
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the journal stores bytes: use a client without decode_responses")
        self.redis = redis
        self.stream = stream

    async def append(self, batch: list[Record]) -> None:
        """Write a batch in one round trip; returns only once Redis confirmed it (fsynced, with
        appendfsync always). Raises JournalWriteError otherwise."""
        if not batch:
            return
        fields = encode_entry(batch)
        try:
            await self.redis.xadd(self.stream, fields, id=f"{batch[-1][0]}-0")
        except (aioredis.RedisError, OSError) as exc:
            raise JournalWriteError(f"journal append of seq {batch[0][0]}..{batch[-1][0]} "
                                    f"failed: {exc}") from exc

    async def read_raw(self, after_seq: int = 0) -> AsyncIterator[tuple[int, Command, bytes]]:
        """(seq, command, events exactly as journaled) for every seq > after_seq, in order."""
        # An entry's id is its batch's last seq, so the first entry with id > after_seq is the
        # first holding a seq > after_seq; it may also hold earlier seqs, skipped below.
        start = f"{after_seq + 1}-0"
        while True:
            entries = await self.redis.xrange(self.stream, min=start, count=READ_COUNT_MAX)
            if not entries:
                return
            for _, fields in entries:
                for cmd, events in entry_raw_records(fields):
                    if cmd.seq > after_seq:
                        yield cmd.seq, cmd, events
            start = "(" + entries[-1][0].decode()

    async def read(self, after_seq: int = 0) -> AsyncIterator[Record]:
        """(seq, command, events) for every seq > after_seq, in order: what replay needs."""
        async for seq, cmd, events in self.read_raw(after_seq):
            yield seq, cmd, decode_events(events)

    async def last_seq(self) -> int:
        """The highest seq ever appended (still known after trimming), 0 for a new journal."""
        try:
            info = await self.redis.xinfo_stream(self.stream)
        except aioredis.ResponseError:  # no such key
            return 0
        return entry_id_seq(info["last-generated-id"])

    async def trim_below(self, seq: int) -> int:
        """Drop entries whose commands all have seq < `seq`; returns how many entries went."""
        return await self.redis.xtrim(self.stream, minid=f"{seq}-0", approximate=False)

"""The journal: a Redis Stream holding every command the engine applied, with its events.

Shape, chosen by measurement (bench/journal_shapes.py, appendfsync always): ONE stream entry per
batch, id `<last seq of the batch>-0`, two fields: `c`, the batch's commands as one JSON array
of records, and `e`, their events as one JSON array holding each command's array of event
records (engine.codec). One XADD per batch is one fsync and one round trip, commits 2-3x more
commands/s than pipelining an XADD per command at batches of 100-500, reads back faster, and is
atomic: a batch is in the journal completely or not at all. Two fields instead of two per
command cut the sequencer's encoding and packing cost per command by about three quarters
(bench/journal.py), and let replay compare a whole batch's events in one byte comparison.

Because ids are explicit and Redis only accepts ids above the stream's top, a duplicate or
out-of-order append (a second writer, a replayed batch) is refused, never stored twice.
Every record's seq is the seq stamped on its command.

The XADD itself goes out as pre-encoded RESP (`xadd_command`: a few small headers around the two
encoded fields, sent with one writelines, nothing copied) on a connection the journal takes from
the client's own pool and keeps (persistence/resp.py): so the client's settings hold (unix socket or host/port, TLS,
password, db, socket timeout, retry policy) and closing the client closes it too. redis-py's
`xadd` packed the command again, borrowed and returned a pool connection and, with a socket
timeout set, sent from a task of its own under asyncio.wait_for, for every batch (session 8,
docs/benchmarks.md). Failures are what they were: a connection error or a timeout (the client's
socket timeout; retried only as the client's connections retry, and from_url's do not) raises
JournalWriteError, as does an error reply (a duplicate id), and a connection the server closed
between batches is reopened before the next one, as the pool did.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from engine.codec import (decode_batch, decode_commands, decode_event_lists, encode_commands,
                          encode_event_lists, is_keyed)
from engine.commands import Command
from engine.events import Event
from persistence.resp import KeptConnection

STREAM = "backlay:journal"
READ_COUNT_MAX = 50  # entries per XRANGE during replay; each holds up to a batch of commands

Record = tuple[int, Command, list[Event]]


class JournalWriteError(Exception):
    """Redis did not confirm the batch: it may or may not be in the journal."""


def entry_id_seq(entry_id: bytes | str) -> int:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.partition("-")[0])


def _checked_commands(batch: list[Record]) -> list[Command]:
    """The batch's commands, once its seqs are checked: rising, each its command's seq."""
    commands = []
    add = commands.append
    previous = 0
    for seq, cmd, _ in batch:
        if cmd.seq != seq or seq <= previous:
            raise ValueError(f"batch seqs must rise and match their commands: {seq} {cmd.seq}")
        previous = seq
        add(cmd)
    return commands


def encode_entry(batch: list[Record]) -> dict[str, bytes]:
    return {"c": encode_commands(_checked_commands(batch)),
            "e": encode_event_lists([events for _, _, events in batch])}


def xadd_command(stream: bytes, batch: list[Record]) -> list[bytes]:
    """`XADD <stream> <last seq>-0 c <commands> e <events>` as RESP, in pieces for writelines:
    the encoded fields are sent as they are, never copied into one buffer."""
    c = encode_commands(_checked_commands(batch))
    e = encode_event_lists([events for _, _, events in batch])
    entry_id = b"%d-0" % batch[-1][0]
    return [b"*7\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$1\r\nc\r\n$%d\r\n"
            % (len(stream), stream, len(entry_id), entry_id, len(c)),
            c, b"\r\n$1\r\ne\r\n$%d\r\n" % len(e), e, b"\r\n"]


def entry_commands(fields: dict) -> list[Command]:
    """An entry's commands, in order, without decoding its events (most of its bytes)."""
    return decode_commands(fields[b"c"])


def decode_entry(fields: dict) -> list[Record]:
    return decode_batch(fields[b"c"], fields[b"e"])


@dataclass(frozen=True, slots=True)
class JournaledBatch:
    """The commands of one entry (those after the seq asked for) and their events exactly as
    journaled: `events` equals codec.encode_event_lists of what the commands yielded."""

    commands: list[Command]
    events: bytes
    keyed: bool = False  # an old entry's keyed records: compare with encode_event_lists(keyed=True)


class Journal:
    def __init__(self, redis: aioredis.Redis, stream: str = STREAM):
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the journal stores bytes: use a client without decode_responses")
        self.redis = redis
        self.stream = stream
        self._stream_bytes = stream.encode()
        self._connection = KeptConnection(redis)  # one XADD in flight, its reply read next

    async def append(self, batch: list[Record]) -> None:
        """Write a batch in one round trip; returns only once Redis confirmed it (fsynced, with
        appendfsync always). Raises JournalWriteError otherwise."""
        if not batch:
            return
        command = xadd_command(self._stream_bytes, batch)
        try:
            reply, = await self._connection.execute(command)
        except (aioredis.RedisError, OSError) as exc:
            raise JournalWriteError(f"journal append of seq {batch[0][0]}..{batch[-1][0]} "
                                    f"failed: {exc}") from exc
        if reply != b"%d-0" % batch[-1][0]:  # Redis answers an XADD with the id it stored
            raise JournalWriteError(f"journal append of seq {batch[0][0]}..{batch[-1][0]}: "
                                    f"Redis replied {reply!r}")

    async def read_batches(self, after_seq: int = 0) -> AsyncIterator[JournaledBatch]:
        """Every command with seq > after_seq, in order, one entry at a time: what replay
        needs."""
        # An entry's id is its batch's last seq, so the first entry with id > after_seq is the
        # first holding a seq > after_seq; it may also hold earlier seqs, cut off below.
        start = f"{after_seq + 1}-0"
        while True:
            entries = await self.redis.xrange(self.stream, min=start, count=READ_COUNT_MAX)
            if not entries:
                return
            for _, fields in entries:
                commands = entry_commands(fields)
                events = fields[b"e"]
                if commands and commands[0].seq <= after_seq:
                    keep = next((i for i, cmd in enumerate(commands) if cmd.seq > after_seq),
                                len(commands))
                    commands = commands[keep:]
                    events = orjson.dumps(orjson.loads(events)[keep:])
                if commands:
                    yield JournaledBatch(commands, events, is_keyed(fields[b"c"]))
            start = "(" + entries[-1][0].decode()

    async def read_raw(self, after_seq: int = 0) -> AsyncIterator[tuple[int, Command, bytes]]:
        """(seq, command, its events as journaled JSON) for every seq > after_seq, in order."""
        async for batch in self.read_batches(after_seq):
            for cmd, events in zip(batch.commands, orjson.loads(batch.events), strict=True):
                yield cmd.seq, cmd, orjson.dumps(events)

    async def read(self, after_seq: int = 0) -> AsyncIterator[Record]:
        """(seq, command, events) for every seq > after_seq, in order."""
        async for batch in self.read_batches(after_seq):
            for cmd, events in zip(batch.commands, decode_event_lists(batch.events), strict=True):
                yield cmd.seq, cmd, events

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

"""The wire between gateways and shards: Redis Streams carrying batches of small records.

Streams (names under `prefix`, settings.wire_prefix):

  <prefix>:cmd:<shard>     to a shard: requests and commands from gateways, transfers from shards
  <prefix>:out:<gateway>   to a gateway: replies, pushes and call results from every shard
  <prefix>:md:<shard>      market data: each changed market's state, read by every gateway
  <prefix>:mdimg:<shard>   a hash, market -> its latest state: a starting gateway's images

One stream entry carries every record one process had for that stream in one loop turn (or
while its previous write was in flight): fields `s` (sender), `e` (its epoch: a restarted
process is a new epoch), `n` (the sender's count of entries to this stream, so a reader sees a
lost entry as a gap) and `b`, the records, each a header (connection or correlation id, kind,
payload length) and the payload: a frame's JSON as the client will get it, a request's JSON, or
an engine.codec command record. Frames are never re-encoded on the way.

A writer has one write in flight at a time and keeps its records in the order they were added,
so every reader sees one sender's records in the order the sender produced them. Streams are
capped (`MAXLEN ~`): a reader that falls that far behind sees a gap and resynchronises.
"""

import asyncio
import logging
import struct
from collections.abc import Callable, Iterator

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from persistence.resp import KeptConnection, bulk

log = logging.getLogger(__name__)

# gateway -> shard
OPEN = 1  # a connection's session on this shard: payload {"user", "roles", "cod"}
ORDER = 2  # place, cancel or replace: payload [request id, command record]
REQUEST = 3  # any other engine op: payload the request object (a slip's legs added)
CLOSE = 4  # the connection is gone: run its dead-man switch, forget its session
CALL = 5  # a named read or command (calls.py): conn = correlation id, payload [name, args]
ORDER_FUNDED = 6  # an ORDER sent back after FUNDS_NEEDED: place it whatever the funds
REQUEST_FUNDED = 7  # a REQUEST (slip.place) sent back after FUNDS_NEEDED
# shard -> gateway
FRAME = 16  # a frame for the connection
REPLY = 17  # a frame that answers one of the connection's requests
ANSWERED = 18  # one of its requests answered without a frame
DROPPABLE = 19  # a frame the gateway may drop for a slow client (exposure pictures)
RESULT = 20  # a call's outcome: conn = correlation id, payload [true, value] or [false, error]
# a place (or slip) the bettor's wallet on this shard cannot cover, held with every later request
# of the connection until it comes back funded: payload [[[currency, shortfall], ...], kind],
# a newline, and the held record's payload (funding.py)
FUNDS_NEEDED = 21
# shard -> shard (funding.py)
TRANSFER_IN = 32  # credit a transfer another shard debited: payload the command record
TRANSFER_CONFIRMED = 33  # the destination credited it: payload [transfer id]

_HEADER = struct.Struct("<QBI")  # connection (or correlation) id, kind, payload length
HEADER_BYTES = _HEADER.size
STREAM_MAXLEN = 200_000  # entries kept per stream (approximately): a reader's slack
WRITE_ATTEMPTS = 5
WRITE_RETRY_S = 0.2

Record = tuple[int, int, bytes]


def names(prefix: str):
    """Stream names as bytes."""
    return _Names(prefix)


class _Names:
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def cmd(self, shard: int) -> bytes:
        return f"{self.prefix}:cmd:{shard}".encode()

    def out(self, gateway: str) -> bytes:
        return f"{self.prefix}:out:{gateway}".encode()

    def md(self, shard: int) -> bytes:
        return f"{self.prefix}:md:{shard}".encode()

    def md_images(self, shard: int) -> bytes:
        return f"{self.prefix}:mdimg:{shard}".encode()

    def alive(self, process: str) -> str:
        """A key a live process keeps refreshing (value: its epoch); gone = presumed dead."""
        return f"{self.prefix}:alive:{process}"

    def epoch(self, process: str) -> str:
        """A counter: each start of `process` takes the next epoch."""
        return f"{self.prefix}:epoch:{process}"

    def shard_count(self) -> str:
        return f"{self.prefix}:shards"


def pack(records: list[Record]) -> bytes:
    parts = []
    add = parts.append
    header = _HEADER.pack
    for conn, kind, payload in records:
        add(header(conn, kind, len(payload)))
        add(payload)
    return b"".join(parts)


def unpack(data: bytes) -> Iterator[Record]:
    header = _HEADER.unpack_from
    at, end = 0, len(data)
    while at < end:
        conn, kind, size = header(data, at)
        at += HEADER_BYTES
        yield conn, kind, data[at:at + size]
        at += size


class Writer:
    """Records for any number of streams, written in the order they were added: everything
    added in one loop turn (and while the previous write was in flight) goes out as one entry
    per stream, all in one pipelined round trip, hand-encoded (`xadd_command`, as the journal's
    XADD) on a connection the writer keeps (persistence/resp.py).

    A write Redis does not confirm is retried a few times (XADD with an auto id may then store
    an entry twice: the entry count `n` lets the reader drop the repeat); after that `on_failure`
    is called: the process can no longer tell anyone anything and must fail-stop."""

    def __init__(self, redis: aioredis.Redis, sender: str, epoch: int,
                 on_failure: Callable[[BaseException], None],
                 maxlen: int = STREAM_MAXLEN, late: frozenset[bytes] = frozenset()) -> None:
        self.redis = redis
        # the writes go out hand-encoded on a connection of their own (half redis-py's CPU)
        self._connection = KeptConnection(redis)
        self._heads: dict[bytes, bytes] = {}  # per stream: its XADD up to the entry count
        # streams written after the others of the same round trip: market data, which must
        # never be seen before a reply queued ahead of it
        self.late = late
        self._hashes: dict[bytes, dict[bytes, bytes]] = {}
        self.sender = sender.encode()
        self.epoch = b"%d" % epoch
        self.on_failure = on_failure
        self.maxlen = maxlen
        self._records: dict[bytes, list[Record]] = {}
        self._counts: dict[bytes, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.failed = False
        self._closing = False
        self.entries_written = 0
        self.records_written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wire-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await asyncio.gather(self._task, return_exceptions=True)

    def records(self, stream: bytes) -> list[Record]:
        """The records queued for `stream` this turn, to append to (the caller may still change
        the last one: a frame that turns out to be a reply)."""
        records = self._records.get(stream)
        if records is None:
            records = self._records[stream] = []
            self._wake.set()
        return records

    def add(self, stream: bytes, conn: int, kind: int, payload: bytes = b"") -> None:
        self.records(stream).append((conn, kind, payload))

    def set_field(self, key: bytes, field: bytes, value: bytes) -> None:
        """HSET, written after this round's stream entries."""
        self._hashes.setdefault(key, {})[field] = value
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._records = self._records, {}
            hashes, self._hashes = self._hashes, {}
            if batch or hashes:
                try:
                    await self._write(batch, hashes)
                except Exception as exc:
                    self.failed = True
                    log.critical("wire: writing to Redis failed for good: %r", exc)
                    self.on_failure(exc)
                    return
            if self._closing and not self._records:
                return

    def entries(self, batch: dict[bytes, list[Record]]) -> list[tuple[bytes, dict]]:
        """One entry per stream, in the order they are written: the late streams last."""
        entries = []
        for stream, records in sorted(batch.items(), key=lambda item: item[0] in self.late):
            n = self._counts.get(stream, 0) + 1
            self._counts[stream] = n
            entries.append((stream, {b"s": self.sender, b"e": self.epoch, b"n": b"%d" % n,
                                     b"b": pack(records)}))
            self.records_written += len(records)
        return entries

    def xadd_command(self, stream: bytes, fields: dict) -> list[bytes]:
        """`XADD <stream> MAXLEN ~ <maxlen> * s <sender> e <epoch> n <n> b <records>` as RESP,
        what redis-py's xadd sent, in pieces for writelines (the records are not copied)."""
        head = self._heads.get(stream)
        if head is None:
            head = self._heads[stream] = b"*14\r\n$4\r\nXADD\r\n" + b"".join(map(bulk, (
                stream, b"MAXLEN", b"~", b"%d" % self.maxlen, b"*", b"s", self.sender, b"e",
                self.epoch, b"n")))
        n, data = fields[b"n"], fields[b"b"]
        return [head, b"$%d\r\n%b\r\n$1\r\nb\r\n$%d\r\n" % (len(n), n, len(data)), data,
                b"\r\n"]

    async def _write(self, batch: dict[bytes, list[Record]],
                     hashes: dict[bytes, dict[bytes, bytes]]) -> None:
        entries = self.entries(batch)
        pieces = []
        for stream, fields in entries:
            pieces += self.xadd_command(stream, fields)
        for key, mapping in hashes.items():
            pieces.append(hset_command(key, mapping))
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                await self._connection.execute(pieces, len(entries) + len(hashes))
                break
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
                if attempt == WRITE_ATTEMPTS:
                    raise
                await asyncio.sleep(WRITE_RETRY_S)
        self.entries_written += len(entries)


def hset_command(key: bytes, mapping: dict[bytes, bytes]) -> bytes:
    """`HSET <key> <field> <value> ...` as RESP."""
    return b"*%d\r\n$4\r\nHSET\r\n%b%b" % (2 + 2 * len(mapping), bulk(key), b"".join(
        bulk(field) + bulk(value) for field, value in mapping.items()))


class Reader:
    """XREAD for one reading loop, hand-encoded on a connection of its own, as the Writer's
    XADDs (persistence/resp.py): what redis-py's xread returned, at half its CPU."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._connection = KeptConnection(redis)

    async def read(self, cursors: dict[bytes, bytes], count: int,
                   block_ms: int) -> list[tuple[bytes, list[tuple[bytes, dict]]]]:
        """The entries after each stream's cursor, [(stream, [(id, fields), ...]), ...] for the
        streams that have some, waiting up to `block_ms` for one."""
        args = (b"COUNT", b"%d" % count, b"BLOCK", b"%d" % block_ms, b"STREAMS", *cursors,
                *cursors.values())
        reply, = await self._connection.execute(
            [b"*%d\r\n$5\r\nXREAD\r\n%b" % (len(args) + 1, b"".join(map(bulk, args)))])
        if not reply:  # nothing came in time
            return []
        if isinstance(reply, dict):  # RESP3 answers with a map of streams, RESP2 with pairs
            reply = reply.items()
        return [(stream, [(entry_id, dict(zip(fields[::2], fields[1::2])))
                          for entry_id, fields in entries]) for stream, entries in reply]


class Entry:
    """One stream entry as read: who sent it and its records."""

    __slots__ = ("sender", "epoch", "n", "data")

    def __init__(self, fields: dict) -> None:
        self.sender = fields[b"s"].decode()
        self.epoch = int(fields[b"e"])
        self.n = int(fields[b"n"])
        self.data = fields[b"b"]

    def records(self) -> Iterator[Record]:
        return unpack(self.data)


OK, NEW, REPEAT, GAP = "ok", "new", "repeat", "gap"


class Sequence:
    """Per sender: the entries seen. `check` says OK (the next one), NEW (the first seen of this
    sender, or of a new epoch of it: it restarted), REPEAT (a retried write stored twice, or an
    entry of an epoch already over: skip it) or GAP (entries were lost: resynchronise)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int]] = {}

    def check(self, entry: Entry) -> str:
        seen = self._seen.get(entry.sender)
        if seen is not None and (entry.epoch < seen[0]
                                 or (entry.epoch == seen[0] and entry.n <= seen[1])):
            return REPEAT
        self._seen[entry.sender] = (entry.epoch, entry.n)
        if seen is None or entry.epoch > seen[0]:
            return NEW
        return OK if entry.n == seen[1] + 1 else GAP

    def forget(self, sender: str) -> None:
        self._seen.pop(sender, None)


async def next_epoch(journal_redis_url: str, key: str) -> int:
    """This start's epoch: a counter in the journal's Redis, which keeps it across restarts (the
    wire's may not), so a restarted process always has a higher epoch than before."""
    redis = aioredis.from_url(journal_redis_url)
    try:
        return int(await redis.incr(key))
    finally:
        await redis.aclose()


async def last_id(redis: aioredis.Redis, stream: bytes) -> bytes:
    """The id of the stream's newest entry ("0-0" if none): reading after it sees only what
    comes next."""
    newest = await redis.xrevrange(stream, count=1)
    return newest[0][0] if newest else b"0-0"


class WireCounters(Collector):
    """/metrics: the entries and records this process wrote to and read from the wire."""

    def __init__(self, writer: Writer, read: Callable[[], tuple[int, int]]) -> None:
        self.writer = writer
        self.read = read  # () -> (entries, records) read so far

    def collect(self):
        entries_read, records_read = self.read()
        for name, doc, value in (
                ("backlay_wire_entries_written", "Stream entries written (one XADD each)",
                 self.writer.entries_written),
                ("backlay_wire_records_written", "Records written, in those entries",
                 self.writer.records_written),
                ("backlay_wire_entries_read", "Stream entries read", entries_read),
                ("backlay_wire_records_read", "Records read", records_read)):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            yield family

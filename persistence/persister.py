"""The persister: a Redis consumer group that folds the journal into Postgres.

Each read of entries becomes one Postgres transaction: lock the `persisted` row, drop records at
or below persisted_seq (so a redelivered entry changes nothing), fold the rest into the read
model and raise persisted_seq, commit, and only then XACK. A crash anywhere in between leaves
entries pending; they are delivered again and skipped or folded, never doubled.

Commits are asynchronous (`synchronous_commit = off`): a fold's COMMIT returns before its WAL
is on disk, and Postgres's WAL writer flushes it within a few hundred milliseconds. Entries are
acknowledged, and `persisted_seq` (what the journal may be trimmed below) raised, only once the
WAL is flushed past the fold's commit; so a Postgres crash that forgets the last commits loses
nothing: their entries are still pending and are folded again. Why not a flush per commit: on
one machine the read model's WAL flushes and the journal's fsyncs share the disk, and every
flush the persister waited for showed up in the trading path's ack latency (bench/e2e.py p99
at 2,000 orders/s: about 10 ms with them, 5 ms without).

On start, entries pending for another consumer (a crashed persister under a different name) are
taken over with XAUTOCLAIM. One persister per stream is the design; the row lock keeps a second
one from doing harm, not from wasting work.

An entry that fails on its own (not because Postgres is unreachable) more than `attempts_max`
times is copied to the dead-letter stream, acknowledged, and skipped with a CRITICAL log line:
the read model then lacks it until someone replays it by hand. A gap in seqs (a missing entry)
is never skipped: the persister stalls and says so, because folding past it would lose rows.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis


from .fold import UnknownEvent, fold
from .journal import STREAM, Record, decode_entry, entry_commands, entry_id_seq
from .readmodel import ReadModelMismatch, read_persisted, write_changes, write_persisted

log = logging.getLogger(__name__)

GROUP = "persister"
READ_COUNT_MAX = 50  # entries per transaction; each entry holds up to a sequencer batch
READ_BLOCK_MS = 1000
# Once caught up, start transactions at most this often. Without it every
# small entry (a sequencer batch at a few thousand orders/s holds a handful of commands) was
# a transaction of its own: ~8 round trips and a WAL flush each, which kept Postgres busy on
# most of a core (bench/e2e.py) that the trading process needed. Costs up to this much lag.
COMMIT_INTERVAL_S = 0.05
ATTEMPTS_MAX = 5
CLAIM_MIN_IDLE_MS = 0  # at start every pending entry is stale: its persister is gone
BACKOFF_MAX_S = 2.0
ACK_POLL_MS = 100  # while folds wait for their WAL flush: how often to ask whether it happened
# Byte positions in the WAL: how far it is written (past our last commit) and flushed to disk.
_WAL_POSITIONS = ("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint,"
                  " (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
_WAL_FLUSHED = "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint"

# Failures that are the entry's own fault, so retrying cannot help: only these count towards
# dead-lettering. Anything else (Postgres down, restarting, out of disk; Redis unreachable) is
# retried forever with backoff: an outage must never push good entries into the dead letters.
_POISON = (ReadModelMismatch, UnknownEvent, asyncpg.DataError,
           asyncpg.IntegrityConstraintViolationError, ValueError, KeyError, TypeError)
_UNREACHABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.OperatorInterventionError, aioredis.ConnectionError,
                aioredis.TimeoutError)


class SeqGap(Exception):
    """Entries between persisted_seq and the next delivered one are missing."""


@dataclass(frozen=True, slots=True)
class Lag:
    seqs: int  # commands journaled but not yet in Postgres
    seconds: float  # age of the oldest of them


def _clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Persister:
    def __init__(self, redis: aioredis.Redis, database_url: str, *, stream: str = STREAM,
                 group: str = GROUP, consumer: str = "persister-1",
                 dead_letter_stream: str | None = None, read_count_max: int = READ_COUNT_MAX,
                 read_block_ms: int = READ_BLOCK_MS, attempts_max: int = ATTEMPTS_MAX,
                 claim_min_idle_ms: int = CLAIM_MIN_IDLE_MS,
                 commit_interval_s: float = COMMIT_INTERVAL_S,
                 clock_ms: Callable[[], int] = _clock_ms):
        self.redis = redis
        self.database_url = database_url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dead_letter_stream = dead_letter_stream or f"{stream}:dead"
        self.read_count_max = read_count_max
        self.read_block_ms = read_block_ms
        self.attempts_max = attempts_max
        self.claim_min_idle_ms = claim_min_idle_ms
        self.commit_interval_s = commit_interval_s
        self.clock_ms = clock_ms
        self.persisted_seq = 0  # durable in Postgres and acknowledged: safe to trim below
        self.persisted_ts_ms = 0
        self.committed_seq = 0  # folded and committed, visible to readers, maybe not on disk yet
        # folds committed but not yet known to be on disk: (WAL position past the commit,
        # persisted seq and ts after it, entry ids), oldest first
        self._awaiting_flush: deque[tuple[int, int, int, list]] = deque()
        self.dead_lettered = 0
        self.transactions = 0  # committed folds (each one or more entries)
        self._conn: asyncpg.Connection | None = None
        self._failures: dict[bytes, int] = {}
        self._cursor = "0"  # "0": our pending entries first; ">" once they are done
        self._task: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.prepare()
        self._task = asyncio.create_task(self.run(), name="persister")

    @property
    def alive(self) -> bool:
        """Started and still running its loop."""
        return self._task is not None and not self._task.done()

    async def prepare(self) -> None:
        """Create the group if needed, load persisted_seq, take over stale pending entries."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        conn = await self._connection()
        self.persisted_seq, self.persisted_ts_ms = await read_persisted(conn)
        self.committed_seq = self.persisted_seq
        await self._claim_stale()
        self._cursor = "0"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self.make_durable()
        except Exception as exc:  # still pending in the stream: the next persister folds them
            log.warning("persister: could not flush the last folds at stop: %r", exc)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def run(self) -> None:
        backoff_s = 0.05
        loop = asyncio.get_running_loop()
        while True:
            try:
                started = loop.time()
                handled = await self.step()
                backoff_s = 0.05
                if 0 < handled < self.read_count_max:
                    # caught up: let the next entries gather, so that transactions start at
                    # most every commit_interval_s; a fold that took longer waits for nothing
                    await asyncio.sleep(self.commit_interval_s - (loop.time() - started))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, _UNREACHABLE):
                    log.warning("persister: storage unreachable (%r); retrying in %.2fs",
                                exc, backoff_s)
                    await self._drop_connection()
                else:
                    log.exception("persister step failed; retrying in %.2fs", backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)

    # -- one step -----------------------------------------------------------------------------

    async def step(self, block_ms: int | None = None) -> int:
        """Read one set of entries and persist it; returns how many entries were handled."""
        block = self.read_block_ms if block_ms is None else block_ms
        conn = await self._connection()  # first: a new one decides where reading resumes
        if self._awaiting_flush:
            block = min(block, ACK_POLL_MS)
        # "0", then the last id read: our own pending entries (a crashed predecessor's, or
        # ones that failed) before new ones; folds awaiting their flush are pending too
        entries = await self._read(self._cursor) if self._cursor != ">" else []
        if entries:
            self._cursor = entries[-1][0]
        else:
            self._cursor = ">"  # our pending backlog is done; from now on, new entries
            entries = await self._read(">", block)
        if entries:
            try:
                await self._persist_entries(entries)
            except BaseException:
                self._cursor = "0"  # what failed is still pending: read it again first
                raise
        elif self._awaiting_flush:
            await self._acknowledge_flushed(await conn.fetchval(_WAL_FLUSHED))
        return len(entries)

    async def _read(self, cursor: str, block_ms: int | None = None) -> list:
        reply = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: cursor},
                                            count=self.read_count_max, block=block_ms)
        return reply[0][1] if reply else []

    async def _persist_entries(self, entries: list) -> None:
        try:
            await self._persist(entries)
            return
        except _POISON as exc:
            if len(entries) == 1:
                if not await self._count_failure(entries[0], exc):
                    raise
                return
        # Find the entry that fails on its own: the ones before it go through, it is counted
        # (and dead-lettered at attempts_max), the ones after it wait for the next read.
        for entry in entries:
            try:
                await self._persist([entry])
            except _POISON as exc:
                if not await self._count_failure(entry, exc):
                    raise

    async def _persist(self, entries: list) -> None:
        records: list[Record] = []
        for entry_id, fields in entries:
            if fields:  # trimmed after delivery: it was persisted before the trim allowed it
                records.extend(decode_entry(fields))
        conn = await self._connection()
        async with conn.transaction():
            persisted_seq, persisted_ts_ms = await read_persisted(conn, lock=True)
            fresh = [r for r in records if r[0] > persisted_seq]
            if fresh:
                if fresh[-1][0] - fresh[0][0] != len(fresh) - 1 or fresh[0][0] != persisted_seq + 1:
                    raise SeqGap(f"persisted seq is {persisted_seq} but the next entries hold "
                                 f"seqs {fresh[0][0]}..{fresh[-1][0]} in {len(fresh)} records: "
                                 "entries are missing from the journal")
                changes = fold(fresh)
                await write_changes(conn, changes)
                persisted_seq, persisted_ts_ms = changes.last_seq, changes.last_ts_ms
                await write_persisted(conn, persisted_seq, persisted_ts_ms)
        self.transactions += 1
        self.committed_seq = persisted_seq
        ids = [entry_id for entry_id, _ in entries]
        for entry_id in ids:
            self._failures.pop(entry_id, None)
        await self._await_flush(conn, persisted_seq, persisted_ts_ms, ids)

    # -- durability ---------------------------------------------------------------------------

    async def _await_flush(self, conn, seq: int, ts_ms: int, ids: list) -> None:
        """Queue a committed fold's entries until the WAL is on disk past its commit (the
        position written so far is past it), and acknowledge what already is."""
        written, flushed = await conn.fetchrow(_WAL_POSITIONS)
        self._awaiting_flush.append((written, seq, ts_ms, ids))
        await self._acknowledge_flushed(flushed)

    async def _acknowledge_flushed(self, flushed: int) -> None:
        ids = []
        while self._awaiting_flush and self._awaiting_flush[0][0] <= flushed:
            _, seq, ts_ms, entry_ids = self._awaiting_flush.popleft()
            ids.extend(entry_ids)
            if seq > self.persisted_seq:
                self.persisted_seq, self.persisted_ts_ms = seq, ts_ms
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    async def make_durable(self) -> None:
        """Flush now instead of waiting for the WAL writer: a synchronous commit flushes the
        WAL up to itself, so past every earlier fold; then acknowledge them all."""
        if not self._awaiting_flush:
            return
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit TO on")
            await conn.execute("UPDATE persisted SET seq = seq")  # a write, so it flushes
        await self._acknowledge_flushed(await conn.fetchval(_WAL_FLUSHED))

    # -- failures -----------------------------------------------------------------------------

    async def _count_failure(self, entry, exc: BaseException) -> bool:
        """Count a failure of an entry on its own; True once it has been dead-lettered."""
        entry_id, fields = entry
        count = self._failures.get(entry_id, 0) + 1
        self._failures[entry_id] = count
        if count < self.attempts_max:
            log.error("persister: entry %s failed (attempt %d of %d): %r",
                      entry_id.decode(), count, self.attempts_max, exc)
            return False
        await self._dead_letter(entry_id, fields or {}, exc)
        return True

    async def _dead_letter(self, entry_id: bytes, fields: dict, exc: BaseException) -> None:
        last_seq = entry_id_seq(entry_id)
        await self.redis.xadd(self.dead_letter_stream, {
            **fields, "entry_id": entry_id, "error": repr(exc)[:2000], "group": self.group})
        conn = await self._connection()
        async with conn.transaction():
            # rare, so waiting for its flush costs nothing, and it flushes every fold before it
            await conn.execute("SET LOCAL synchronous_commit TO on")
            persisted_seq, ts_ms = await read_persisted(conn, lock=True)
            if last_seq > persisted_seq:  # its ts is unknown if it cannot be decoded
                await write_persisted(conn, last_seq, ts_ms)
                persisted_seq = self.committed_seq = last_seq
        self._failures.pop(entry_id, None)
        await self._await_flush(conn, persisted_seq, ts_ms, [entry_id])
        self.dead_lettered += 1
        log.critical("PERSISTER DEAD-LETTER: journal entry %s (seqs up to %d) failed %d times and "
                     "was moved to %s without reaching Postgres: %r. The read model lacks it.",
                     entry_id.decode(), last_seq, self.attempts_max, self.dead_letter_stream, exc)

    async def _claim_stale(self) -> None:
        start = "0-0"
        while True:
            # Not JUSTID: redis-py drops the cursor from a JUSTID reply.
            reply = await self.redis.xautoclaim(self.stream, self.group, self.consumer,
                                                self.claim_min_idle_ms, start_id=start,
                                                count=1000)
            start = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if reply[1]:
                log.warning("persister: took over %d pending entries from another consumer",
                            len(reply[1]))
            if start == "0-0":
                return

    # -- connection and lag -------------------------------------------------------------------

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            # A lost connection may be a Postgres that crashed and forgot the folds still
            # awaiting their flush: never acknowledge those; read our pending entries again.
            self._awaiting_flush.clear()
            self._cursor = "0"
            self._conn = await asyncpg.connect(self.database_url)
            # see the module docstring: acknowledged only once flushed, so safe to not wait
            await self._conn.execute("SET synchronous_commit TO off")
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def lag(self) -> Lag:
        """How far Postgres is behind the journal, in commands and in seconds."""
        return await journal_lag(self.redis, self.stream, self.persisted_seq, self.clock_ms)


async def journal_lag(redis: aioredis.Redis, stream: str, persisted_seq: int,
                      clock_ms: Callable[[], int] = _clock_ms) -> Lag:
    """How far a read model at `persisted_seq` is behind the journal: commands and seconds."""
    try:
        info = await redis.xinfo_stream(stream)
    except aioredis.ResponseError:
        return Lag(0, 0.0)
    head_seq = entry_id_seq(info["last-generated-id"])
    seqs = max(0, head_seq - persisted_seq)
    if seqs == 0:
        return Lag(0, 0.0)
    entries = await redis.xrange(stream, min=f"{persisted_seq + 1}-0", count=1)
    oldest_ts_ms = _first_ts_after(entries[0][1], persisted_seq) if entries else None
    if oldest_ts_ms is None:
        return Lag(seqs, 0.0)
    return Lag(seqs, max(0.0, (clock_ms() - oldest_ts_ms) / 1000))


def _first_ts_after(fields: dict, seq: int) -> int | None:
    """The ts of an entry's first command after `seq`, decoding commands only (an entry can
    hold hundreds, and their events are most of its bytes)."""
    return next((cmd.ts for cmd in entry_commands(fields) if cmd.seq > seq), None)

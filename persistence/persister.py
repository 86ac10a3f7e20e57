"""The persister: a Redis consumer group that folds the journal into Postgres.

Each read of entries becomes one Postgres transaction: lock the `persisted` row, drop records at
or below persisted_seq (so a redelivered entry changes nothing), fold the rest into the read
model and raise persisted_seq, commit, and only then XACK. A crash anywhere in between leaves
entries pending; they are delivered again and skipped or folded, never doubled.

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
        self.persisted_seq = 0
        self.persisted_ts_ms = 0
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
        await self._claim_stale()
        self._cursor = "0"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
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
        entries = await self._read("0") if self._cursor == "0" else []
        if not entries:
            self._cursor = ">"  # our pending backlog is done; from now on, new entries
            entries = await self._read(">", block)
        if entries:
            try:
                await self._persist_entries(entries)
            except BaseException:
                self._cursor = "0"  # what failed is still pending: read it again first
                raise
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
        self.persisted_seq, self.persisted_ts_ms = persisted_seq, persisted_ts_ms
        ids = [entry_id for entry_id, _ in entries]
        await self.redis.xack(self.stream, self.group, *ids)
        for entry_id in ids:
            self._failures.pop(entry_id, None)

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
            persisted_seq, _ = await read_persisted(conn, lock=True)
            if last_seq > persisted_seq:  # its ts is unknown if it cannot be decoded
                await write_persisted(conn, last_seq, self.persisted_ts_ms)
                self.persisted_seq = last_seq
        await self.redis.xack(self.stream, self.group, entry_id)
        self._failures.pop(entry_id, None)
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
            self._conn = await asyncpg.connect(self.database_url)
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

"""Engine snapshots in Postgres: the pickled engine at a journal seq.

A snapshot must be taken when the engine holds exactly the journaled commands up to its seq:
between sequencer batches (Sequencer.snapshot does that), or right after recovery. Restart loads
the newest one and replays the journal after it, so snapshots bound both restart time and how
much journal must be kept.
"""

import asyncio
import os
import pickle
import time
from dataclasses import dataclass

import asyncpg

SNAPSHOTS_KEPT = 3  # older ones are only useful if the newest turns out unreadable


class SnapshotStore:
    def __init__(self, db: asyncpg.Connection | asyncpg.Pool):
        self.db = db

    async def save(self, seq: int, engine_pickle: bytes, keep: int = SNAPSHOTS_KEPT) -> None:
        await self.db.execute(
            "INSERT INTO snapshots (seq, engine) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING",
            seq, engine_pickle)
        await self.db.execute(
            "DELETE FROM snapshots WHERE seq NOT IN "
            "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1)", keep)

    async def latest(self) -> tuple[int, bytes] | None:
        row = await self.db.fetchrow("SELECT seq, engine FROM snapshots ORDER BY seq DESC LIMIT 1")
        return None if row is None else (row["seq"], row["engine"])

    async def at(self, seq: int) -> bytes | None:
        return await self.db.fetchval("SELECT engine FROM snapshots WHERE seq = $1", seq)

    async def latest_seq(self) -> int:
        return await self.db.fetchval("SELECT coalesce(max(seq), 0) FROM snapshots")


async def save_snapshot(store: SnapshotStore, engine, seq: int) -> None:
    """Pickle and store `engine`, which must hold exactly the journaled commands up to `seq`."""
    await store.save(seq, pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL))


def _fork_pickle(engine, path: str) -> int:
    """Fork; the child writes the engine's pickle to `path` and exits. The parent returns the
    child's pid at once: the child sees a copy-on-write image of memory as of the fork, so the
    snapshot is consistent while the sequencer goes on (Redis's BGSAVE, for the same reason)."""
    pid = os.fork()
    if pid == 0:  # child: no event loop, no sockets; pickle, write, leave without cleanup
        code = 1
        try:
            with open(path, "wb") as f:
                pickle.dump(engine, f, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)
    return pid


@dataclass(frozen=True, slots=True)
class SnapshotTaken:
    """A stored snapshot and what it cost: the server spaces snapshots by `elapsed_s`."""

    seq: int
    size_bytes: int
    child_cpu_s: float  # the forked child's user + system CPU: pickling the engine
    elapsed_s: float  # fork to stored in Postgres, waits for a busy core included


class SnapshotSchedule:
    """When the next snapshot is due: `every` commands after the last one, and no sooner than
    keeps snapshots' share of the time under `share_max_pct` (the last one's cost, fork to
    stored, times 100 / share_max_pct after it started). Times are the caller's clock, in s."""

    def __init__(self, every: int, share_max_pct: int, last_seq: int) -> None:
        self.every = every
        self.share = share_max_pct / 100
        self.last_seq = last_seq
        self.not_before = 0.0

    def due(self, seq: int, now: float) -> bool:
        return seq - self.last_seq >= self.every and now >= self.not_before

    def taken(self, taken: SnapshotTaken, started: float) -> None:
        self.last_seq = taken.seq
        self.not_before = started + taken.elapsed_s / self.share


async def background_snapshot(sequencer, store: SnapshotStore, directory: str) -> SnapshotTaken:
    """Snapshot without stalling the sequencer for more than a fork."""
    path = os.path.join(directory, f"snapshot-{os.getpid()}.pickle")
    started = time.perf_counter()
    seq, pid = await sequencer.query(lambda engine: (sequencer.last_seq,
                                                     _fork_pickle(engine, path)))
    _, status, usage = await asyncio.to_thread(os.wait4, pid, 0)
    try:
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"snapshot child for seq {seq} failed ({status})")
        blob = await asyncio.to_thread(_read, path)
        await store.save(seq, blob)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return SnapshotTaken(seq, len(blob), usage.ru_utime + usage.ru_stime,
                         time.perf_counter() - started)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()

"""Engine snapshots in Postgres: the pickled engine at a journal seq.

A snapshot must be taken when the engine holds exactly the journaled commands up to its seq:
between sequencer batches (Sequencer.snapshot does that), or right after recovery. Restart loads
the newest one and replays the journal after it, so snapshots bound both restart time and how
much journal must be kept.
"""

import pickle

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

    async def latest_seq(self) -> int:
        return await self.db.fetchval("SELECT coalesce(max(seq), 0) FROM snapshots")


async def save_snapshot(store: SnapshotStore, engine, seq: int) -> None:
    """Pickle and store `engine`, which must hold exactly the journaled commands up to `seq`."""
    await store.save(seq, pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL))

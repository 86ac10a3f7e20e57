"""Background snapshots: a forked child pickles the engine while the sequencer keeps going."""

import pickle

from engine import commands as c
from engine.engine import Engine
from persistence.journal import Journal
from persistence.migrate import migrate
from persistence.sequencer import Sequencer
from persistence.snapshots import SnapshotStore, background_snapshot


def test_background_snapshot_holds_exactly_the_state_at_its_seq(run, redis_url, database_url,
                                                                  stream, tmp_path):
    import asyncpg
    import redis.asyncio as aioredis

    async def scenario():
        redis = aioredis.from_url(redis_url)
        conn = await asyncpg.connect(database_url)
        await migrate(conn)
        store = SnapshotStore(conn)
        sequencer = Sequencer(Engine(), Journal(redis, stream))
        await sequencer.start()
        for i in range(50):
            await sequencer.submit(c.Deposit(user=f"u{i}", currency="BDT", amount_minor=100,
                                             ref=f"r{i}"))
        taken = await background_snapshot(sequencer, store, str(tmp_path))
        more = [sequencer.submit(c.Deposit(user="late", currency="BDT", amount_minor=1,
                                           ref=f"late{i}")) for i in range(20)]
        for f in more:
            await f
        saved_seq, blob = await store.latest()
        await sequencer.stop()
        await conn.close()
        await redis.aclose()
        return taken, saved_seq, blob

    taken, saved_seq, blob = run(scenario())
    engine = pickle.loads(blob)
    assert taken.seq == saved_seq == 50
    assert taken.size_bytes == len(blob)
    assert taken.child_cpu_s >= 0 and taken.elapsed_s > 0
    assert engine.last_seq == 50
    assert ("late", "BDT") not in engine.wallets
    engine.validate()
    assert sum(w.balance for (u, _), w in engine.wallets.items() if u != "external") == 5_000

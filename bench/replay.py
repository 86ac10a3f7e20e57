"""Replay benchmark: how fast the journal rebuilds the state, and how fast a restart is.

1. Journals order_stream(--count) (plus its setup commands: markets and deposits) through the
   Journal in batches of --batch commands, each batch one stream entry as the sequencer writes
   it, into an embedded redis-server in a temporary directory.
2. Replays the whole journal from empty with persistence.recovery.recover (decode, apply,
   re-encode, compare every event byte for byte) and prints entries/s (entries = commands).
   Target: >= 50,000/s.
3. Snapshots the engine at the end of that journal into an embedded Postgres, journals --tail
   more commands, and times recover() from snapshot + tail: the restart. Target: < 5 s for a
   100,000-command tail. Prints the snapshot's size and how long taking it (pickling, which
   the sequencer does between batches) and loading it take.

    python bench/replay.py [--count 1000000] [--tail 100000] [--batch 500] [--seed 7]
"""

import argparse
import asyncio
import gc
import os
import pickle
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import asyncpg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from bench.workload import order_stream  # noqa: E402
from engine.engine import Engine  # noqa: E402
from persistence.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from persistence.journal import Journal  # noqa: E402
from persistence.migrate import migrate  # noqa: E402
from persistence.recovery import recover  # noqa: E402
from persistence.sequencer import BATCH_MAX  # noqa: E402
from persistence.snapshots import SnapshotStore  # noqa: E402

REPLAY_TARGET_PER_S = 50_000
RESTART_TARGET_S = 5.0


async def journal_commands(journal: Journal, engine: Engine, cmds: list, batch: int) -> float:
    """Apply and journal `cmds` batch by batch; returns the seconds spent in engine.apply."""
    applying = 0.0
    for i in range(0, len(cmds), batch):
        started = time.perf_counter()
        records = [(cmd.seq, cmd, engine.apply(cmd)) for cmd in cmds[i:i + batch]]
        applying += time.perf_counter() - started
        await journal.append(records)
    return applying


def same_state(a: Engine, b: Engine) -> bool:
    return ((a.last_seq, a.last_ts) == (b.last_seq, b.last_ts)
            and {k: (w.balance, w.held) for k, w in a.wallets.items()}
            == {k: (w.balance, w.held) for k, w in b.wallets.items()}
            and len(a.orders) == len(b.orders))


async def bench(args, tmp: str) -> None:
    redis_server = EmbeddedRedis(f"{tmp}/redis", appendfsync="always")
    redis_server.start()
    pg_server = EmbeddedPostgres(f"{tmp}/pg")
    pg_server.start()
    redis = aioredis.from_url(redis_server.url)
    db = await asyncpg.connect(pg_server.url)
    try:
        await migrate(db)
        journal = Journal(redis, "bench:journal")
        store = SnapshotStore(db)

        started = time.perf_counter()
        cmds = order_stream(args.count + args.tail, seed=args.seed)
        head, tail = cmds[:len(cmds) - args.tail], cmds[len(cmds) - args.tail:]
        print(f"replay bench: order_stream({args.count + args.tail:,}, seed {args.seed}) made "
              f"{len(cmds):,} commands in {time.perf_counter() - started:.1f} s; "
              f"journal = first {len(head):,}, tail = last {len(tail):,}; "
              f"{args.batch} commands per stream entry")

        engine = Engine()
        started = time.perf_counter()
        applying = await journal_commands(journal, engine, head, args.batch)
        elapsed = time.perf_counter() - started
        entries = await redis.xlen(journal.stream)
        print(f"journal built: {len(head):,} commands in {entries:,} stream entries, "
              f"{elapsed:.1f} s ({len(head) / elapsed:,.0f}/s; engine.apply alone "
              f"{len(head) / applying:,.0f}/s)")

        # -- 1. replay from empty -------------------------------------------------------------
        gc.collect()
        started = time.perf_counter()
        recovered = await recover(journal, None)
        elapsed = time.perf_counter() - started
        rate = recovered.replayed / elapsed
        assert recovered.last_seq == head[-1].seq and same_state(recovered.engine, engine)
        print(f"replay from empty: {recovered.replayed:,} entries in {elapsed:.2f} s = "
              f"{rate:,.0f} entries/s, events verified byte for byte "
              f"(target >= {REPLAY_TARGET_PER_S:,}/s: "
              f"{'met' if rate >= REPLAY_TARGET_PER_S else 'NOT met'})")
        del recovered
        gc.collect()

        # -- 2. restart from snapshot + tail --------------------------------------------------
        started = time.perf_counter()
        blob = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
        pickling = time.perf_counter() - started
        started = time.perf_counter()
        await store.save(engine.last_seq, blob)
        saving = time.perf_counter() - started
        print(f"snapshot at seq {engine.last_seq:,}: {len(blob) / 1e6:,.1f} MB, pickled in "
              f"{pickling:.2f} s (the sequencer is paused that long), saved in {saving:.2f} s")
        await journal_commands(journal, engine, tail, args.batch)
        del blob
        gc.collect()

        started = time.perf_counter()
        recovered = await recover(journal, store)
        restart = time.perf_counter() - started
        assert recovered.snapshot_seq == head[-1].seq and recovered.replayed == len(tail)
        assert same_state(recovered.engine, engine)
        del recovered
        gc.collect()
        started = time.perf_counter()
        seq, blob = await store.latest()
        fetching = time.perf_counter() - started
        started = time.perf_counter()
        pickle.loads(blob)
        loading = time.perf_counter() - started
        gc.collect()
        gc.disable()  # what recover() would gain by pausing the collector while it unpickles
        try:
            started = time.perf_counter()
            pickle.loads(blob)
            loading_no_gc = time.perf_counter() - started
        finally:
            gc.enable()
        # recover() pauses the collector while it unpickles, so the no-GC figure is its share
        print(f"restart: snapshot + {len(tail):,} entries in {restart:.2f} s (target < "
              f"{RESTART_TARGET_S:.0f} s: {'met' if restart < RESTART_TARGET_S else 'NOT met'}); "
              f"of which fetching the snapshot ~{fetching:.2f} s, unpickling (collector paused, "
              f"as recover does) ~{loading_no_gc:.2f} s, replaying the tail "
              f"~{max(0.0, restart - fetching - loading_no_gc):.2f} s; unpickling with the "
              f"collector running would take {loading:.2f} s")
    finally:
        await db.close()
        await redis.aclose()
        pg_server.stop()
        redis_server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=BATCH_MAX)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="backlay-replay-bench-") as tmp:
        asyncio.run(bench(args, tmp))


if __name__ == "__main__":
    main()

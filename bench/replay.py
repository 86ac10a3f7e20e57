"""Replay benchmark: how fast the journal rebuilds the state, and how fast a restart is.

1. Journals order_stream(--count) (plus its setup commands: markets and deposits) through the
   Journal in batches of --batch commands, each batch one stream entry as the sequencer writes
   it, into an embedded redis-server in a temporary directory.
2. Replays the whole journal from empty with persistence.recovery.recover (decode, apply,
   re-encode, compare every event byte for byte) and prints entries/s (entries = commands).
   Target: >= 50,000/s.
3. Snapshots the engine at the end of that journal into an embedded Postgres, journals --tail
   more commands, and times recover() from snapshot + tail: the restart. Target: < 5 s for a
   100,000-command tail. Prints the snapshot's size, how long pickling it takes (the server
   does that in a forked child) and where the restart's time went.

Both 2 and 3 run in a fresh interpreter (this script with --child), as `backlay replay` and a
restarting server do, and this process lets go of its engine and commands before each child
runs: a real restart never shares the machine with the heap that wrote the journal. The child
reports a digest of its state, which is checked against the engine that wrote the journal.

    python bench/replay.py [--count 1000000] [--tail 100000] [--batch 500] [--seed 7]
"""

import argparse
import asyncio
import gc
import json
import os
import pickle
import subprocess
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


def state_digest(engine: Engine) -> list:
    """Enough of the state to tell two engines apart: seq, time, every wallet, order count."""
    return [engine.last_seq, engine.last_ts, len(engine.orders),
            sorted([*key, w.balance, w.held] for key, w in engine.wallets.items())]


def run_child(mode: str, redis_url: str, pg_url: str, stream: str) -> dict:
    """Run recover() in a fresh interpreter (what a restart is) and return its timings."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode,
                          "--redis-url", redis_url, "--pg-url", pg_url, "--stream", stream],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


async def child(mode: str, redis_url: str, pg_url: str, stream: str) -> dict:
    redis = aioredis.from_url(redis_url)
    db = await asyncpg.connect(pg_url) if mode == "restart" else None
    try:
        store = SnapshotStore(db) if db is not None else None
        journal = Journal(redis, stream)
        started = time.perf_counter()
        recovered = await recover(journal, store)
        return {"recover_s": time.perf_counter() - started, "replayed": recovered.replayed,
                "snapshot_seq": recovered.snapshot_seq, "load_s": recovered.load_s,
                "fetch_s": recovered.fetch_s,
                "replay_s": recovered.replay_s, "state": state_digest(recovered.engine)}
    finally:
        if db is not None:
            await db.close()
        await redis.aclose()


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

        # The snapshot for part 2 is taken now, at the end of the journal part 1 replays.
        gc.collect()
        started = time.perf_counter()
        blob = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
        pickling = time.perf_counter() - started
        started = time.perf_counter()
        await store.save(engine.last_seq, blob)
        saving = time.perf_counter() - started
        print(f"snapshot at seq {engine.last_seq:,}: {len(blob) / 1e6:,.1f} MB, pickled in "
              f"{pickling:.2f} s (in a forked child in the server: the sequencer pauses only for "
              f"the fork), saved in {saving:.2f} s")
        expected, snapshot_seq = state_digest(engine), head[-1].seq
        # The children run where nothing else holds the exchange's memory, as `backlay replay`
        # and a restarting server (whose predecessor is gone) do: this process would otherwise
        # hold some 2 GB (the engine and every command) meanwhile, and on this VM memory never
        # touched before costs a child up to a second more in page faults. The engine comes
        # back from the snapshot for part 2.
        del engine, cmds, head
        gc.collect()

        # -- 1. replay from empty, in a fresh process as `backlay replay` runs it --------------
        child = run_child("replay", redis_server.url, pg_server.url, journal.stream)
        rate = child["replayed"] / child["recover_s"]
        assert child["state"] == expected, "replayed state differs"
        print(f"replay from empty (fresh process): {child['replayed']:,} entries in "
              f"{child['recover_s']:.2f} s = {rate:,.0f} entries/s, events verified byte for byte "
              f"(target >= {REPLAY_TARGET_PER_S:,}/s: "
              f"{'met' if rate >= REPLAY_TARGET_PER_S else 'NOT met'})")

        # -- 2. restart from snapshot + tail, in a fresh process ------------------------------
        engine = pickle.loads(blob)
        del blob
        await journal_commands(journal, engine, tail, args.batch)
        expected = state_digest(engine)
        del engine, tail
        gc.collect()

        child = run_child("restart", redis_server.url, pg_server.url, journal.stream)
        assert child["snapshot_seq"] == snapshot_seq and child["replayed"] == args.tail
        assert child["state"] == expected, "restarted state differs"
        restart = child["recover_s"]
        print(f"restart (fresh process): snapshot + {args.tail:,} entries in {restart:.2f} s "
              f"(target < {RESTART_TARGET_S:.0f} s: "
              f"{'met' if restart < RESTART_TARGET_S else 'NOT met'}): loading the snapshot "
              f"{child['load_s']:.2f} s (fetching {child['fetch_s']:.2f} s, unpickling "
              f"{child['load_s'] - child['fetch_s']:.2f} s), replaying the tail "
              f"{child['replay_s']:.2f} s; the whole "
              f"process, interpreter start and imports included, {child['process_s']:.2f} s")
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
    ap.add_argument("--child", choices=("replay", "restart"), help=argparse.SUPPRESS)
    ap.add_argument("--redis-url", help=argparse.SUPPRESS)
    ap.add_argument("--pg-url", help=argparse.SUPPRESS)
    ap.add_argument("--stream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = asyncio.run(child(args.child, args.redis_url, args.pg_url, args.stream))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="backlay-replay-bench-") as tmp:
        asyncio.run(bench(args, tmp))


if __name__ == "__main__":
    main()

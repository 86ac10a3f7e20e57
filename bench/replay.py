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

Every part runs in an interpreter of its own (this script with --child): writing the journal
and the snapshot, writing the tail, and the two timed recoveries, as `backlay replay` and a
restarting server run them. This process only starts the servers and the children, so no
timed child shares the machine with the 2 GB heap that wrote the journal. (It used to: on this
VM, memory that another process still held made the restart child's unpickling up to a
second slower in page faults; a restarting server's predecessor is gone.) Each recovery
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


def run_child(mode: str, args, redis_url: str, pg_url: str, stream: str) -> dict:
    """Run one part in a fresh interpreter and return what it reports (its last line, JSON)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode,
                          "--count", str(args.count), "--tail", str(args.tail),
                          "--batch", str(args.batch), "--seed", str(args.seed),
                          "--redis-url", redis_url, "--pg-url", pg_url, "--stream", stream],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


async def write_head(args, journal: Journal, store: SnapshotStore) -> dict:
    """Journal the first --count commands (and their setup), then snapshot the engine."""
    started = time.perf_counter()
    cmds = order_stream(args.count + args.tail, seed=args.seed)
    made_s = time.perf_counter() - started
    head = cmds[:len(cmds) - args.tail]
    del cmds
    engine = Engine()
    started = time.perf_counter()
    applying = await journal_commands(journal, engine, head, args.batch)
    elapsed = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    blob = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    pickling = time.perf_counter() - started
    started = time.perf_counter()
    await store.save(engine.last_seq, blob)
    return {"made": len(head) + args.tail, "made_s": made_s,
            "head": len(head), "entries": await journal.redis.xlen(journal.stream),
            "journal_s": elapsed, "apply_s": applying, "snapshot_seq": engine.last_seq,
            "snapshot_mb": len(blob) / 1e6, "pickle_s": pickling,
            "save_s": time.perf_counter() - started, "state": state_digest(engine)}


async def write_tail(args, journal: Journal, store: SnapshotStore) -> dict:
    """From the snapshot, journal the last --tail commands of the same stream."""
    tail = order_stream(args.count + args.tail, seed=args.seed)[-args.tail:]
    engine = pickle.loads(await store.at(await store.latest_seq()))
    await journal_commands(journal, engine, tail, args.batch)
    return {"state": state_digest(engine)}


async def child(mode: str, args) -> dict:
    redis = aioredis.from_url(args.redis_url)
    db = await asyncpg.connect(args.pg_url) if mode != "replay" else None
    try:
        store = SnapshotStore(db) if db is not None else None
        journal = Journal(redis, args.stream)
        if mode == "head":
            return await write_head(args, journal, store)
        if mode == "tail":
            return await write_tail(args, journal, store)
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
    urls = (redis_server.url, pg_server.url, "bench:journal")
    try:
        db = await asyncpg.connect(pg_server.url)
        await migrate(db)
        await db.close()

        head = run_child("head", args, *urls)
        print(f"replay bench: order_stream({args.count + args.tail:,}, seed {args.seed}) made "
              f"{head['made']:,} commands in {head['made_s']:.1f} s; journal = first "
              f"{head['head']:,}, tail = last {args.tail:,}; {args.batch} commands per stream "
              f"entry")
        print(f"journal built: {head['head']:,} commands in {head['entries']:,} stream entries, "
              f"{head['journal_s']:.1f} s ({head['head'] / head['journal_s']:,.0f}/s; "
              f"engine.apply alone {head['head'] / head['apply_s']:,.0f}/s)")
        print(f"snapshot at seq {head['snapshot_seq']:,}: {head['snapshot_mb']:,.1f} MB, pickled "
              f"in {head['pickle_s']:.2f} s (in a forked child in the server: the sequencer "
              f"pauses only for the fork), saved in {head['save_s']:.2f} s")

        # -- 1. replay from empty, in a fresh process as `backlay replay` runs it --------------
        child = run_child("replay", args, *urls)
        rate = child["replayed"] / child["recover_s"]
        assert child["state"] == head["state"], "replayed state differs"
        print(f"replay from empty (fresh process): {child['replayed']:,} entries in "
              f"{child['recover_s']:.2f} s = {rate:,.0f} entries/s, events verified byte for byte "
              f"(target >= {REPLAY_TARGET_PER_S:,}/s: "
              f"{'met' if rate >= REPLAY_TARGET_PER_S else 'NOT met'})")

        # -- 2. restart from snapshot + tail, in a fresh process ------------------------------
        expected = run_child("tail", args, *urls)["state"]
        child = run_child("restart", args, *urls)
        assert child["snapshot_seq"] == head["snapshot_seq"] and child["replayed"] == args.tail
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
        pg_server.stop()
        redis_server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=BATCH_MAX)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", choices=("head", "replay", "tail", "restart"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--redis-url", help=argparse.SUPPRESS)
    ap.add_argument("--pg-url", help=argparse.SUPPRESS)
    ap.add_argument("--stream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = asyncio.run(child(args.child, args))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="backlay-replay-bench-") as tmp:
        asyncio.run(bench(args, tmp))


if __name__ == "__main__":
    main()

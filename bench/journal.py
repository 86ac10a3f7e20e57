"""Journal benchmark: commands/s through Sequencer + Engine + Redis journal vs the bare engine.

The same seeded command stream (bench/workload.order_stream) runs, in one process and one run:

  bare       Engine.apply on every command, nothing else;
  journaled  every command submitted to a Sequencer (group commit, up to --in-flight commands
             outstanding, as from that many clients) that applies it and journals each batch
             in one XADD to an embedded redis-server, and acknowledges after Redis confirms:
             by default as the WebSocket order path submits (submit_now, each ack a callback);
             `--submitters deliver,future` also runs the driver before session 10 (submit,
             a future awaited per command), interleaved;

for appendfsync `always` (the default: one fsync per batch) and `everysec`, each with its own
redis-server in a temporary directory, with a bare run right before and right after each
journaled one (`bare` is their mean, after one warm-up run), and automatic AOF rewrites off
(`no_aof_rewrites`), so that none falls inside a measured run.
Prints commands/s, `ratio` = journaled/bare (target with always: >= 0.5), batch size, ack
latency and the AOF rewrites the run met. `--writers resp,redis-py` runs each pair with the
journal's writer and with the redis-py `xadd` it replaced (session 8), interleaved.
Both use EngineConfig(velocity_orders_max=0): the sequencer stamps wall-clock time,
the stream's own stamps are 1 ms apart, so a velocity limit would reject differently in the
two; the journaled engine's state is checked equal to the bare one's.

Then `always` once more with the persister running in a process of its own (as in
`backlay serve`: persistence/persister_process.py) against a fresh embedded Postgres: the
journal rate beside it, the persister's throughput (commands and rows/s) during the run and
while catching up after it, and its lag (commands, seconds) sampled while the journal bench
runs.

    python bench/journal.py [--count 100000] [--in-flight 2000] [--seed 7] [--repeat 3]
                            [--modes always,everysec] [--writers resp]
                            [--submitters deliver] [--no-persister]
"""

import argparse
import asyncio
import collections
import dataclasses
import functools
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import asyncpg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import uvloop  # noqa: E402

from bench.workload import order_stream  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from persistence.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from persistence.journal import Journal, JournalWriteError, encode_entry  # noqa: E402
from persistence.migrate import migrate  # noqa: E402
from persistence.persister_process import PersisterProcess  # noqa: E402
from persistence.collector import tune_collector  # noqa: E402
from persistence.sequencer import Sequencer  # noqa: E402

CONFIG = EngineConfig(velocity_orders_max=0)
RATIO_TARGET = 0.5
LAG_SAMPLE_S = 0.2
ROW_TABLES = ("orders", "fills", "ledger_entries", "wallets", "markets", "selections")


class RedisPyJournal(Journal):
    """The journal's write as it was before session 8, for comparison in the same run
    (--writers): the entry's fields handed to redis-py's `xadd`, which packs the command and
    sends it through the pool (under asyncio.wait_for when a socket timeout is set)."""

    async def append(self, batch: list) -> None:
        if not batch:
            return
        fields = encode_entry(batch)
        try:
            await self.redis.xadd(self.stream, fields, id=f"{batch[-1][0]}-0")
        except (aioredis.RedisError, OSError) as exc:
            raise JournalWriteError(f"journal append of seq {batch[0][0]}..{batch[-1][0]} "
                                    f"failed: {exc}") from exc


WRITERS = {"resp": Journal, "redis-py": RedisPyJournal}


def bare_run(stamped: list) -> tuple[float, Engine]:
    # the same collector state as the journaled run, which calls it as it starts (as `backlay
    # serve` does): the bare run right after another bare run, without it, came out ~30% slower
    # than the one right after a journaled run (session 8)
    tune_collector()
    engine = Engine(CONFIG)
    apply = engine.apply
    started = time.perf_counter()
    for cmd in stamped:
        apply(cmd)
    return len(stamped) / (time.perf_counter() - started), engine


def wallets(engine: Engine) -> dict:
    return {k: (w.balance, w.held) for k, w in engine.wallets.items()}


LATENCY_SAMPLE_EVERY = 16  # commands; every command's ack is still awaited and checked


async def drive(sequencer: Sequencer, unstamped: list, in_flight: int) -> dict:
    """Submit every command with at most `in_flight` outstanding, each awaited through its
    future (Sequencer.submit: what the HTTP and trader ops use); wait for every ack.

    The window is a FIFO of futures, not an asyncio.Semaphore: on Python 3.11
    Semaphore.acquire scans its waiters, which made the driver itself the bottleneck. For the
    same reason ack latency is timed on one command in LATENCY_SAMPLE_EVERY: a done-callback
    on every future cost the driver, which shares the sequencer's thread, about a microsecond
    per command, counted against the journaled rate.

    The window is refilled a run at a time: whenever the oldest command is acknowledged (a
    whole batch is, at once), every acknowledged command leaves (its outcome checked) and as
    many new ones are submitted back to back, as the old loop did one command per turn (session
    8: the same submissions, without a length check, a modulo and three future calls on each).
    A sampled ack's latency counts from just before its run was submitted."""
    latencies: list[float] = []
    clock = time.perf_counter
    window: collections.deque = collections.deque()
    failures: list[asyncio.Future] = []
    submit = sequencer.submit
    popleft = window.popleft

    def on_done(submitted: float, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            latencies.append(clock() - submitted)

    def ack(future: asyncio.Future) -> None:
        # checked as it leaves the window, not kept: holding every result (events) to the
        # end made the collector rescan them, a cost the bare run, which drops its events,
        # never pays
        if future.cancelled() or future.exception() is not None:
            failures.append(future)

    started = clock()
    submitted = 0
    total = len(unstamped)
    while submitted < total:
        room = in_flight - len(window)
        if room <= 0:
            oldest = window[0]
            if not oldest.done():
                await asyncio.wait([oldest])
            while window and window[0].done():  # a batch completes at once: its whole run
                ack(popleft())
            continue
        run_started = clock()
        run = [submit(cmd) for cmd in unstamped[submitted:submitted + room]]
        for future in run[-submitted % LATENCY_SAMPLE_EVERY::LATENCY_SAMPLE_EVERY]:
            future.add_done_callback(functools.partial(on_done, run_started))
        window.extend(run)
        submitted += len(run)
    if window:
        await asyncio.wait(window)
    elapsed = clock() - started
    for future in window:
        ack(future)
    if failures:
        raise RuntimeError(f"{len(failures)} commands failed: {failures[0]!r}")
    return _driven(sequencer, unstamped, elapsed, latencies)


async def drive_delivered(sequencer: Sequencer, unstamped: list, in_flight: int) -> dict:
    """As `drive`, through the WebSocket order path's way in (Sequencer.submit_now): no future
    per command; each ack is a call of its deliver callback, on the sequencer's task, once its
    batch is journaled. The window refills when its oldest command is acknowledged, as in
    `drive`, and a sampled command's latency counts from just before its run was submitted."""
    latencies: list[float] = []
    failures: list = []
    clock = time.perf_counter
    loop = asyncio.get_running_loop()
    submit_now = sequencer.submit_now
    acked = 0
    wake: asyncio.Future | None = None  # resolved once `acked` reaches wake_at
    wake_at = 0

    def deliver(ok: bool, value) -> None:
        nonlocal acked
        acked += 1
        if not ok:
            failures.append(value)
        if acked >= wake_at and wake is not None and not wake.done():
            wake.set_result(None)

    def sampled(submitted_at: float, ok: bool, value) -> None:
        if ok:
            latencies.append(clock() - submitted_at)
        deliver(ok, value)

    async def until_acked(count: int) -> None:
        nonlocal wake, wake_at
        if acked < count:
            wake, wake_at = loop.create_future(), count
            await wake

    started = clock()
    submitted = 0
    total = len(unstamped)
    while submitted < total:
        room = in_flight - (submitted - acked)
        if room <= 0:
            await until_acked(submitted - in_flight + 1)  # the oldest one outstanding
            continue
        run_started = clock()
        end = min(total, submitted + room)
        for i in range(submitted, end):
            submit_now(unstamped[i], None, deliver if i % LATENCY_SAMPLE_EVERY
                       else functools.partial(sampled, run_started))
        submitted = end
    await until_acked(total)
    elapsed = clock() - started
    if failures:
        raise RuntimeError(f"{len(failures)} commands failed: {failures[0]!r}")
    return _driven(sequencer, unstamped, elapsed, latencies)


DRIVERS = {"deliver": drive_delivered, "future": drive}


def _driven(sequencer: Sequencer, unstamped: list, elapsed: float, latencies: list) -> dict:
    latencies.sort()
    return {"per_s": len(unstamped) / elapsed, "seconds": elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "batch": sequencer.commands_written / max(1, sequencer.batches_written)}


async def journaled_run(redis_url: str, stream: str, unstamped: list, in_flight: int,
                        database_url: str | None = None, writer: str = "resp",
                        submitter: str = "deliver") -> dict:
    redis = aioredis.from_url(redis_url)
    engine = Engine(CONFIG)
    sequencer = Sequencer(engine, WRITERS[writer](redis, stream))
    await sequencer.start()
    persister = sampler = None
    lags: list[tuple[int, float]] = []
    if database_url is not None:
        persister = PersisterProcess(redis_url, database_url, stream=stream)
        await persister.start()

        async def sample() -> None:
            while True:
                await asyncio.sleep(LAG_SAMPLE_S)
                lag = await persister.lag()
                lags.append((lag.seqs, lag.seconds))

        sampler = asyncio.create_task(sample())
    try:
        tune_collector()  # as `backlay serve` does
        forks = (await redis.info("stats"))["total_forks"]
        result = await DRIVERS[submitter](sequencer, unstamped, in_flight)
        result["aof_rewrites"] = (await redis.info("stats"))["total_forks"] - forks
        result["engine"] = engine
        if persister is not None:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            during = persister.persisted_seq
            end_lag = await persister.lag()
            started = time.perf_counter()
            while persister.persisted_seq < sequencer.last_seq:
                await asyncio.sleep(0.01)
            catch_up = time.perf_counter() - started
            conn = await asyncpg.connect(database_url)
            rows = 0
            for table in ROW_TABLES:
                rows += await conn.fetchval(f"SELECT count(*) FROM {table}")
            await conn.close()
            total_s = result["seconds"] + catch_up
            result["persister"] = {
                "during": during, "during_per_s": during / result["seconds"],
                "after": sequencer.last_seq - during, "catch_up_s": catch_up,
                "after_per_s": (sequencer.last_seq - during) / catch_up if catch_up else 0.0,
                "overall_per_s": sequencer.last_seq / total_s, "rows": rows,
                "rows_per_s": rows / total_s, "end_lag": end_lag,
                "max_lag_seqs": max((s for s, _ in lags), default=0),
                "max_lag_s": max((s for _, s in lags), default=0.0),
                "median_lag_seqs": statistics.median([s for s, _ in lags]) if lags else 0,
                "samples": len(lags),
            }
    finally:
        if sampler is not None and not sampler.done():
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        await sequencer.stop()
        if persister is not None:
            await persister.stop()
        await redis.aclose()
    return result


async def no_aof_rewrites(redis_url: str) -> None:
    """Turn off this bench server's automatic AOF rewrites. The AOF grows by 28 MB a run, and
    the third run of a mode used to cross Redis's auto-rewrite size (64 MB): a fork then
    rewrote the AOF during that run, on this 2-core machine, and its ratio fell to about 0.30
    beside 0.42-0.45 (session 8). A production journal meets rewrites too, and each run prints
    how many it met; the ratio is the journal path's steady cost. (Rewriting the AOF between
    runs instead slowed the bare run that followed by ~25%.)"""
    redis = aioredis.from_url(redis_url)
    try:
        await redis.config_set("auto-aof-rewrite-percentage", 0)
    finally:
        await redis.aclose()


def line(name: str, r: dict, bare: float) -> str:
    ratio = r["per_s"] / bare
    return (f"{name:<22} {r['per_s']:>9,.0f} cmd/s   bare {bare:>9,.0f} cmd/s   ratio "
            f"{ratio:.2f}   batch {r['batch']:5.0f}   ack p50 {r['p50_ms']:6.1f} ms   "
            f"p99 {r['p99_ms']:6.1f} ms   aof rewrites {r['aof_rewrites']}"
            + ("   bare before/after {:,.0f}/{:,.0f}".format(*r["bare_before_after"])
               if "bare_before_after" in r else ""))


async def bench(args, tmp: str) -> None:
    stamped = order_stream(args.count, seed=args.seed)
    unstamped = [dataclasses.replace(cmd, seq=0, ts=0) for cmd in stamped]
    print(f"journal bench: order_stream({args.count:,}, seed {args.seed}) = {len(stamped):,} "
          f"commands, up to {args.in_flight:,} in flight, velocity limit off in both runs")
    # Both sides of every pair run under the collector policy of `backlay serve`. Before, only
    # the journaled runs set it (and it stayed set), so the first bare run alone ran under the
    # default policy, slower, and the first pair's ratio always came out highest.
    tune_collector()
    bare_run(stamped)  # a warm-up, not counted (its engine is dropped at once)
    results: dict[str, list[float]] = {}
    # each writer's and submitter's pair in turn: compared in one run
    variants = [(w, s) for w in args.writers.split(",") for s in args.submitters.split(",")]
    for mode in args.modes.split(","):
        server = EmbeddedRedis(f"{tmp}/redis-{mode}", appendfsync=mode)
        server.start()
        try:
            await no_aof_rewrites(server.url)
            # bare and journaled interleaved, --repeat times: this VM's speed drifts by +-20%
            # within a minute, so one pair can say little; the median ratio says more
            for rep in range(args.repeat):
                for writer, submitter in variants:
                    before, bare_engine = bare_run(stamped)
                    r = await journaled_run(server.url,
                                            f"bench:{mode}:{writer}:{submitter}:{rep}",
                                            unstamped, args.in_flight, writer=writer,
                                            submitter=submitter)
                    assert wallets(r.pop("engine")) == wallets(bare_engine)
                    after = bare_run(stamped)[0]
                    del bare_engine
                    # the bare rate right before and right after: this VM's speed drifts
                    # within seconds (session 8)
                    bare = (before + after) / 2
                    r["bare_before_after"] = (before, after)
                    # the mode, then the writer and the submitter where several are run
                    key = ", ".join([mode] + [name for name, choices in (
                        (writer, args.writers), (submitter, args.submitters)) if "," in choices])
                    results.setdefault(key, []).append(r["per_s"] / bare)
                    print(line(key, r, bare), flush=True)
        finally:
            server.stop()
    for mode, ratios in results.items():
        print(f"ratio with appendfsync {mode:<17}: median {statistics.median(ratios):.2f} of "
              f"{len(ratios)} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    key = next((k for k in results if k.split(",")[0] == "always"), "always")
    if key in results:
        always = statistics.median(results[key])
        print(f"median ratio with appendfsync {key}: {always:.2f} (target >= {RATIO_TARGET}: "
              f"{'met' if always >= RATIO_TARGET else 'NOT met'})")
    if args.no_persister:
        return

    server = EmbeddedRedis(f"{tmp}/redis-persister", appendfsync="always")
    server.start()
    pg = EmbeddedPostgres(f"{tmp}/pg")
    pg.start()
    try:
        conn = await asyncpg.connect(pg.url)
        await migrate(conn)
        await conn.close()
        bare, bare_engine = bare_run(stamped)
        r = await journaled_run(server.url, "bench:persisted", unstamped, args.in_flight,
                                database_url=pg.url)
        assert wallets(r.pop("engine")) == wallets(bare_engine)
        print(line("always + persister", r, bare))
        p = r["persister"]
        print(f"persister (own process, as in `backlay serve`; fresh Postgres): {p['during']:,} "
              f"commands persisted during the {r['seconds']:.1f} s run = {p['during_per_s']:,.0f}/s; the "
              f"other {p['after']:,} in {p['catch_up_s']:.1f} s after it = "
              f"{p['after_per_s']:,.0f}/s; overall {p['overall_per_s']:,.0f} commands/s, "
              f"{p['rows']:,} rows = {p['rows_per_s']:,.0f} rows/s")
        print(f"persister lag while the journal bench ran ({p['samples']} samples every "
              f"{LAG_SAMPLE_S} s): median {p['median_lag_seqs']:,.0f} commands, max "
              f"{p['max_lag_seqs']:,} commands / {p['max_lag_s']:.1f} s; at the end of the run "
              f"{p['end_lag'].seqs:,} commands / {p['end_lag'].seconds:.1f} s")
    finally:
        pg.stop()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--in-flight", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="bare/journaled pairs per mode")
    ap.add_argument("--modes", default="always,everysec",
                    help="appendfsync modes to run, comma-separated (default always,everysec)")
    ap.add_argument("--writers", default="resp",
                    help="journal writers, comma-separated, each journaled run after its own "
                         "bare one: resp (the journal's) and/or redis-py (before session 8)")
    ap.add_argument("--submitters", default="deliver",
                    help="how commands are submitted, comma-separated: deliver (submit_now "
                         "with a callback, as the WebSocket order path does) and/or future "
                         "(submit, each awaited: the driver before session 10)")
    ap.add_argument("--no-persister", action="store_true",
                    help="skip the always + persister run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="backlay-journal-bench-") as tmp:
        uvloop.run(bench(args, tmp))  # the loop `backlay serve` runs on


if __name__ == "__main__":
    main()

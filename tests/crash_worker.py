"""The process that tests/test_crash_recovery.py kills with SIGKILL.

It runs the real start-up path against the Redis and Postgres it is given: migrate, recover
(newest snapshot + journal), Sequencer, Persister, and a snapshot every `--snapshot-every`
acknowledged commands. The persister runs in a process of its own as the server runs it
(`--persister process`: PersisterProcess, killed with the worker's process group) or on the
worker's event loop (`--persister inline`), so a kill can land in the middle of a fold. Then
it submits a seeded load (`workload`) with up to `--in-flight` commands outstanding, and for
every acknowledged command appends one line to the ack log:

    <seq>\\t<client id>\\t<the command as submitted, engine.codec JSON, unstamped>

flushed to the OS after each batch of acks (the futures of one journal write resolve together),
so a SIGKILL loses no line of an ack the worker had received. After each snapshot it saves, it
appends the snapshot's seq to the snapshot log.

    python -m tests.crash_worker --redis-url URL --database-url URL --ack-log PATH \\
        --snapshot-log PATH [--stream S] [--seed 1] [--count 20000] [--snapshot-every 5000]
        [--persister process|inline]
"""

import argparse
import asyncio
import dataclasses
import random
import sys
from collections import deque

import asyncpg
import redis.asyncio as aioredis

from engine import commands as c
from engine.codec import encode_command
from persistence.journal import STREAM, Journal
from persistence.migrate import migrate
from persistence.persister import Persister
from persistence.persister_process import PersisterProcess
from persistence.recovery import recover
from persistence.sequencer import Sequencer
from persistence.snapshots import SnapshotStore
from pricing.ladder import TICKS

CURRENCY = "BDT"
USERS = 400
MARKETS_LIVE = 6
DEPOSIT_MINOR = 200_000


def _market_commands(name: str) -> list[c.Command]:
    return [c.CreateMarket(market=name, event=f"e-{name}", name=f"Market {name}",
                           selections=(("s1", "Home"), ("s2", "Draw"), ("s3", "Away"))),
            c.SetMarketStatus(market=name, status="open")]


def workload(count: int, seed: int, base_seq: int = 0) -> list[c.Command]:
    """`count` unstamped commands: deposits, markets, places, cancels, replaces, withdrawals,
    non-runners, settlements and voids. Client id = position in the list; refs carry it ("c<id>").

    Cancels, replaces and withdrawal decisions name ids the engine derives from seqs. They are
    predicted assuming command i gets seq base_seq + i + 1 (the sequencer takes its inbox in
    order); a wrong prediction would only turn them into rejections, never into a test error.
    """
    rng = random.Random(seed)
    cmds: list[c.Command] = []
    live: list[str] = []
    market_count = 0
    mids: dict[tuple[str, str], int] = {}
    placed: list[tuple[str, str]] = []  # (user, predicted order id)
    withdrawals: list[str] = []  # predicted ids of pending withdrawals

    def next_seq() -> int:
        return base_seq + len(cmds) + 1

    def new_market() -> None:
        nonlocal market_count
        name = f"m{market_count}"
        market_count += 1
        for sel in ("s1", "s2", "s3"):
            mids[(name, sel)] = 110 + rng.randrange(60)
        cmds.extend(_market_commands(name))
        live.append(name)

    for _ in range(MARKETS_LIVE):
        new_market()
    for u in range(USERS):
        cmds.append(c.Deposit(user=f"u{u}", currency=CURRENCY, amount_minor=DEPOSIT_MINOR,
                              ref=f"c{len(cmds)}"))

    while len(cmds) < count:
        r = rng.random()
        user = f"u{rng.randrange(USERS)}"
        if r < 0.02:
            cmds.append(c.Deposit(user=user, currency=CURRENCY,
                                  amount_minor=rng.randrange(1_000, 50_000), ref=f"c{len(cmds)}"))
        elif r < 0.03:
            withdrawals.append(f"w{next_seq()}")
            cmds.append(c.RequestWithdrawal(user=user, currency=CURRENCY,
                                            amount_minor=rng.randrange(100, 5_000)))
        elif r < 0.04 and withdrawals:
            wid = withdrawals.pop(rng.randrange(len(withdrawals)))
            decide = c.ApproveWithdrawal if rng.random() < 0.7 else c.RejectWithdrawal
            cmds.append(decide(withdrawal=wid))
        elif r < 0.14 and placed:
            owner, oid = placed[rng.randrange(len(placed))]
            reduce = rng.randrange(100, 1_000) if rng.random() < 0.2 else 0
            cmds.append(c.CancelOrder(user=owner, order=oid, size_reduction_minor=reduce))
        elif r < 0.20 and placed:
            owner, oid = placed[rng.randrange(len(placed))]
            placed.append((owner, f"o{next_seq()}"))
            cmds.append(c.ReplaceOrder(user=owner, order=oid,
                                       price=TICKS[110 + rng.randrange(60)]))
        elif r < 0.201:
            cmds.append(c.CancelAll(user=user, market=rng.choice(live)))
        elif r < 0.2035 and len(live) > 2:
            market = live.pop(rng.randrange(len(live)))
            if rng.random() < 0.6:
                winners = (rng.choice(("s1", "s2", "s3")),)
                cmds.append(c.SettleMarket(market=market, winners=winners))
            else:
                cmds.append(c.VoidMarket(market=market))
            if len(cmds) + 2 <= count:
                new_market()
        elif r < 0.2045:  # a non-runner: its bets void, earlier fills on the others repriced
            cmds.append(c.RemoveSelection(market=rng.choice(live),
                                          selection=rng.choice(("s1", "s2", "s3")),
                                          reduction_bp=rng.choice((0, 500, 2_500))))
        else:
            market = rng.choice(live)
            sel = rng.choice(("s1", "s2", "s3"))
            mid = mids[(market, sel)]
            back = rng.random() < 0.5
            if rng.random() < 0.75:  # rests: backs above the mid, lays below it
                tick = mid + rng.randrange(1, 6) if back else mid - rng.randrange(1, 6)
            else:  # crosses up to three levels into the other side
                tick = mid - 3 if back else mid + 3
            persistence = c.PERSIST if rng.random() < 0.3 else c.LAPSE
            placed.append((user, f"o{next_seq()}"))
            cmds.append(c.PlaceOrder(user=user, market=market, selection=sel,
                                     side=c.BACK if back else c.LAY, price=TICKS[tick],
                                     size_minor=rng.randrange(200, 5_000),
                                     persistence=persistence, ref=f"c{len(cmds)}"))
    return cmds[:count]


def parse_ack_line(line: str) -> tuple[int, int, str]:
    seq, client, cmd = line.rstrip("\n").split("\t", 2)
    return int(seq), int(client), cmd


async def run(args) -> int:
    redis = aioredis.from_url(args.redis_url)
    db = await asyncpg.connect(args.database_url)
    await migrate(db)
    store = SnapshotStore(db)
    journal = Journal(redis, args.stream)
    recovered = await recover(journal, store)
    sequencer = Sequencer(recovered.engine, journal, last_seq=recovered.last_seq)
    await sequencer.start()
    if args.persister == "process":
        persister = PersisterProcess(args.redis_url, args.database_url, stream=args.stream)
    else:
        persister = Persister(redis, args.database_url, stream=args.stream)
    await persister.start()
    commands = workload(args.count, args.seed, base_seq=recovered.last_seq)

    ack_log = open(args.ack_log, "a", buffering=1 << 20)
    snapshot_log = open(args.snapshot_log, "a")
    lines: list[str] = []
    failures: list[BaseException] = []
    window = asyncio.Semaphore(args.in_flight)
    loop = asyncio.get_running_loop()
    state = {"acked": 0, "flush_scheduled": False, "next_snapshot": args.snapshot_every,
             "snapshot": None}

    def flush() -> None:
        state["flush_scheduled"] = False
        ack_log.write("".join(lines))
        lines.clear()
        ack_log.flush()

    async def snapshot() -> None:
        seq, blob = await sequencer.snapshot()
        await store.save(seq, blob)
        snapshot_log.write(f"{seq}\n")
        snapshot_log.flush()

    # A command may yield no events (a cancel of a finished order), so its seq comes from the
    # journaled batch: the listener runs right after the write, before any ack callback, and
    # both see the commands in seq order, so the n-th ack callback is the n-th record.
    journaled: deque[tuple[int, c.Command]] = deque()

    def on_journaled(records) -> None:
        journaled.extend((seq, cmd) for seq, cmd, _ in records if not isinstance(cmd, c.Tick))

    sequencer.add_listener(on_journaled)

    def on_done(client: int, cmd: c.Command, future: asyncio.Future) -> None:
        window.release()
        if future.cancelled() or future.exception() is not None:
            failures.append(future.exception() or asyncio.CancelledError())
            return
        seq, stamped = journaled.popleft()
        if dataclasses.replace(stamped, seq=0, ts=0) != cmd:
            failures.append(AssertionError(f"ack of client {client} lines up with seq {seq} "
                                           f"holding another command: {stamped}"))
            return
        lines.append(f"{seq}\t{client}\t{encode_command(cmd).decode()}\n")
        state["acked"] += 1
        if not state["flush_scheduled"]:  # runs after every ack callback of this batch
            state["flush_scheduled"] = True
            loop.call_soon(flush)
        if state["acked"] >= state["next_snapshot"]:
            state["next_snapshot"] += args.snapshot_every
            running = state["snapshot"]
            if running is None or running.done():
                state["snapshot"] = asyncio.create_task(snapshot())

    for client, cmd in enumerate(commands):
        await window.acquire()
        if failures:
            break
        future = sequencer.submit(cmd)
        future.add_done_callback(lambda f, client=client, cmd=cmd: on_done(client, cmd, f))
    for _ in range(args.in_flight):
        await window.acquire()
    flush()
    if state["snapshot"] is not None:
        await state["snapshot"]
    await sequencer.stop()
    await persister.stop()
    await db.close()
    await redis.aclose()
    ack_log.close()
    snapshot_log.close()
    if failures:
        print(f"crash worker: {len(failures)} commands failed: {failures[0]!r}", file=sys.stderr)
        return 1
    print(f"crash worker: {state['acked']} commands acknowledged, last seq {sequencer.last_seq}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.crash_worker")
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--stream", default=STREAM)
    ap.add_argument("--ack-log", required=True)
    ap.add_argument("--snapshot-log", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--snapshot-every", type=int, default=5_000)
    ap.add_argument("--in-flight", type=int, default=1_000)
    ap.add_argument("--persister", choices=("process", "inline"), default="process")
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

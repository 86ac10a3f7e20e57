"""Durability under kill -9 (DESIGN.md §3.5-§3.6, §4).

A worker process (tests/crash_worker.py) runs recovery + Sequencer + Persister + periodic
snapshots against a Redis of this test's own (AOF, appendfsync always) and a fresh Postgres
database, and drives a seeded load of 10,000 commands with 40, 100 or 1,000 in flight
(placements, cancels, replaces, deposits, withdrawals requested, approved and rejected, markets
settled and voided), logging every acknowledged command. The persister runs in its own process (as the
server runs it) for odd seeds and on the worker's loop for even ones. After a seeded number of
acks, the test SIGKILLs the worker's process group (worker and persister) AND the redis-server
at once, restarts Redis from its AOF, and checks in this process that:

- every acknowledged command is in the journal at the seq it was acknowledged with, and is the
  very command the worker submitted (same fields, same client ref), and the recovered engine
  holds it (last_seq >= every acked seq);
- recovery from the newest snapshot + journal gives the same state as a replay of the whole
  journal from empty (both verify every event byte for byte), and uses the newest snapshot the
  worker reported saved (or a later one);
- the recovered engine passes validate(): money conserved to the cent (balances sum to 0 per
  currency), no negative available, holds and sizes recomputed from scratch; and the money in
  the wallets is exactly what came in by deposits minus what left by approved withdrawals;
- the recovered engine carries on at last_seq + 1;
- a persister restarted over the crashed one's consumer group converges and acknowledges every
  entry: Postgres equals the journal. Each ledger entry, fill, order, settlement and withdrawal
  the journal's events imply is there exactly once (no gap, no duplicate), wallets equal the
  engine's, and every table equals the whole journal folded from empty in one batch
  (tests/read_model_oracle.py), so no batch was skipped or folded twice.
"""

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine import commands as c
from engine.codec import decode_command
from engine.engine import EXTERNAL
from persistence.embedded import EmbeddedRedis
from persistence.journal import Journal
from persistence.persister import Persister
from persistence.recovery import recover
from persistence.sequencer import Sequencer
from persistence.snapshots import SnapshotStore
from tests.crash_worker import USERS, parse_ack_line, workload
from tests.engine_helpers import state_fingerprint
from tests.read_model_oracle import (dump, expected_dump, facts_differences, journal_facts,
                                     read_model_differences)

ROOT = Path(__file__).resolve().parent.parent
STREAM = "crash:journal"
COMMANDS = 10_000
SNAPSHOT_EVERY = 3_000
SEEDS = tuple(range(1, 25))
# commands in flight: a full window journals big batches faster than the persister folds them;
# small ones let it keep up, so that the kill lands among its commits and acknowledgements
IN_FLIGHT = (1_000, 100, 40)
WORKER_DEADLINE_S = 60.0  # only a hang guard: nothing here asserts on time

pytestmark = pytest.mark.slow


def kill_after_acks(seed: int) -> int:
    return random.Random(seed).randrange(2_000, 9_000)


def _complete_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    return lines[:-1]  # the part after the last newline is empty, or a line cut by the kill


def _wait_for_acks(worker: subprocess.Popen, ack_log: Path, target: int, stderr: Path) -> None:
    deadline = time.monotonic() + WORKER_DEADLINE_S
    seen, offset = 0, 0
    while seen < target:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited ({worker.returncode}) after {seen} acks, before the "
                        f"kill at {target}:\n{stderr.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"only {seen} acks after {WORKER_DEADLINE_S}s:\n"
                        f"{stderr.read_text()[-3000:]}")
        if ack_log.exists():
            with ack_log.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            seen += chunk.count(b"\n")
            offset += len(chunk)
        time.sleep(0.005)


def persister_mode(seed: int) -> str:
    return "process" if seed % 2 else "inline"


def in_flight(seed: int) -> int:
    return IN_FLIGHT[seed % len(IN_FLIGHT)]


@pytest.mark.parametrize("seed", SEEDS)
def test_no_acknowledged_command_is_lost_to_kill_9(seed, tmp_path, database_url, postgres_server,
                                                    run):
    redis_dir = tmp_path / "redis"
    server = EmbeddedRedis(redis_dir, appendfsync="always")
    server.start()
    ack_log, snapshot_log = tmp_path / "acks.log", tmp_path / "snapshots.log"
    stdout, stderr = tmp_path / "worker.out", tmp_path / "worker.err"
    target = kill_after_acks(seed)
    try:
        with stdout.open("w") as out, stderr.open("w") as err:
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.crash_worker", "--redis-url", server.url,
                 "--database-url", database_url, "--stream", STREAM, "--ack-log", str(ack_log),
                 "--snapshot-log", str(snapshot_log), "--seed", str(seed),
                 "--count", str(COMMANDS), "--snapshot-every", str(SNAPSHOT_EVERY),
                 "--persister", persister_mode(seed), "--in-flight", str(in_flight(seed))],
                cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "PYTHONHASHSEED": "0"},
                start_new_session=True)  # its own process group: the worker and its persister
        try:
            _wait_for_acks(worker, ack_log, target, stderr)
        finally:
            # The processes and the Redis under them die together, mid-flight.
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:  # it exited already: _wait_for_acks failed the test
                pass
            os.kill(server.pid, signal.SIGKILL)
            worker.wait()
            server._process.wait()
        server = EmbeddedRedis(redis_dir, appendfsync="always")  # loads the AOF
        server.start()
        assert not server.adopted

        acks = [parse_ack_line(line) for line in _complete_lines(ack_log)]
        reported_snapshots = [int(s) for s in _complete_lines(snapshot_log)]
        found = run(_recover_and_persist(server.url, database_url, postgres_server),
                    timeout_s=120)
    finally:
        server.stop()

    recovered, fresh, journaled, at_recovery, continued_seq, pg, facts = found
    engine = recovered.engine  # carried on after recovery: it holds one more deposit
    print(f"seed {seed}: killed after {len(acks)} acks (target {target}); journal at seq "
          f"{recovered.last_seq}, max acked {max(s for s, _, _ in acks)}; snapshots reported "
          f"{reported_snapshots}, recovered from {recovered.snapshot_seq} + "
          f"{recovered.replayed}; postgres was at seq {pg['persisted_at_kill']} with "
          f"{pg['pending_at_kill']} entries pending ({persister_mode(seed)} persister, "
          f"{in_flight(seed)} in flight)")

    # -- every acknowledged command survived, at its seq, exactly as submitted ----------------
    assert len(acks) >= target
    generated = workload(COMMANDS, seed)
    seqs = [seq for seq, _, _ in acks]
    clients = [client for _, client, _ in acks]
    assert len(set(seqs)) == len(seqs) and len(set(clients)) == len(clients)
    assert recovered.last_seq >= max(seqs)
    for seq, client, logged in acks:
        submitted = decode_command(logged)
        assert submitted == generated[client], f"client {client}: log and workload disagree"
        stored = journaled.get(seq)
        assert stored is not None, f"acknowledged seq {seq} (client {client}) is not journaled"
        assert dataclasses.replace(stored, seq=0, ts=0) == submitted, (seq, client, stored)
        if getattr(submitted, "ref", ""):
            assert stored.ref == f"c{client}"
    assert set(journaled) == set(range(1, recovered.last_seq + 1))

    # -- snapshot + journal == the whole journal from empty, and the engine is consistent -----
    assert recovered.snapshot_seq >= max(reported_snapshots, default=0)
    assert recovered.snapshot_seq + recovered.replayed == recovered.last_seq
    assert fresh.snapshot_seq == 0 and fresh.replayed == fresh.last_seq == recovered.last_seq
    assert at_recovery["fingerprint"] == state_fingerprint(fresh.engine)
    assert at_recovery["seq_ts"] == (fresh.engine.last_seq, fresh.engine.last_ts)
    assert at_recovery["valid"] == "ok"
    fresh.engine.validate()  # conservation, available >= 0, holds, sizes, books (DESIGN.md §3)
    engine.validate()
    totals = defaultdict(int)
    for wallet in engine.wallets.values():
        totals[wallet.currency] += wallet.balance
        assert wallet.exempt or wallet.available >= 0, wallet
    assert totals and all(total == 0 for total in totals.values()), dict(totals)
    # money moved in and out, and what is inside is exactly what came in minus what went out
    assert facts.kinds["MoneyMoved:deposit"] > USERS and facts.kinds["WithdrawalApproved"] > 0
    assert facts.kinds["WithdrawalRejected"] > 0 and facts.kinds["MoneyMoved:settlement"] > 0
    assert facts.kinds["MarketVoided"] > 0 and facts.kinds["BetMatched"] > 0
    for currency, total in totals.items():
        inside = sum(w.balance for (user, cur), w in engine.wallets.items()
                     if cur == currency and user != EXTERNAL)
        assert inside == facts.money_in[currency] - facts.money_out[currency] == (
            -engine.wallets[(EXTERNAL, currency)].balance), currency
    assert continued_seq == recovered.last_seq + 1

    # -- the read model converged to the engine ----------------------------------------------
    assert pg["persisted_seq"] == continued_seq == engine.last_seq
    assert pg["wallets"] == {key: (w.balance, w.held) for key, w in engine.wallets.items()}
    assert pg["movements"] > 0 and pg["unbalanced_movements"] == []
    # the engine keeps the orders of open markets; the read model keeps every order, and those
    # the engine retired (settled or voided markets) are final there
    assert {oid: pg["orders"][oid] for oid in engine.orders} == {
        oid: (o.matched, o.remaining, o.cancelled, o.lapsed) for oid, o in engine.orders.items()}
    assert all(remaining == 0 for oid, (_, remaining, _, _) in pg["orders"].items()
               if oid not in engine.orders)
    # ... and to the journal: every seq's rows exactly once, every entry acknowledged
    assert facts.last_seq == engine.last_seq
    assert pg["differences_from_journal"] == {}
    assert pg["differences_from_one_fold"] == {}
    assert pg["pending"] == 0


async def _recover_and_persist(redis_url: str, database_url: str, postgres_server):
    redis = aioredis.from_url(redis_url)
    db = await asyncpg.connect(database_url)
    try:
        journal = Journal(redis, STREAM)
        recovered = await recover(journal, SnapshotStore(db))
        fresh = await recover(journal, None)
        journaled = {seq: cmd async for seq, cmd, _ in journal.read_raw()}
        at_recovery = {"fingerprint": state_fingerprint(recovered.engine),
                       "seq_ts": (recovered.engine.last_seq, recovered.engine.last_ts)}
        try:
            recovered.engine.validate()
            at_recovery["valid"] = "ok"
        except Exception as exc:
            at_recovery["valid"] = repr(exc)

        # The recovered engine takes new work where the journal ends.
        sequencer = Sequencer(recovered.engine, journal, last_seq=recovered.last_seq)
        await sequencer.start()
        events = await sequencer.submit(c.Deposit(user="after-crash", currency="BDT",
                                                  amount_minor=1_234, ref="after-crash"))
        await sequencer.stop()

        persisted_at_kill = await db.fetchval("SELECT seq FROM persisted")
        pending_at_kill = (await redis.xpending(STREAM, "persister"))["pending"]
        # A new persister takes over the crashed one's pending entries and catches up.
        persister = Persister(redis, database_url, stream=STREAM, consumer="persister-restarted")
        await persister.prepare()
        while persister.persisted_seq < sequencer.last_seq:
            await persister.step(block_ms=100)
        await persister.stop()

        records = [record async for record in journal.read()]
        facts = journal_facts(records)
        tables = await dump(db)
        pg = {
            "persisted_at_kill": persisted_at_kill,
            "pending_at_kill": pending_at_kill,
            "pending": (await redis.xpending(STREAM, "persister"))["pending"],
            "differences_from_journal": facts_differences(tables, facts),
            "differences_from_one_fold": read_model_differences(
                tables, await expected_dump(postgres_server.url, postgres_server.url_for,
                                            records)),
            "persisted_seq": await db.fetchval("SELECT seq FROM persisted"),
            "wallets": {(r["user_id"], r["currency"]): (r["balance_minor"], r["held_minor"])
                        for r in await db.fetch("SELECT * FROM wallets")},
            "movements": await db.fetchval(
                "SELECT count(*) FROM (SELECT DISTINCT seq, movement FROM ledger_entries) m"),
            "unbalanced_movements": [tuple(r) for r in await db.fetch(
                "SELECT seq, movement, sum(amount_minor) FROM ledger_entries "
                "GROUP BY seq, movement HAVING sum(amount_minor) <> 0")],
            "orders": {r["order_id"]: (r["matched_minor"], r["remaining_minor"],
                                       r["cancelled_minor"], r["lapsed_minor"])
                       for r in await db.fetch("SELECT * FROM orders")},
        }
        return recovered, fresh, journaled, at_recovery, events[0].seq, pg, facts
    finally:
        await db.close()
        await redis.aclose()

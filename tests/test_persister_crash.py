"""A persister killed -9 in the middle of a fold loses nothing and doubles nothing
(DESIGN.md §4: "it never loses or doubles a row").

A seeded journal (tests/crash_worker.py's workload: placements, cancels, replaces, deposits,
withdrawals, settlements and voids, applied by a real Engine) is folded by a persister in a
process of its own (tests/persister_crash_worker.py) that SIGKILLs itself during its N-th fold:
after reading the entries, after writing the rows but before COMMIT, or after COMMIT but before
XACK. Then a persister is restarted over the same consumer group, in its own process as the
server runs it (PersisterProcess), under the dead one's consumer name (it reads its own pending
entries again) or under another (it takes them over with XAUTOCLAIM). Checked:

- at the kill, Postgres holds exactly the folds committed before it, and the dying fold's
  entries are pending in the group (not acknowledged);
- after the restart, Postgres equals the journal: each ledger entry, fill, order, settlement and
  withdrawal exactly once, persisted seq at the journal's end, and every table equal to the
  journal folded from empty in one batch: the redelivered entries of a committed fold were
  skipped by seq, not folded a second time; and no entry is left pending.
"""

import asyncio
import dataclasses
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from engine.engine import Engine
from persistence.journal import Journal
from persistence.persister import GROUP
from persistence.persister_process import PersisterProcess
from tests.crash_worker import workload
from tests.persister_crash_worker import NEVER_DIED
from tests.read_model_oracle import (dump, expected_dump, facts_differences, journal_facts,
                                     read_model_differences)

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = 4_000
BATCH_MAX = 150  # commands per journal entry, like a sequencer's group commit
READ_COUNT_MAX = 3  # entries per fold: many folds, so the kill lands in the middle
DEADLINE_S = 60.0  # only a hang guard: nothing here asserts on time
CASES = [(point, consumer, seed)
         for seed, point in enumerate(("after-commit", "before-commit", "after-read"), start=1)
         for consumer in ("persister-1", "persister-restarted")]
CASES += [("after-commit", "persister-1", 4), ("after-commit", "persister-restarted", 5)]

pytestmark = pytest.mark.slow


def journal_records(seed: int) -> list:
    engine, records = Engine(), []
    for cmd in workload(COMMANDS, seed):
        seq = engine.last_seq + 1
        cmd = dataclasses.replace(cmd, seq=seq, ts=1_000_000 + seq)
        records.append((seq, cmd, engine.apply(cmd)))
    engine.validate()
    return records


def entry_batches(records: list, seed: int) -> list[list]:
    rng, batches, i = random.Random(seed), [], 0
    while i < len(records):
        size = rng.randrange(1, BATCH_MAX + 1)
        batches.append(records[i:i + size])
        i += size
    return batches


@pytest.mark.parametrize(("point", "consumer", "seed"), CASES)
def test_a_persister_killed_mid_fold_is_restarted_without_losing_or_doubling_a_row(
        point, consumer, seed, redis_url, migrated_database_url, postgres_server, run,
        tmp_path):
    stream = f"test:{uuid.uuid4().hex[:12]}:journal"
    records = journal_records(seed)
    batches = entry_batches(records, seed)
    folds = -(-len(batches) // READ_COUNT_MAX)
    at_fold = random.Random(seed).randrange(2, folds)
    report = tmp_path / "died.txt"

    async def journal_it():
        redis = aioredis.from_url(redis_url)
        journal = Journal(redis, stream)
        for batch in batches:
            await journal.append(batch)
        await redis.aclose()

    run(journal_it())
    dying = subprocess.run(
        [sys.executable, "-m", "tests.persister_crash_worker", "--redis-url", redis_url,
         "--database-url", migrated_database_url, "--stream", stream, "--consumer",
         "persister-1", "--die", point, "--at-fold", str(at_fold), "--report", str(report),
         "--read-count-max", str(READ_COUNT_MAX)],
        cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S)
    assert dying.returncode != NEVER_DIED, dying.stdout
    assert dying.returncode == -9, dying.stderr[-3000:]
    died_at, seq_before, seq_after, *fold_ids = report.read_text().split()
    seq_before, seq_after = int(seq_before), int(seq_after)
    assert died_at == point and fold_ids

    found = run(_restart(redis_url, migrated_database_url, postgres_server, stream, consumer,
                         records), timeout_s=DEADLINE_S)
    at_kill, pending_ids, converged, pending_after, differences_journal, differences_fold = found
    print(f"seed {seed}: {len(batches)} entries, {folds} folds of up to {READ_COUNT_MAX}; died "
          f"{point} fold {at_fold} (seq {seq_before} -> {seq_after}); postgres at {at_kill}, "
          f"{len(pending_ids)} entries pending; restarted as {consumer}")

    # -- the kill: what was committed is there, the dying fold's entries are not acknowledged --
    assert seq_before < seq_after
    assert at_kill == (seq_after if point == "after-commit" else seq_before)
    assert set(fold_ids) <= pending_ids
    # -- the restart: every seq folded exactly once, nothing left pending ---------------------
    assert converged == records[-1][0]
    assert pending_after == 0
    assert differences_journal == {}
    assert differences_fold == {}


async def _restart(redis_url, database_url, postgres_server, stream, consumer, records):
    redis = aioredis.from_url(redis_url)
    db = await asyncpg.connect(database_url)
    try:
        at_kill = await db.fetchval("SELECT seq FROM persisted")
        pending_ids = {entry["message_id"].decode() for entry in await redis.xpending_range(
            stream, GROUP, min="-", max="+", count=10_000)}

        persister = PersisterProcess(redis_url, database_url, stream=stream, consumer=consumer)
        await persister.start()
        deadline = time.monotonic() + DEADLINE_S
        while persister.persisted_seq < records[-1][0] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await persister.stop()

        tables = await dump(db)
        return (at_kill, pending_ids, tables["persisted"][0][1],
                (await redis.xpending(stream, GROUP))["pending"],
                facts_differences(tables, journal_facts(records)),
                read_model_differences(tables, await expected_dump(
                    postgres_server.url, postgres_server.url_for, records)))
    finally:
        await db.close()
        keys = [key async for key in redis.scan_iter(match=f"{stream}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

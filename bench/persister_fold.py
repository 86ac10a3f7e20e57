"""Persister fold benchmark: the persister's own CPU per journaled command, without Redis or
Postgres.

Journals order_stream(--count) (plus its setup commands: markets and deposits) in memory: each
command applied by an Engine, the records cut into entries of --batch commands, each encoded as
the sequencer writes it (persistence/journal.encode_entry). Then, as the persister handles
--entries entries per transaction, runs three steps on each transaction in turn and times each
step separately (CPU time, summed over the journal; the best of --repeat runs):

  decode  journal.decode_entry of every entry of a transaction, records concatenated;
  fold    fold.fold of the transaction's records (events -> a Changes);
  rows    readmodel.write_changes of that Changes against a connection that only takes what
          it is given (RecordingConnection): the row tuples and lists asyncpg would be handed;
  free    dropping the transaction's records and Changes (their objects freed).

Prints µs per command for each, and the number of rows a command made. Nothing goes to
Postgres in these steps: what asyncpg and Postgres do with the rows is measured by
bench/journal.py's persister phase and bench/e2e.py, and by `--postgres`:

  --postgres  then writes the same transactions into a fresh embedded Postgres (migrated, as
              the persister's connection: synchronous_commit off), timing each statement
              write_changes sends (wall time: asyncpg's encoding and Postgres's work, on an
              otherwise idle machine most of it CPU); prints µs per command per statement,
              and the CPU the Postgres backend and this process used over the whole write
              (CPU time counts only what ran: steadier than wall time on a shared machine).
              `--sql "ALTER TABLE ..."` (repeatable) runs before it, to try a schema change;
              `--copy-rows-min N` sets readmodel.COPY_ROWS_MIN (a huge N: never COPY).

    python bench/persister_fold.py [--count 100000] [--batch 250] [--entries 8] [--repeat 5]
                                   [--seed 7] [--markets 20] [--users 1000] [--postgres [--sql STATEMENT]...
                                   [--copy-rows-min N]]
"""

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workload import order_stream  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from persistence.collector import tune_collector  # noqa: E402
from persistence.fold import fold  # noqa: E402
from persistence.journal import decode_entry, encode_entry  # noqa: E402
from persistence import readmodel  # noqa: E402
from persistence.readmodel import write_changes  # noqa: E402

CONFIG = EngineConfig(velocity_orders_max=0)  # the stream's stamps are 1 ms apart


class RecordingConnection:
    """Takes write_changes' statements and counts their rows; an update reports every row it
    was given as changed, so no existence check follows (none would without Postgres)."""

    def __init__(self) -> None:
        self.rows = 0

    async def execute(self, sql: str, *args) -> str:
        n = len(args[0])  # one array of records, or the first of several column arrays
        self.rows += n
        return f"UPDATE {n}"

    async def executemany(self, sql: str, rows) -> None:
        self.rows += len(rows)

    async def copy_records_to_table(self, table: str, *, records, columns) -> None:
        self.rows += len(records)

    def transaction(self):  # the savepoint around a COPY
        return contextlib.nullcontext()


def run_sync(coroutine):
    """Run a coroutine that never suspends (RecordingConnection's) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the coroutine suspended")


def journal(count: int, batch: int, seed: int, markets: int, users: int) -> list[dict]:
    engine = Engine(CONFIG)
    cmds = order_stream(count, markets=markets, users=users, seed=seed)
    records = [(cmd.seq, cmd, engine.apply(cmd)) for cmd in cmds]
    return [{k.encode(): v for k, v in encode_entry(records[i:i + batch]).items()}
            for i in range(0, len(records), batch)]


def persist(groups: list) -> tuple[list[float], int, int, int]:
    """Each transaction's entries decoded, folded, made rows and dropped, one step after the
    other as the persister does (each step's input fresh from the one before, as warm in the caches):
    CPU seconds of each step, summed over the transactions (CPU time: the machine's other
    processes take turns on the cores without counting), and the commands, events and rows
    seen. Only the transaction in hand is kept, as in the persister."""
    spent = [0.0, 0.0, 0.0, 0.0]
    commands = events = made = 0
    clock = time.process_time
    for group in groups:
        t0 = clock()
        records = decode(group)
        t1 = clock()
        changes = fold(records)
        t2 = clock()
        count = rows(changes)
        t3 = clock()
        commands += len(records)
        events += sum(len(e) for _, _, e in records)
        made += count
        t4 = clock()
        records = changes = None
        t5 = clock()
        spent[0] += t1 - t0
        spent[1] += t2 - t1
        spent[2] += t3 - t2
        spent[3] += t5 - t4
    return spent, commands, events, made


def decode(group: list[dict]) -> list:
    records = []
    for fields in group:
        records.extend(decode_entry(fields))
    return records


def rows(changes) -> int:
    conn = RecordingConnection()
    run_sync(write_changes(conn, changes))
    return conn.rows


class TimedConnection:
    """A real asyncpg connection whose statements are timed, by what they write to."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.spent: collections.Counter = collections.Counter()

    @staticmethod
    def _what(sql: str) -> str:
        found = re.search(r"(INSERT INTO|UPDATE)\s+(\w+)", sql)
        return f"{found.group(1).split()[0]} {found.group(2)}" if found else sql.split()[0]

    async def _timed(self, what: str, call, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            self.spent[what] += time.perf_counter() - started

    async def execute(self, sql: str, *args):
        return await self._timed(self._what(sql), self.conn.execute, sql, *args)

    async def executemany(self, sql: str, rows):
        return await self._timed(self._what(sql), self.conn.executemany, sql, rows)

    async def fetch(self, sql: str, *args):
        return await self._timed("SELECT (checks)", self.conn.fetch, sql, *args)

    async def copy_records_to_table(self, table: str, **kwargs):
        return await self._timed(f"COPY {table}", self.conn.copy_records_to_table, table,
                                 **kwargs)

    def transaction(self):
        return self.conn.transaction()


async def into_postgres(groups: list, statements: list[str]) -> tuple[dict, float, int, tuple]:
    """Every transaction written into a fresh embedded Postgres: seconds per statement kind,
    seconds of COMMITs, the commands written, and the CPU seconds the Postgres backend and
    this process used over all of it (steadier than wall time on a shared machine)."""
    import asyncpg
    import psutil

    from persistence.embedded import EmbeddedPostgres
    from persistence.migrate import migrate

    with tempfile.TemporaryDirectory(prefix="backlay-persister-fold-") as tmp:
        pg = EmbeddedPostgres(f"{tmp}/pg")
        pg.start()
        try:
            conn = await asyncpg.connect(pg.url)
            await migrate(conn)
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("SET synchronous_commit TO off")  # as the persister's
            timed = TimedConnection(conn)
            commit_s = 0.0
            commands = 0
            backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
            backend_before = sum(backend.cpu_times()[:2])
            own_before = time.process_time()
            for group in groups:
                records = decode(group)
                changes = fold(records)
                commands += len(records)
                async with conn.transaction():
                    await write_changes(timed, changes)
                    committing = time.perf_counter()
                commit_s += time.perf_counter() - committing
            cpu = (sum(backend.cpu_times()[:2]) - backend_before,
                   time.process_time() - own_before)
            await conn.close()
        finally:
            pg.stop()
    return dict(timed.spent), commit_s, commands, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000, help="trading commands")
    ap.add_argument("--batch", type=int, default=250, help="commands per journal entry")
    ap.add_argument("--entries", type=int, default=8, help="entries per transaction")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markets", type=int, default=20,
                    help="markets the orders spread over (bench/e2e.py trades on 1)")
    ap.add_argument("--users", type=int, default=1000, help="bettors (bench/e2e.py has 50)")
    ap.add_argument("--postgres", action="store_true",
                    help="also write the transactions into an embedded Postgres, timed")
    ap.add_argument("--sql", action="append", default=[],
                    help="with --postgres: a statement to run after migrating (repeatable)")
    ap.add_argument("--copy-rows-min", type=int, default=None,
                    help="with --postgres: readmodel.COPY_ROWS_MIN for the run")
    args = ap.parse_args()
    if args.copy_rows_min is not None:
        readmodel.COPY_ROWS_MIN = args.copy_rows_min

    entries = journal(args.count, args.batch, args.seed, args.markets, args.users)
    groups = [entries[i:i + args.entries] for i in range(0, len(entries), args.entries)]
    gc.collect()  # the engine that wrote the journal
    tune_collector()  # the persister process's collector policy
    runs = [persist(groups) for _ in range(args.repeat)]
    _, commands, events, made = runs[0]
    decode_s, fold_s, rows_s, free_s = (min(spent[i] for spent, *_ in runs) for i in range(4))

    print(f"persister fold bench: order_stream({args.count:,}, seed {args.seed}, "
          f"{args.markets} markets, {args.users} users) = "
          f"{commands:,} commands, {events / commands:.2f} events and "
          f"{made / commands:.2f} rows per command; entries of {args.batch}, "
          f"{args.entries} per transaction; best of {args.repeat}")
    per = 1e6 / commands
    print(f"  decode  {decode_s * per:6.2f} µs/command")
    print(f"  fold    {fold_s * per:6.2f} µs/command")
    print(f"  rows    {rows_s * per:6.2f} µs/command")
    print(f"  free    {free_s * per:6.2f} µs/command")
    print(f"  total   {(decode_s + fold_s + rows_s + free_s) * per:6.2f} µs/command")
    if not args.postgres:
        return
    import uvloop

    spent, commit_s, written, (backend_s, own_s) = uvloop.run(into_postgres(groups, args.sql))
    per = 1e6 / written
    print("into Postgres (wall time per command: asyncpg's encoding and Postgres's work)"
          + "".join(f"; after {statement!r}" for statement in args.sql))
    for what, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {what:<28} {seconds * per:6.2f} µs/command")
    print(f"  {'COMMIT':<28} {commit_s * per:6.2f} µs/command")
    print(f"  {'all':<28} {(sum(spent.values()) + commit_s) * per:6.2f} µs/command")
    print(f"  CPU: Postgres backend {backend_s * per:.2f} µs/command; this process (decode, "
          f"fold, asyncpg, its event loop) {own_s * per:.2f} µs/command")


if __name__ == "__main__":
    main()

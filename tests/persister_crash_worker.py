"""A persister that SIGKILLs itself at one point of its N-th fold (tests/test_persister_crash.py).

It folds the journal like any persister (persistence/persister.py, through a test-only subclass:
production code has no fault hook) until its `--at-fold`-th transaction, and dies there:

    after-read     the entries are read (pending in the consumer group), nothing is written yet
    before-commit  every row and the new persisted seq are written, the COMMIT is not sent
    after-commit   the COMMIT returned, nothing is acknowledged yet (no XACK)

Right before the SIGKILL it appends one line to the report file:

    <point> <persisted seq before the fold> <the fold's last seq> <its entry ids> ...

If the journal runs out before that fold, it exits with status 3 instead.

    python -m tests.persister_crash_worker --redis-url URL --database-url URL --stream S \\
        --consumer NAME --die POINT --at-fold N --report PATH [--read-count-max 3]
"""

import argparse
import asyncio
import os
import signal

import redis.asyncio as aioredis

from persistence.journal import Journal, entry_id_seq
from persistence.persister import Persister

POINTS = ("after-read", "before-commit", "after-commit")
NEVER_DIED = 3


class DyingPersister(Persister):
    def __init__(self, *args, die: str, at_fold: int, report: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.die, self.at_fold, self.report = die, at_fold, report
        self.folds = 0
        self._fold_entries: list = []
        self._seq_before = 0

    def _dying(self, point: str) -> bool:
        return self.die == point and self.folds == self.at_fold

    def _report_and_die(self) -> None:
        ids = [entry_id.decode() for entry_id, _ in self._fold_entries]
        line = f"{self.die} {self._seq_before} {entry_id_seq(ids[-1])} {' '.join(ids)}\n"
        fd = os.open(self.report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, line.encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    async def _persist_entries(self, entries: list) -> None:
        self.folds += 1
        self._fold_entries, self._seq_before = entries, self.committed_seq
        if self._dying("after-read"):
            self._report_and_die()
        await super()._persist_entries(entries)

    async def _connection(self):
        conn = await super()._connection()
        return _DieBeforeCommit(conn, self) if self.die == "before-commit" else conn

    async def _await_flush(self, conn, seq: int, ts_ms: int, ids: list) -> None:
        # called right after a fold's COMMIT returned, before any XACK
        if self._dying("after-commit"):
            self._report_and_die()
        await super()._await_flush(conn, seq, ts_ms, ids)


class _DieBeforeCommit:
    """The persister's connection, but the dying fold's transaction ends in a SIGKILL where
    its COMMIT would be sent."""

    def __init__(self, conn, persister: DyingPersister):
        self._conn, self._persister = conn, persister

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def transaction(self):
        return _Transaction(self._conn, self._persister)


class _Transaction:
    def __init__(self, conn, persister: DyingPersister):
        self._conn, self._persister = conn, persister
        self._transaction = conn.transaction()

    async def __aenter__(self):
        return await self._transaction.__aenter__()

    async def __aexit__(self, exc_type, exc, tb):
        if exc_type is None and self._persister._dying("before-commit"):
            self._persister._report_and_die()
        return await self._transaction.__aexit__(exc_type, exc, tb)


async def run(args) -> int:
    redis = aioredis.from_url(args.redis_url)
    persister = DyingPersister(redis, args.database_url, stream=args.stream,
                               consumer=args.consumer, read_count_max=args.read_count_max,
                               die=args.die, at_fold=args.at_fold, report=args.report)
    await persister.prepare()
    last_seq = await Journal(redis, args.stream).last_seq()
    while await persister.step(block_ms=100) or persister.committed_seq < last_seq:
        pass
    await persister.stop()
    await redis.aclose()
    print(f"the journal ended after {persister.folds} folds, before fold {args.at_fold}")
    return NEVER_DIED


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.persister_crash_worker")
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--consumer", required=True)
    ap.add_argument("--die", choices=POINTS, required=True)
    ap.add_argument("--at-fold", type=int, required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--read-count-max", type=int, default=3)
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

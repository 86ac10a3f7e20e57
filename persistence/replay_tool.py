"""`backlay replay`: rebuild the exchange state from the journal and check it.

Every journaled command runs through a fresh engine again (from empty, or from the newest
snapshot with --from-snapshot), and the events it yields are compared byte for byte with the
events journaled the first time (persistence.recovery.recover). Prints the replay rate, the
final seq and a summary of the state (markets, orders, wallets, total balance per currency),
then recomputes every invariant (engine.validate) unless --no-validate.

Read-only: nothing is written to Redis or Postgres. Storage comes from REDIS_URL / DATABASE_URL
(or BACKLAY_REDIS_URL / BACKLAY_DATABASE_URL, or the flags); without them the embedded servers
in --var-dir are used: as they are if the exchange is running there, started (and stopped again
afterwards) if not. Postgres is only needed for --from-snapshot.

Exit status: 0 replay verified; 1 the journal and the engine disagree (DeterminismError), the
journal has a gap (trimmed: try --from-snapshot), or an invariant is broken; 2 usage errors.

    backlay replay [--from-snapshot] [--stream backlay:journal] [--var-dir var] [--no-validate]
"""

import argparse
import asyncio
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import asyncpg
import redis.asyncio as aioredis

from .embedded import EmbeddedPostgres, EmbeddedRedis, _live_pid, _read_pid
from .journal import STREAM, Journal
from .recovery import DeterminismError, JournalGap, Recovered, recover
from .snapshots import SnapshotStore

SYSTEM_ACCOUNTS = ("house", "commission", "external")


@dataclass
class ReplayReport:
    recovered: Recovered
    seconds: float
    journal_entries: int  # stream entries (one per sequencer batch)
    markets: Counter = field(default_factory=Counter)  # status -> count
    orders: int = 0
    open_orders: int = 0
    wallets: int = 0
    user_wallets: int = 0
    total_balance: dict = field(default_factory=dict)  # currency -> sum of every balance
    user_balance: dict = field(default_factory=dict)  # currency -> sum of users' balances
    user_held: dict = field(default_factory=dict)
    invariants: str = "not checked"

    @property
    def commands_per_s(self) -> float:
        return self.recovered.replayed / self.seconds if self.seconds > 0 else 0.0


def summarise(recovered: Recovered, seconds: float, journal_entries: int,
              validate: bool = True) -> ReplayReport:
    engine = recovered.engine
    report = ReplayReport(recovered, seconds, journal_entries)
    report.markets = Counter(m.status for m in engine.markets.values())
    report.orders = len(engine.orders)
    report.open_orders = sum(1 for o in engine.orders.values() if o.remaining)
    total, users, held = defaultdict(int), defaultdict(int), defaultdict(int)
    for (user, currency), wallet in engine.wallets.items():
        total[currency] += wallet.balance
        if user not in SYSTEM_ACCOUNTS:
            users[currency] += wallet.balance
            held[currency] += wallet.held
            report.user_wallets += 1
    report.wallets = len(engine.wallets)
    report.total_balance, report.user_balance, report.user_held = (
        dict(total), dict(users), dict(held))
    if validate:
        try:
            engine.validate()
            report.invariants = "ok"
        except Exception as exc:  # InvariantBroken, or a bug validate tripped over
            report.invariants = f"BROKEN: {exc}"
    return report


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def print_report(report: ReplayReport, stream: str, out: TextIO) -> None:
    r = report.recovered
    start = f"snapshot at seq {r.snapshot_seq:,}" if r.snapshot_seq else "empty"
    print(f"replayed {r.replayed:,} commands of {stream} ({report.journal_entries:,} stream "
          f"entries) from {start} in {report.seconds:.2f} s: "
          f"{report.commands_per_s:,.0f} entries/s; every event verified byte for byte", file=out)
    print(f"final seq {r.last_seq:,}", file=out)
    statuses = ", ".join(f"{n:,} {s}" for s, n in sorted(report.markets.items()))
    print(f"markets {sum(report.markets.values()):,}" + (f" ({statuses})" if statuses else ""),
          file=out)
    print(f"orders {report.orders:,} ({report.open_orders:,} open)", file=out)
    print(f"wallets {report.wallets:,} ({report.user_wallets:,} user wallets)", file=out)
    for currency in sorted(report.total_balance):
        print(f"total balance {currency} {_money(report.total_balance[currency])} "
              f"(users {_money(report.user_balance.get(currency, 0))}, "
              f"held {_money(report.user_held.get(currency, 0))})", file=out)
    if not report.total_balance:
        print("total balance 0.00 (no wallets)", file=out)
    print(f"invariants {report.invariants}", file=out)


async def replay(redis_url: str, *, stream: str = STREAM, database_url: str | None = None,
                 from_snapshot: bool = False, validate: bool = True,
                 engine_factory: Callable[[], object] | None = None) -> ReplayReport:
    """Rebuild and verify the state; raises DeterminismError / JournalGap like recover()."""
    redis = aioredis.from_url(redis_url)
    db = None
    try:
        store = None
        if from_snapshot:
            if database_url is None:
                raise ValueError("--from-snapshot needs Postgres (DATABASE_URL)")
            db = await asyncpg.connect(database_url)
            if await db.fetchval("SELECT to_regclass('snapshots')") is not None:
                store = SnapshotStore(db)
        journal = Journal(redis, stream)
        journal_entries = await redis.xlen(stream)
        kwargs = {} if engine_factory is None else {"engine_factory": engine_factory}
        started = time.perf_counter()
        recovered = await recover(journal, store, **kwargs)
        seconds = time.perf_counter() - started
    finally:
        if db is not None:
            await db.close()
        await redis.aclose()
    return summarise(recovered, seconds, journal_entries, validate)


def _running_redis_url(data_dir: Path) -> str | None:
    """The URL of the exchange's embedded redis-server if it runs in data_dir. Used as is,
    not adopted: adopting re-applies the fsync policy, and a replay must change nothing."""
    pid = _read_pid(data_dir / "redis.pid")
    if pid is None or not _live_pid(pid):
        return None
    try:
        return (data_dir / "redis.url").read_text().strip() or None
    except OSError:
        return None


def _running_postgres(data_dir: Path) -> bool:
    pid = _read_pid(data_dir / "postmaster.pid")
    return pid is not None and _live_pid(pid)


def _env(environ, *names: str) -> str | None:
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backlay replay",
        description="Rebuild the state from the journal, verifying every event byte for byte.")
    parser.add_argument("--from-snapshot", action="store_true",
                        help="start from the newest snapshot in Postgres instead of empty")
    parser.add_argument("--stream", default=None,
                        help=f"journal stream (BACKLAY_STREAM, default {STREAM})")
    parser.add_argument("--var-dir", default=None,
                        help="embedded servers' directory when no URL is set "
                             "(BACKLAY_VAR_DIR, default var)")
    parser.add_argument("--redis-url", default=None, help="default REDIS_URL")
    parser.add_argument("--database-url", default=None, help="default DATABASE_URL")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip recomputing every invariant after the replay")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None,
         environ: dict | None = None) -> int:
    out = sys.stdout if out is None else out
    environ = os.environ if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    stream = args.stream or environ.get("BACKLAY_STREAM") or STREAM
    var_dir = Path(args.var_dir or environ.get("BACKLAY_VAR_DIR") or "var")
    redis_url = args.redis_url or _env(environ, "REDIS_URL", "BACKLAY_REDIS_URL")
    database_url = args.database_url or _env(environ, "DATABASE_URL", "BACKLAY_DATABASE_URL")

    started_here = []  # only servers this command started are stopped again
    try:
        if not redis_url:
            redis_url = _running_redis_url(var_dir / "redis")
        if not redis_url:
            server = EmbeddedRedis(var_dir / "redis")
            redis_url = server.start()
            started_here.append(server)
        if args.from_snapshot and not database_url:
            pg_dir = var_dir / "pg"
            running = _running_postgres(pg_dir)
            server = EmbeddedPostgres(pg_dir)
            database_url = server.start()
            if not running:
                started_here.append(server)
        try:
            report = asyncio.run(replay(redis_url, stream=stream, database_url=database_url,
                                        from_snapshot=args.from_snapshot,
                                        validate=not args.no_validate))
        except DeterminismError as exc:
            print(f"replay FAILED: the engine does not reproduce the journal: {exc}", file=out)
            return 1
        except JournalGap as exc:
            hint = "" if args.from_snapshot else " (trimmed journal? try --from-snapshot)"
            print(f"replay FAILED: {exc}{hint}", file=out)
            return 1
        except (aioredis.ConnectionError, asyncpg.PostgresError, OSError) as exc:
            print(f"replay FAILED: storage unreachable: {exc!r}", file=out)
            return 1
    finally:
        for server in reversed(started_here):
            server.stop()
    print_report(report, stream, out)
    return 0 if report.invariants in ("ok", "not checked") else 1


if __name__ == "__main__":
    raise SystemExit(main())

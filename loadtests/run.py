"""`backlay simulate`: a whole load test on this machine, loopback only, then an audit.

    python -m loadtests.run [--seconds 60] [--users 100] [--out var/simulate/<time>]

1. Starts embedded Redis (AOF, appendfsync always) and Postgres in a fresh var dir and
   `backlay serve` (a subprocess, free ports on 127.0.0.1) against them, with per-connection
   limits generous enough for bots that share one machine.
2. Seeds the world (loadtests/seed.py): markets through a trader connection, bots funded
   through the signed deposit webhook and flagged `seeded` in Postgres `users`.
3. Runs Locust headless (its own process, loadtests/locustfile.py) for --seconds, writing
   <out>/locust_*.csv, <out>/report.html and <out>/locust.log.
4. Audits the books (loadtests/checks.py) and stops the server, which must exit 0.
5. Prints requests/s, failures and p50/p95/p99 per request name; writes <out>/summary.json.

Exit status 0 only if Locust saw requests and no failures or exceptions, every check holds
and the server stopped cleanly. Every wait is bounded.
"""

import argparse
import asyncio
import csv
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .checks import Check, check_books
from .seed import seed
from .world import BOTS_MAX, ENV_OPERATORS, ENV_STATS_FILE, ENV_TRADERS, World

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 60.0
LOCUST_GRACE_S = 60.0  # beyond --seconds: spawning, stopping users, writing reports
SEED_TIMEOUT_S = 120.0
CHECKS_TIMEOUT_S = 120.0
QUIET_AFTER_RUN_S = 2.0  # cancel-on-disconnect acts within cancel_on_disconnect_ms (0.5 s)
STREAM = "backlay:journal"

# `backlay serve` settings for a load test on one machine (gateway/settings.py names)
SERVER_ENV = {
    "BACKLAY_MESSAGES_PER_S_MAX": "1000",
    "BACKLAY_MESSAGE_BURST_MAX": "1000",
    "BACKLAY_CONNECTIONS_MAX": "10000",
    "BACKLAY_HOUSE_BACK_TICKS": "2",  # the house quotes both sides, so layers find a price
}
_URL_LINE = re.compile(r"^\s*(WebSocket|HTTP)\s+(\S+)")


@dataclass
class Summary:
    seconds: int
    users: int
    markets: int
    requests: int = 0
    failures: int = 0
    exceptions: int = 0
    requests_per_s: float = 0.0
    rows: list[dict] = field(default_factory=list)  # per request name
    failures_by_name: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # pushes, gaps, crossed
    checks: list[dict] = field(default_factory=list)
    seed: str = ""
    server_exit: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


# -- processes --------------------------------------------------------------------------------


class ServerProcess:
    """`python -m gateway.cli serve` with its output copied to a log file."""

    def __init__(self, var_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.urls: "queue.Queue[tuple[str, str]]" = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1",
             "--ws-port", "0", "--http-port", "0", "--var-dir", str(var_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, text=True, bufsize=1)
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                m = _URL_LINE.match(line)
                if m:
                    self.urls.put((m.group(1), m.group(2)))

    def wait_urls(self, timeout_s: float) -> tuple[str, str]:
        found: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while len(found) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"the server did not come up (see {self.log_path})")
            try:
                kind, url = self.urls.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            found[kind] = url
        return found["WebSocket"], found["HTTP"].rstrip("/")

    def stop(self, timeout_s: float = SERVER_STOP_TIMEOUT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)
        return self.proc.returncode


def run_locust(args, world: World, ws_url: str, out: Path) -> int:
    env = {**os.environ, **world.env(),
           ENV_TRADERS: str(args.traders), ENV_OPERATORS: str(args.operators),
           ENV_STATS_FILE: str(out / "counts.json")}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
           "--run-time", f"{args.seconds}s", "--stop-timeout", "2", "--host", ws_url,
           "--csv", str(out / "locust"), "--html", str(out / "report.html"),
           "--only-summary", "--loglevel", "WARNING"]
    with open(out / "locust.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        try:
            return proc.wait(args.seconds + LOCUST_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9


# -- reading Locust's CSV ---------------------------------------------------------------------


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def read_stats(out: Path, summary: Summary) -> None:
    stats = out / "locust_stats.csv"
    if not stats.exists():
        summary.problems.append(f"Locust wrote no {stats.name}")
        return
    with open(stats, newline="") as f:
        for row in csv.DictReader(f):
            entry = {"type": row["Type"], "name": row["Name"],
                     "requests": int(_num(row["Request Count"])),
                     "failures": int(_num(row["Failure Count"])),
                     "rps": _num(row["Requests/s"]),
                     "p50_ms": _num(row["50%"]), "p95_ms": _num(row["95%"]),
                     "p99_ms": _num(row["99%"]), "max_ms": _num(row["Max Response Time"])}
            if row["Name"] == "Aggregated":
                summary.requests = entry["requests"]
                summary.failures = entry["failures"]
                summary.requests_per_s = entry["rps"]
                summary.rows.append(entry)
            else:
                summary.rows.append(entry)
    failures = out / "locust_failures.csv"
    if failures.exists():
        with open(failures, newline="") as f:
            summary.failures_by_name = [
                {"name": r["Name"], "error": r["Error"], "occurrences": int(_num(r["Occurrences"]))}
                for r in csv.DictReader(f)]
    exceptions = out / "locust_exceptions.csv"
    if exceptions.exists():
        with open(exceptions, newline="") as f:
            summary.exceptions = sum(int(_num(r["Count"])) for r in csv.DictReader(f))
    counts = out / "counts.json"
    if counts.exists():
        summary.counts = json.loads(counts.read_text())


def render(summary: Summary, out: Path) -> str:
    lines = [f"Backlay simulate: {summary.seconds} s, {summary.users} users, "
             f"{summary.markets} markets  (reports in {out})",
             f"requests {summary.requests} ({summary.requests_per_s:.1f}/s), "
             f"failures {summary.failures}, exceptions {summary.exceptions}", ""]
    width = max([len(r["name"]) for r in summary.rows] + [24])
    lines.append(f"{'request':<{width}} {'count':>7} {'fail':>5} {'req/s':>7} "
                 f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    rows = sorted((r for r in summary.rows if r["name"] != "Aggregated"),
                  key=lambda r: r["name"])
    rows += [r for r in summary.rows if r["name"] == "Aggregated"]
    for r in rows:
        lines.append(f"{r['name']:<{width}} {r['requests']:>7} {r['failures']:>5} "
                     f"{r['rps']:>7.1f} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} "
                     f"{r['p99_ms']:>7.0f}")
    for f in summary.failures_by_name[:10]:
        lines.append(f"  FAILED {f['name']}: {f['error']} x{f['occurrences']}")
    pushes = {k[5:]: v for k, v in summary.counts.items() if k.startswith("push.")}
    if pushes:
        lines += ["", "pushes received: " + ", ".join(f"{op} {n}" for op, n in
                                                      sorted(pushes.items()))]
    lines.append(f"seen by clients: seq gaps {summary.counts.get('gap', 0)}, crossed books "
                 f"{summary.counts.get('crossed', 0)}")
    if summary.seed:
        lines += ["", summary.seed]
    lines += ["", "books:"]
    for c in summary.checks:
        lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    lines.append(f"  {'ok  ' if summary.server_exit == 0 else 'FAIL'} server stopped: "
                 f"exit status {summary.server_exit}")
    lines += ["", "result: " + ("PASS" if summary.passed else
                                "FAIL (" + "; ".join(summary.problems) + ")")]
    return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------


def _bounded(coro, timeout_s: float):
    async def run():
        async with asyncio.timeout(timeout_s):
            return await coro
    return asyncio.run(run())


def simulate(args) -> Summary:
    out = Path(args.out or Path("var") / "simulate" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    var_dir = Path(args.var_dir).resolve() if args.var_dir else \
        Path(tempfile.mkdtemp(prefix="backlay-sim-"))
    bots = args.bots or min(max(args.users, 1), BOTS_MAX)
    world = World(prefix="lt", markets=args.markets, bots=bots, workers=1,
                  jwt_secret=secrets.token_hex(32))
    webhook_secret = secrets.token_hex(32)
    summary = Summary(seconds=args.seconds, users=args.users, markets=args.markets)

    from persistence.embedded import start_servers  # pgserver's import is slow: only here

    storage = server = None
    try:
        storage = start_servers(var_dir, "always", environ={})
        env = {**os.environ, **SERVER_ENV, "REDIS_URL": storage.redis_url,
               "DATABASE_URL": storage.database_url, "BACKLAY_JWT_SECRET": world.jwt_secret,
               "BACKLAY_WEBHOOK_SECRET": webhook_secret, "BACKLAY_STREAM": STREAM}
        server = ServerProcess(var_dir, out / "server.log", env)
        ws_url, http_url = server.wait_urls(SERVER_START_TIMEOUT_S)
        print(f"server up: {ws_url} {http_url}", flush=True)

        report = _bounded(seed(world, ws_url, http_url, storage.database_url, webhook_secret),
                          SEED_TIMEOUT_S)
        summary.seed = report.line()

        print(f"locust: {args.users} users for {args.seconds} s ...", flush=True)
        code = run_locust(args, world, ws_url, out)
        if code not in (0, 1):  # 1 only says "there were failures", which the CSV tells
            summary.problems.append(f"Locust exited with status {code} (see locust.log)")
        read_stats(out, summary)

        time.sleep(QUIET_AFTER_RUN_S)
        checks: list[Check] = _bounded(check_books(
            http_url=http_url, database_url=storage.database_url, redis_url=storage.redis_url,
            stream=STREAM, jwt_secret=world.jwt_secret, markets=world.market_ids()),
            CHECKS_TIMEOUT_S)
        summary.checks = [asdict(c) for c in checks]
    except Exception as exc:
        summary.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if server is not None:
            summary.server_exit = server.stop()
        if storage is not None:
            storage.stop()
        if not args.var_dir and not args.keep_var:
            shutil.rmtree(var_dir, ignore_errors=True)

    if summary.requests == 0:
        summary.problems.append("Locust sent no requests")
    if summary.failures:
        summary.problems.append(f"{summary.failures} failed requests")
    if summary.exceptions:
        summary.problems.append(f"{summary.exceptions} exceptions in Locust users")
    summary.problems += [f"check broken: {c['name']}" for c in summary.checks if not c["ok"]]
    if summary.server_exit != 0:
        summary.problems.append(f"server exit status {summary.server_exit}")
    (out / "summary.json").write_text(json.dumps({**asdict(summary), "passed": summary.passed},
                                                 indent=2))
    text = render(summary, out)
    (out / "summary.txt").write_text(text + "\n")
    print(text, flush=True)
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backlay simulate",
                                     description="Load-test a local exchange with Locust bots "
                                                 "and audit the books afterwards.")
    parser.add_argument("--seconds", type=int, default=60, help="Locust run time (default 60)")
    parser.add_argument("--users", type=int, default=100, help="concurrent Locust users")
    parser.add_argument("--spawn-rate", type=float, default=20.0, help="users started per s")
    parser.add_argument("--markets", type=int, default=6)
    parser.add_argument("--bots", type=int, default=0,
                        help="funded identities per bettor profile (default: --users)")
    parser.add_argument("--traders", type=int, default=1)
    parser.add_argument("--operators", type=int, default=1)
    parser.add_argument("--out", help="report folder (default var/simulate/<time>)")
    parser.add_argument("--var-dir", help="data folder for Redis/Postgres (default: a "
                                          "temporary one, removed afterwards)")
    parser.add_argument("--keep-var", action="store_true", help="keep the temporary data")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.users < 1 or args.spawn_rate <= 0:
        parser.error("--seconds, --users and --spawn-rate must be positive")
    if args.users < args.traders + args.operators:
        parser.error("--users must leave room for the traders and operators")
    return args


def main(argv: list[str] | None = None) -> int:
    summary = simulate(parse_args(argv))
    return 0 if summary.passed else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

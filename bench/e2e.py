"""End-to-end benchmark: the real server against N WebSocket clients in a second process.

Starts `backlay serve` in a subprocess (embedded Redis with AOF appendfsync always; the
Postgres persister on), funds N users through the deposit webhook, then from this process drives
N clients placing and cancelling orders: first at a fixed offered rate (open loop: sends are
scheduled, not paced by replies), then at saturation (each client keeps a window of requests in
flight: every reply sends the next request), the window raised step by step until orders/s stop
growing. Prints sustained orders/s and ack latency
p50/p99/p99.9 for each phase, measured by the client (send -> reply), the journal's batch size,
and the CPU each process used per order: the server, redis, the persister process, Postgres,
the server's forked snapshot writers, and this load generator (all on the same cores).

The clients are lean Sans-I/O connections (harness.Subscriber): a reply is handled inside
`data_received` and the next request framed there, and what a connection framed in one loop
turn leaves in one write, as a trading client library would. With one task, future and
send coroutine per request (harness.Client), this process needed about as much CPU per order
as the server and capped what the bench could show.

`--server-root DIR` runs the server of another checkout (built in place, e.g. a git worktree
of an older commit) with the same load: `--compare DIR` runs both, interleaved, in one run.

    python bench/e2e.py [--clients 50] [--rate 2000] [--seconds 10] [--windows 16,32,64]
                        [--server-root DIR | --compare DIR] [--repeat 1]
"""

import argparse
import asyncio
import os
import random
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import Client, ServerProcess, Subscriber, percentiles  # noqa: E402

PRICES_BACK = ["2.52", "2.54", "2.56", "2.58", "2.60"]  # rest above the lays
PRICES_LAY = ["2.40", "2.42", "2.44", "2.46", "2.48"]


def _prices(back: bool, crosses: bool) -> list[str]:
    return PRICES_LAY if back == crosses else PRICES_BACK


def _place_prefix(market: str, selection: str, back: bool, price: str) -> bytes:
    return orjson.dumps({"op": "place", "market": market, "selection": selection,
                         "side": "back" if back else "lay", "price": price,
                         "size": "2.00"})[:-1] + b',"id":'


class Trader:
    """One bench client's order flow: 40% resting backs, 40% resting lays, 20% cancels of its
    own resting orders, with a crossing order now and then so matching runs too. Requests go
    out on a lean connection; each reply calls back `on_reply` (no future, no task)."""

    def __init__(self, conn: Subscriber, market: str, rng: random.Random) -> None:
        self.conn, self.market, self.rng = conn, market, rng
        self.resting: list[str] = []
        self.latencies: list[float] = []
        self.sent_at: dict[int, float] = {}
        self.errors = 0
        self.done = 0
        self.keep_going = None  # saturation: () -> bool, send the next request on each reply
        self.idle: asyncio.Future | None = None  # set when nothing is in flight any more
        # places[back][crosses][selection][price]: each place's JSON up to its id
        self.places = [[[[_place_prefix(market, sel, back, price)
                          for price in _prices(back, crosses)] for sel in "abc"]
                        for crosses in (False, True)] for back in (False, True)]

    def next_request(self) -> bytes:
        """The next request as JSON, up to its id: every place is one of 60 texts, encoded once
        (random.choice and orjson.dumps per request were about a tenth of this process's CPU,
        py-spy at saturation)."""
        rng = self.rng.random
        r = rng()
        if r < 0.2 and self.resting:
            order = self.resting.pop(int(rng() * len(self.resting)))
            return b'{"op":"cancel","order":"%b","id":' % order.encode()
        back = r < 0.6
        crosses = rng() < 0.1  # a back at a lay price, a lay at a back price
        return self.places[back][crosses][int(rng() * 3)][int(rng() * len(PRICES_BACK))]

    def send(self) -> None:
        """Frame the next request; what one loop turn framed leaves in one write."""
        conn = self.conn
        conn.next_id += 1
        rid = conn.next_id
        conn.replies[rid] = self  # Subscriber calls set_result(reply) when it arrives
        self.sent_at[rid] = time.perf_counter()
        conn.send(self.next_request() + b"%d}" % rid)

    def set_result(self, reply: dict) -> None:
        self.latencies.append(time.perf_counter() - self.sent_at.pop(reply["id"]))
        self.done += 1
        op = reply["op"]
        if op == "error":
            self.errors += 1
        elif op == "placed" and reply["order"]["status"] == "EXECUTABLE":
            self.resting.append(reply["order"]["order"])
        if self.keep_going is not None and self.keep_going():
            self.send()
        elif not self.sent_at and self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    async def drained(self) -> None:
        if self.sent_at:
            self.idle = asyncio.get_running_loop().create_future()
            await self.idle


async def fixed_rate(traders: list[Trader], rate: float, seconds: float) -> tuple[float, list]:
    """Open loop: client i sends at start + offset_i + n / per-client rate, whatever replies."""
    per_client_s = len(traders) / rate
    loop = asyncio.get_running_loop()
    start = time.perf_counter()

    async def run(trader: Trader, offset: float) -> None:
        n = 0
        while True:
            due = start + offset + n * per_client_s
            if due - start >= seconds:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            trader.send()
            n += 1

    await asyncio.gather(*(run(t, i * per_client_s / len(traders))
                           for i, t in enumerate(traders)))
    await asyncio.gather(*(t.drained() for t in traders))
    del loop
    elapsed = time.perf_counter() - start
    return elapsed, [x for t in traders for x in t.latencies]


async def saturate(traders: list[Trader], window: int, seconds: float) -> tuple[float, list]:
    stop = time.perf_counter() + seconds
    start = time.perf_counter()

    def keep_going() -> bool:
        return time.perf_counter() < stop

    for t in traders:
        t.keep_going = keep_going
        for _ in range(window):
            t.send()
    await asyncio.sleep(seconds)
    await asyncio.gather(*(t.drained() for t in traders))
    for t in traders:
        t.keep_going = None
    return time.perf_counter() - start, [x for t in traders for x in t.latencies]


async def bench(server: ServerProcess, args, label: str) -> None:
    trader_token = server.token("bench-trader", "trader")
    async with Client(server.ws_url, trader_token) as trader:
        for msg in ({"op": "market.create", "market": "bench", "event": "bench", "name": "bench",
                     "selections": [{"id": s, "name": s} for s in "abc"]},
                    {"op": "market.status", "market": "bench", "status": "open"}):
            reply = await trader.rpc(msg)
            assert reply["op"] == "market", reply
    users = [f"b{i}" for i in range(args.clients)]
    for user in users:
        server.deposit(user, "1000000.00", f"seed-{user}")
    conns = [await Subscriber.open(server.ws_url, server.token(u, "bettor"), lambda msg: None)
             for u in users]
    rng = random.Random(args.seed)
    try:
        traders = [Trader(c, "bench", random.Random(rng.random())) for c in conns]
        await saturate(traders, 2, 2.0)  # warm-up

        async def measure(phase_label: str, phase) -> float:
            for t in traders:
                t.latencies.clear()
                t.done = t.errors = 0
            before = server_ack_buckets(server)
            cpu_before = cpu_seconds(server)
            batches_before = server_batches(server)
            elapsed, lat = await phase
            cpu = {part: used - cpu_before[part] for part, used in cpu_seconds(server).items()}
            batches = [after - was for after, was in zip(server_batches(server), batches_before)]
            inside = server_quantiles(before, server_ack_buckets(server))
            done = sum(t.done for t in traders)
            errors = sum(t.errors for t in traders)
            print(f"{label}{phase_label}: sustained {done / elapsed:,.0f} orders/s, ack "
                  f"{percentiles(lat)}  ({done:,} requests, {errors} rejected); inside the "
                  f"server (submit -> journaled reply): {inside}; journal batches of "
                  f"{batches[1] / max(batches[0], 1):.0f} commands; CPU per order: "
                  + ", ".join(f"{part} {used / done * 1e6:.1f} us" for part, used in cpu.items())
                  + f" = {sum(cpu.values()) / done * 1e6:.1f} us in all", flush=True)
            return done / elapsed

        await measure(f"fixed rate  offered {args.rate:,}/s",
                      fixed_rate(traders, args.rate, args.seconds))
        # saturation: the window of requests each client keeps in flight is raised until the
        # orders answered per second stop growing (a window too small measures latency, not
        # capacity: 16 per client left the server idle between journal writes)
        best, best_window = 0.0, 0
        for window in args.windows:
            rate = await measure(f"saturation  window {window}/client",
                                 saturate(traders, window, args.seconds))
            if rate > best:
                best, best_window = max(rate, best), window
            if rate < best * 1.03 and window != args.windows[0]:
                break
        print(f"{label}saturation: peak {best:,.0f} orders/s (window {best_window}/client)",
              flush=True)
    finally:
        for c in conns:
            c.close()


def cpu_seconds(server: ServerProcess) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the exchange, and by this load
    generator: per order, this is what a busy machine changes least (it does not count time
    spent waiting for a core). The embedded Postgres is not a child of the server (pgserver
    starts it on its own), so it is found by its data directory."""
    import psutil

    def used(proc) -> float:
        try:
            return sum(proc.cpu_times()[:2])
        except psutil.NoSuchProcess:
            return 0.0

    parts = {"server": 0.0, "redis": 0.0, "persister": 0.0, "postgres": 0.0, "snapshots": 0.0}
    top = psutil.Process(server.pid)
    parts["server"] = used(top)
    try:  # children the server has waited for: its forked snapshot writers
        parts["snapshots"] = sum(top.cpu_times()[2:4])
    except psutil.NoSuchProcess:
        pass
    for child in top.children(recursive=True):
        try:
            name, parent = child.name(), child.ppid()
            command = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "redis" in name:
            parts["redis"] += used(child)
        elif parent == server.pid and "spawn_main" not in command:
            parts["snapshots"] += used(child)  # a snapshot writer still pickling
        else:
            parts["persister"] += used(child)
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if proc.info["name"] == "postgres" and server.var_dir in cmdline:
            parts["postgres"] += used(proc) + sum(map(used, proc.children(recursive=True)))
    parts["load generator"] = used(psutil.Process())
    return parts


def server_batches(server: ServerProcess) -> tuple[float, float]:
    """(journal writes, commands journaled) so far, from the server's batch-size histogram."""
    import urllib.request

    text = urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("backlay_journal_batch_commands_"):
            name, value = line.rsplit(" ", 1)
            values[name.rsplit("_", 1)[1]] = float(value)
    return values.get("count", 0.0), values.get("sum", 0.0)


def server_ack_buckets(server: ServerProcess) -> list[tuple[float, float]]:
    """(upper bound s, cumulative count) of the server's ack-latency histogram."""
    import urllib.request

    text = urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10).read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("backlay_ack_latency_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound),
                            float(line.rsplit(" ", 1)[1])))
    return buckets


def server_quantiles(before: list, after: list) -> str:
    """p50/p99 bucket bounds of the acks between two histogram readings."""
    diff = [(bound, a - b) for (bound, a), (_, b) in zip(after, before)]
    total = diff[-1][1] if diff else 0
    if not total:
        return "no samples"

    def upper(q: float) -> str:
        bound = next(b for b, count in diff if count >= q * total)
        return f"<= {bound * 1000:g} ms"

    return f"p50 {upper(0.5)}, p99 {upper(0.99)}"


def run_one(args, root: str | None, label: str) -> None:
    with ServerProcess(root=root, messages_per_s_max=1_000_000, message_burst_max=1_000_000,
                       send_queue_max=100_000, velocity_orders_max=0) as server:
        print(f"{label}e2e bench: {args.clients} clients, server pid {server.pid} "
              f"({server.root}), embedded redis appendfsync=always, persister on", flush=True)
        import uvloop

        uvloop.run(bench(server, args, label))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--windows", default="16,32,64",
                    help="saturation: requests in flight per client, raised step by step until "
                         "orders/s stop growing (at most gateway.session.INFLIGHT_MAX)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server-root", default=None, help="run the server of this checkout")
    ap.add_argument("--compare", default=None,
                    help="also run the server of this checkout, interleaved with this one")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    args.windows = [int(w) for w in args.windows.split(",")]
    for _ in range(args.repeat):
        if args.compare:
            run_one(args, args.compare, "[other] ")
            run_one(args, None, "[this]  ")
        else:
            run_one(args, args.server_root, "")


if __name__ == "__main__":
    main()

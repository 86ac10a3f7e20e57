"""Fan-out benchmark: many subscribers on busy markets.

Starts the real server (embedded Redis, AOF always), connects `--subscribers` connections
(default 1,000) and runs two phases:

- **fixed rate**: every subscriber is on one market, `busy`, and a driver sends `--rate`
  matches/s (default 1,000) into it for `--seconds`. With 50 ms conflation a subscriber can get
  at most 20 deltas/s from one market, so this phase measures delay, not throughput.
- **saturation**: `--markets` markets (default 10), each subscriber on `--per-subscriber` of
  them (default 8, spread evenly), and the driver's offered match rate, spread round-robin over
  the markets, raised step by step (`--steps`, matches/s in all) until the messages delivered
  per second stop growing (less than 3% over the step before) or the steps run out.

Every order is exactly one match: the house quotes each market with a large liability limit
and the driver backs 1.00 at a time. Each subscriber checks that each market's deltas' seq
rises by one (no gaps: every conflated delta arrives) and records when each delta arrived and
how many orders it reflects (the selection's traded total). Printed per phase or step: market
data messages delivered per second (deltas and images), seq gaps, fresh images (a dropped
delta for a slow consumer is replaced by one) and the server's drop counter, and two delays,
p50/p99: from the send of the newest order a delta reflects to its arrival (how fresh a delta
is), and from the send of every order to the arrival of the first delta that reflects it
(which adds the wait for the next conflation flush, up to `conflation_ms`); with the CPU used
by the server and by the bench's reader processes, so that one can tell which side is the
bottleneck.

Subscribers are lean Sans-I/O connections (`harness.Subscriber`) spread over `--procs` reader
processes (default 2), whose results are merged: one process cannot read 100,000 frames/s.

`--server-root DIR` runs the server of another checkout (built in place) with the same load;
`--compare DIR` runs both, interleaved, in one run (`--repeat` pairs).

    python bench/fanout.py [--subscribers 1000] [--rate 1000] [--seconds 10]
                           [--markets 10] [--per-subscriber 8] [--steps 200,400,800,1600,3200]
                           [--step-seconds 5] [--procs 2] [--phases fixed,saturation]
                           [--server-root DIR | --compare DIR] [--repeat 1]
"""

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
import urllib.request
from array import array
from bisect import bisect_left

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import Client, ServerProcess, Subscriber  # noqa: E402

STAKE = "1.00"
FIXED_MARKET = "busy"
BUCKET_S = 0.0001  # delay histograms: 0.1 ms buckets, merged exactly across reader processes


def sat_market(i: int) -> str:
    return f"sat{i}"


# -- reader processes -----------------------------------------------------------------------


class Watch:
    """One subscription of one subscriber: its seq, and the deltas that reflected new orders."""

    __slots__ = ("seq", "gaps", "times", "matched", "seen")

    def __init__(self) -> None:
        self.seq = 0
        self.gaps = 0
        self.times = array("d")  # arrival of each delta that reflects new orders ...
        self.matched = array("q")  # ... and how many orders of its market it reflects
        self.seen = 0  # orders reflected by the deltas already counted

    def delays(self, sent_at: list[float], newest: dict, every: dict | None) -> None:
        """Into histograms: per delta, the delay from the send of the newest order it reflects;
        per order (if `every`), the delay until this subscriber saw a delta reflecting it."""
        seen = self.seen
        sent = len(sent_at)
        for now, matched in zip(self.times, self.matched):
            matched = min(matched, sent)
            if matched > seen:
                b = int((now - sent_at[matched - 1]) / BUCKET_S)
                newest[b] = newest.get(b, 0) + 1
                if every is not None:
                    for t in sent_at[seen:matched]:
                        b = int((now - t) / BUCKET_S)
                        every[b] = every.get(b, 0) + 1
                seen = matched
        self.seen = seen
        self.times = array("d")
        self.matched = array("q")


class Reader:
    """The subscribers of one reader process."""

    def __init__(self) -> None:
        self.watches: list[dict[str, Watch]] = []
        self.arrived = array("d")  # every mkt frame's arrival, in order
        self.images = 0

    def handler(self, watches: dict[str, Watch]):
        arrived = self.arrived
        perf = time.perf_counter

        def on_push(msg: dict) -> None:
            if msg.get("op") != "mkt":
                return
            now = perf()
            arrived.append(now)
            w = watches[msg["market"]]
            seq = msg["seq"]
            if w.seq and seq != w.seq + 1:
                w.gaps += 1
            w.seq = seq
            if msg.get("img"):
                self.images += 1
                return
            for sel in msg.get("selections", ()):
                if sel["id"] == "a" and "traded" in sel:
                    w.times.append(now)
                    w.matched.append(int(sel["traded"].partition(".")[0]))  # 1.00 each
        return on_push


async def read_main(conn, url: str, tokens: list[str], subs: list[list[str]],
                    first: int) -> None:
    loop = asyncio.get_running_loop()
    reader = Reader()
    conns = []
    for token, markets in zip(tokens, subs):
        watches = {m: Watch() for m in markets}
        reader.watches.append(watches)
        sub = await Subscriber.open(url, token, reader.handler(watches))
        reply = await sub.rpc({"op": "subscribe", "markets": markets, "depth": 3})
        assert reply["op"] == "subscribed", reply
        conns.append(sub)
    await asyncio.sleep(0.5)  # the images
    conn.send(("ready", len(conns)))
    cpu_at = time.process_time()
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "reset":
            reader.arrived = array("d")
            for watches, sub in zip(reader.watches, conns):
                sub.on_push = reader.handler(watches)
                for w in watches.values():
                    w.gaps = 0
            reader.images = 0
            cpu_at = time.process_time()
            conn.send(("reset",))
        elif cmd[0] == "collect":
            _, t0, t1, sent_at, every_one_in = cmd
            cpu = time.process_time() - cpu_at
            arrived = reader.arrived
            frames = bisect_left(arrived, t1) - bisect_left(arrived, t0)
            newest: dict[int, int] = {}
            every: dict[int, int] = {}
            gaps = 0
            for i, watches in enumerate(reader.watches):
                sample = (first + i) % every_one_in == 0
                for market, w in watches.items():
                    gaps += w.gaps
                    if market in sent_at:
                        w.delays(sent_at[market], newest, every if sample else None)
            conn.send(("stats", {"frames": frames, "all_frames": len(arrived),
                                 "gaps": gaps, "images": reader.images, "cpu": cpu,
                                 "newest": newest, "every": every}))
        elif cmd[0] == "quit":
            for sub in conns:
                sub.close()
            conn.send(("bye",))
            return


def reader_process(conn, url, tokens, subs, first) -> None:
    import uvloop

    uvloop.run(read_main(conn, url, tokens, subs, first))


# -- the bench --------------------------------------------------------------------------------


def hist_percentiles(hist: dict[int, int]) -> str:
    total = sum(hist.values())
    if not total:
        return "no samples"
    keys = sorted(hist)

    def at(q: float) -> float:
        want, count = q * total, 0
        for k in keys:
            count += hist[k]
            if count > want:
                return (k + 0.5) * BUCKET_S * 1000
        return (keys[-1] + 0.5) * BUCKET_S * 1000

    return f"p50 {at(0.5):.2f} ms  p99 {at(0.99):.2f} ms  p99.9 {at(0.999):.2f} ms"


def merge(stats: list[dict]) -> dict:
    out = {"frames": 0, "all_frames": 0, "gaps": 0, "images": 0, "cpu": [], "newest": {},
           "every": {}}
    for s in stats:
        for key in ("frames", "all_frames", "gaps", "images"):
            out[key] += s[key]
        out["cpu"].append(s["cpu"])
        for key in ("newest", "every"):
            hist = out[key]
            for b, n in s[key].items():
                hist[b] = hist.get(b, 0) + n
    return out


def server_drops(server: ServerProcess) -> float:
    text = urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("backlay_ws_dropped_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Driver:
    """Backs 1.00 at a time on a lean connection, on an open-loop schedule; every order is
    one match. Records each order's send time per market."""

    def __init__(self, conn: Subscriber) -> None:
        self.conn = conn
        self.sent_at: dict[str, list[float]] = {}
        self.replies: list[asyncio.Future] = []

    async def run(self, markets: list[str], rate: float, seconds: float) -> tuple[int, float]:
        interval = 1 / rate
        start = time.perf_counter()
        n = 0
        conn = self.conn
        sent_at = [self.sent_at.setdefault(m, []) for m in markets]
        while True:
            now = time.perf_counter()
            if now - start >= seconds:
                break
            while start + n * interval <= now and n * interval < seconds:
                i = n % len(markets)
                sent_at[i].append(time.perf_counter())
                self.replies.append(conn.rpc(
                    {"op": "place", "market": markets[i], "selection": "a", "side": "back",
                     "price": "1.01", "size": STAKE}))
                n += 1
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*self.replies)
        return n, time.perf_counter() - start

    def rejected(self) -> int:
        errors = sum(1 for f in self.replies if f.result()["op"] == "error")
        self.replies.clear()
        return errors


async def ask(pipes, msg) -> list:
    loop = asyncio.get_running_loop()
    for p in pipes:
        p.send(msg)
    return [await loop.run_in_executor(None, p.recv) for p in pipes]


async def bench(server: ServerProcess, args, label: str) -> None:
    markets = [sat_market(i) for i in range(args.markets)]
    trader = Client(server.ws_url, server.token("fan-trader", "trader"))
    await trader.__aenter__()
    for market in [FIXED_MARKET, *markets]:
        for msg in ({"op": "market.create", "market": market, "event": "e", "name": market,
                     "selections": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]},
                    {"op": "limits.set", "market": market, "max_liability": "100000000.00"},
                    {"op": "market.status", "market": market, "status": "open"},
                    {"op": "prices.set", "market": market, "prices": {"a": "2.00", "b": "2.00"},
                     "margin": "0.02"}):
            reply = await trader.rpc(msg)
            assert reply["op"] != "error", reply
    await trader.__aexit__(None, None, None)
    server.deposit("driver", "10000000.00", "fan-driver")

    # subscriber i: the fixed-rate market and K of the saturation markets, spread evenly
    k = min(args.per_subscriber, args.markets)
    subs = [[FIXED_MARKET, *(markets[(i + j) % args.markets] for j in range(k))]
            for i in range(args.subscribers)]
    tokens = [server.token(f"watch{i}", "bettor") for i in range(args.subscribers)]
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    share = -(-args.subscribers // args.procs)
    for first in range(0, args.subscribers, share):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=reader_process, daemon=True,
                           args=(child, server.ws_url, tokens[first:first + share],
                                 subs[first:first + share], first))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    loop = asyncio.get_running_loop()
    ready = [await loop.run_in_executor(None, p.recv) for p in pipes]
    driver_conn = await Subscriber.open(server.ws_url, server.token("driver", "bettor"),
                                        lambda msg: None)
    driver = Driver(driver_conn)
    print(f"{label}{sum(n for _, n in ready)} subscribers connected over {len(procs)} reader "
          f"processes; server pid {server.pid} ({server.root})", flush=True)

    import psutil

    server_proc = psutil.Process(server.pid)

    async def phase(markets_: list[str], rate: float, seconds: float, every_one_in: int):
        await ask(pipes, ("reset",))
        drops_before = server_drops(server)
        cpu_before = sum(server_proc.cpu_times()[:2])
        t0 = time.perf_counter()
        n, elapsed = await driver.run(markets_, rate, seconds)
        t1 = t0 + elapsed
        cpu = sum(server_proc.cpu_times()[:2]) - cpu_before
        await asyncio.sleep(0.5)  # the last conflated deltas
        stats = merge([s for _, s in await ask(
            pipes, ("collect", t0, t1, {m: driver.sent_at[m] for m in markets_},
                    every_one_in))])
        stats.update(orders=n, elapsed=elapsed, rejected=driver.rejected(),
                     drops=server_drops(server) - drops_before, server_cpu=cpu / elapsed)
        return stats

    def cpu_text(s: dict) -> str:
        readers = "+".join(f"{c / s['elapsed']:.0%}" for c in s["cpu"])
        return f"CPU: server {s['server_cpu']:.0%}, readers {readers} of a core"

    try:
        if "fixed" in args.phases:
            s = await phase([FIXED_MARKET], args.rate, args.seconds, 1)
            n, elapsed = s["orders"], s["elapsed"]
            deltas = s["frames"]
            print(f"{label}fan-out: {n:,} orders ({n / elapsed:,.0f}/s, {s['rejected']} "
                  f"rejected) -> {deltas:,} deltas to {args.subscribers} subscribers = "
                  f"{deltas / elapsed:,.0f} messages/s ({deltas / args.subscribers / elapsed:.1f}"
                  f"/s each); seq gaps: {s['gaps']}; fresh images {s['images']}, server drops "
                  f"{s['drops']:.0f}; {cpu_text(s)}")
            print(f"{label}newest match in a delta -> delivery: {hist_percentiles(s['newest'])}")
            print(f"{label}every match -> delivery (incl. the wait for the next flush): "
                  f"{hist_percentiles(s['every'])}", flush=True)
        if "saturation" in args.phases:
            print(f"{label}saturation: {args.markets} markets, {k} per subscriber "
                  f"({args.subscribers * k // args.markets} subscribers each), "
                  f"{args.step_seconds:g} s a step", flush=True)
            best = 0.0
            for step, rate in enumerate(args.steps):
                s = await phase(markets, rate, args.step_seconds, args.every_one_in)
                n, elapsed = s["orders"], s["elapsed"]
                rate_out = s["frames"] / elapsed
                print(f"{label}  offered {rate:,}/s: {n / elapsed:,.0f} orders/s "
                      f"({s['rejected']} rejected) -> {rate_out:,.0f} messages/s "
                      f"({rate_out / args.subscribers:.1f}/s each); seq gaps: {s['gaps']}; "
                      f"fresh images {s['images']}, server drops {s['drops']:.0f}; newest match "
                      f"-> delivery {hist_percentiles(s['newest'])}; every match (1 subscriber "
                      f"in {args.every_one_in}) {hist_percentiles(s['every'])}; {cpu_text(s)}",
                      flush=True)
                if step >= 1 and rate_out < best * 1.03:
                    best = max(best, rate_out)
                    break
                best = max(best, rate_out)
            print(f"{label}saturation: peak {best:,.0f} messages/s delivered to "
                  f"{args.subscribers} subscribers", flush=True)
    finally:
        await ask(pipes, ("quit",))
        for proc in procs:
            proc.join(timeout=10)
        driver_conn.close()


def run_one(args, root: str | None, label: str) -> None:
    with ServerProcess(root=root, messages_per_s_max=1_000_000, message_burst_max=1_000_000,
                       velocity_orders_max=0, connections_max=20_000) as server:
        import uvloop

        uvloop.run(bench(server, args, label))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--markets", type=int, default=10)
    ap.add_argument("--per-subscriber", type=int, default=8)
    ap.add_argument("--steps", default="200,400,800,1600,3200",
                    help="offered matches/s of the saturation steps, in all markets")
    ap.add_argument("--step-seconds", type=float, default=5.0)
    ap.add_argument("--every-one-in", type=int, default=8,
                    help="saturation: every-match delays of one subscriber in this many")
    ap.add_argument("--procs", type=int, default=2, help="reader processes")
    ap.add_argument("--phases", default="fixed,saturation")
    ap.add_argument("--server-root", default=None, help="run the server of this checkout")
    ap.add_argument("--compare", default=None,
                    help="also run the server of this checkout, interleaved with this one")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    args.steps = [int(x) for x in args.steps.split(",") if x]
    args.phases = set(args.phases.split(","))
    for _ in range(args.repeat):
        if args.compare:
            run_one(args, args.compare, "[other] ")
            run_one(args, None, "[this]  ")
        else:
            run_one(args, args.server_root, "")


if __name__ == "__main__":
    main()

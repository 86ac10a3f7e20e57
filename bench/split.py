"""The split shape against one process, in the same run: what the extra hop costs and gives.

Starts `backlay serve` (one process) and then `backlay serve --gateways 2 --shards 2` (the split
shape: a supervisor, two engine shards with their persisters, two gateways, the wire's own
Redis), each with embedded Redis (AOF appendfsync always) and Postgres, and drives both with
the same order flow as bench/e2e.py (harness.Subscriber clients in this process, placing and
cancelling on one market per shard, crossing now and then): first at a fixed offered rate (the
ack latency an extra hop adds, measured by the client: send -> reply), then at saturation
(orders/s). For the split shape it also reads, over each phase, the wire Redis's command counts
and the processes' wire counters (/metrics): entries and records through Redis per second.

    python bench/split.py [--clients 40] [--rate 1000] [--seconds 10] [--window 16]
                          [--gateways 2] [--shards 2] [--repeat 1] [--only split|one]
"""

import argparse
import asyncio
import os
import random
import sys
import time
import urllib.request

import psutil
import redis

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.e2e import Trader, fixed_rate, saturate  # noqa: E402
from bench.harness import ServerProcess, Subscriber, percentiles  # noqa: E402
from gateway.split.shards import ShardMap  # noqa: E402

ROLES = ("gateway", "engine", "persister", "redis", "postgres")


def market_ids(shards: int) -> list[str]:
    """One market per shard (with one process: as many, on the one engine)."""
    by_shard: dict[int, str] = {}
    owner = ShardMap(shards)
    i = 0
    while len(by_shard) < shards:
        market = f"bench-{i}"
        by_shard.setdefault(owner.of_market(market), market)
        i += 1
    return [by_shard[k] for k in range(shards)]


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds so far of the server's process tree, by what each process is."""
    out = dict.fromkeys(ROLES + ("other",), 0.0)
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            cmd = " ".join(proc.cmdline())
            seconds = sum(proc.cpu_times()[:2])
        except psutil.Error:
            continue
        if "gateway.cli gateway" in cmd:
            role = "gateway"
        elif "gateway.cli engine" in cmd or ("gateway.cli serve" in cmd and proc is root
                                             and "--gateways" not in cmd):
            role = "engine"
        elif "redis-server" in cmd:
            role = "redis"
        elif "postgres" in cmd or "postmaster" in cmd:
            role = "postgres"
        elif "multiprocessing" in cmd or "persister" in cmd:
            role = "persister"
        else:
            role = "other"
        out[role] += seconds
    return out


def wire_counts(server: ServerProcess) -> dict[str, float]:
    """XADD and XREAD calls on the wire's Redis; records written by every process."""
    counts = {"xadd": 0.0, "xread": 0.0, "records": 0.0, "entries": 0.0, "in": 0.0, "out": 0.0}
    url_file = os.path.join(server.var_dir, "wire-redis", "redis.url")
    if not os.path.exists(url_file):
        return counts
    client = redis.Redis.from_url(open(url_file).read().strip())
    stats = client.info("commandstats")
    net = client.info("stats")
    client.close()
    counts["xadd"] = stats.get("cmdstat_xadd", {}).get("calls", 0)
    counts["xread"] = stats.get("cmdstat_xread", {}).get("calls", 0)
    counts["in"] = net["total_net_input_bytes"]
    counts["out"] = net["total_net_output_bytes"]
    for url in server.http_urls + engine_http_urls(server):
        text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("backlay_wire_records_written_total"):
                counts["records"] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("backlay_wire_entries_written_total"):
                counts["entries"] += float(line.rsplit(" ", 1)[1])
    return counts


def engine_http_urls(server: ServerProcess) -> list[str]:
    import re

    text = open(os.path.join(server.var_dir, "serve.log")).read()
    return [url.rstrip("/") for url in re.findall(r"engine s\d+ up: pid \d+ HTTP (\S+)", text)]


async def drive(server: ServerProcess, args, label: str) -> None:
    markets = market_ids(args.shards)
    trader_token = server.token("bench-trader", "trader")
    trader = await Subscriber.open(server.ws_url, trader_token, lambda msg: None)
    for market in markets:
        for msg in ({"op": "market.create", "market": market, "event": "bench", "name": market,
                     "selections": [{"id": s, "name": s} for s in "abc"]},
                    {"op": "market.status", "market": market, "status": "open"}):
            reply = await trader.rpc(msg)
            assert reply["op"] == "market", reply
    trader.close()
    users = [f"b{i}" for i in range(args.clients)]
    for user in users:
        server.deposit(user, "1000000.00", f"seed-{user}")
    urls = server.ws_urls or [server.ws_url]
    conns = [await Subscriber.open(urls[i % len(urls)], server.token(u, "bettor"), lambda m: None)
             for i, u in enumerate(users)]
    rng = random.Random(args.seed)
    try:
        traders = [Trader(c, markets[i % len(markets)], random.Random(rng.random()))
                   for i, c in enumerate(conns)]
        await saturate(traders, 2, 3.0)  # warm-up: every bettor's money reaches its market
        for phase_label, phase in (
                (f"fixed rate {args.rate:,}/s", fixed_rate(traders, args.rate, args.seconds)),
                (f"saturation window {args.window}",
                 saturate(traders, args.window, args.seconds))):
            for t in traders:
                t.latencies.clear()
                t.done = t.errors = 0
            cpu_before, wire_before = cpu_by_role(server.pid), wire_counts(server)
            elapsed, lat = await phase
            cpu = {k: v - cpu_before[k] for k, v in cpu_by_role(server.pid).items()}
            wire = {k: (v - wire_before[k]) / elapsed for k, v in wire_counts(server).items()}
            done = sum(t.done for t in traders)
            errors = sum(t.errors for t in traders)
            per_order = ", ".join(f"{role} {seconds / done * 1e6:.0f}"
                                  for role, seconds in cpu.items() if seconds > 0.01)
            line = (f"{label}{phase_label}: {done / elapsed:,.0f} orders/s, ack "
                    f"{percentiles(lat)} ({done:,} requests, {errors} rejected); CPU us per "
                    f"order: {per_order}")
            if server.args:
                line += (f"; wire: {wire['entries']:,.0f} entries/s holding {wire['records']:,.0f}"
                         f" records/s, Redis XADD {wire['xadd']:,.0f}/s XREAD "
                         f"{wire['xread']:,.0f}/s, {wire['in'] / 1e6:.2f} MB/s in "
                         f"{wire['out'] / 1e6:.2f} MB/s out")
            print(line, flush=True)
    finally:
        for c in conns:
            c.close()


def run_one(args, split: bool) -> None:
    extra = ("--gateways", str(args.gateways), "--shards", str(args.shards)) if split else ()
    label = f"[split {args.gateways}g/{args.shards}s] " if split else "[one process] "
    with ServerProcess(args=extra, messages_per_s_max=1_000_000, message_burst_max=1_000_000,
                       send_queue_max=100_000, velocity_orders_max=0) as server:
        print(f"{label}{args.clients} clients over {len(server.ws_urls or [1])} gateway(s), "
              f"{args.shards} markets; embedded redis appendfsync=always", flush=True)
        import uvloop

        uvloop.run(drive(server, args, label))
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=("split", "one"))
    args = ap.parse_args()
    for _ in range(args.repeat):
        if args.only != "split":
            run_one(args, split=False)
        if args.only != "one":
            run_one(args, split=True)


if __name__ == "__main__":
    main()

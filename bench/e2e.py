"""End-to-end benchmark: the real server against N WebSocket clients in a second process.

Starts `backlay serve` in a subprocess (embedded Redis with AOF appendfsync always; the
Postgres persister on), funds N users through the deposit webhook, then from this process drives
N clients placing and cancelling orders: first at a fixed offered rate (open loop: sends are
scheduled, not paced by replies), then at saturation (each client keeps a window of requests in
flight). Prints sustained orders/s and ack latency p50/p99/p99.9 for each phase.

    python bench/e2e.py [--clients 50] [--rate 2000] [--seconds 10] [--window 16]
"""

import argparse
import asyncio
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import Client, ServerProcess, percentiles  # noqa: E402

PRICES_BACK = ["2.52", "2.54", "2.56", "2.58", "2.60"]  # rest above the lays
PRICES_LAY = ["2.40", "2.42", "2.44", "2.46", "2.48"]


class Trader:
    """One bench client's order flow: 40% resting backs, 40% resting lays, 20% cancels of its
    own resting orders, with a crossing order now and then so matching runs too."""

    def __init__(self, client: Client, market: str, rng: random.Random) -> None:
        self.client, self.market, self.rng = client, market, rng
        self.resting: list[str] = []
        self.latencies: list[float] = []
        self.errors = 0
        self.done = 0

    def next_request(self) -> dict:
        r = self.rng.random()
        if r < 0.2 and self.resting:
            return {"op": "cancel", "order": self.resting.pop(self.rng.randrange(len(self.resting)))}
        back = r < 0.6
        if self.rng.random() < 0.1:  # crosses: a back at a lay price, a lay at a back price
            price = self.rng.choice(PRICES_LAY if back else PRICES_BACK)
        else:
            price = self.rng.choice(PRICES_BACK if back else PRICES_LAY)
        return {"op": "place", "market": self.market, "selection": self.rng.choice("abc"),
                "side": "back" if back else "lay", "price": price, "size": "2.00"}

    async def one(self) -> None:
        sent = time.perf_counter()
        got, reply = await self.client.send(self.next_request())
        self.latencies.append(got - sent)
        self.done += 1
        if reply["op"] == "error":
            self.errors += 1
        elif reply["op"] == "placed" and reply["order"]["status"] == "EXECUTABLE":
            self.resting.append(reply["order"]["order"])


async def fixed_rate(traders: list[Trader], rate: float, seconds: float) -> tuple[float, list]:
    per_client_s = len(traders) / rate
    tasks = []
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
            tasks.append(asyncio.ensure_future(trader.one()))
            n += 1

    await asyncio.gather(*(run(t, i * per_client_s / len(traders))
                           for i, t in enumerate(traders)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return elapsed, [x for t in traders for x in t.latencies]


async def saturate(traders: list[Trader], window: int, seconds: float) -> tuple[float, list]:
    stop = time.perf_counter() + seconds
    start = time.perf_counter()

    async def lane(trader: Trader) -> None:
        while time.perf_counter() < stop:
            await trader.one()

    await asyncio.gather(*(lane(t) for t in traders for _ in range(window)))
    return time.perf_counter() - start, [x for t in traders for x in t.latencies]


async def bench(server: ServerProcess, args) -> None:
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
    clients = [Client(server.ws_url, server.token(u, "bettor")) for u in users]
    for c in clients:
        await c.__aenter__()
    rng = random.Random(args.seed)
    try:
        traders = [Trader(c, "bench", random.Random(rng.random())) for c in clients]
        await saturate(traders, 2, 2.0)  # warm-up
        for label, phase in (
                (f"fixed rate  offered {args.rate:,}/s",
                 fixed_rate(traders, args.rate, args.seconds)),
                (f"saturation  window {args.window}/client",
                 saturate(traders, args.window, args.seconds))):
            for t in traders:
                t.latencies.clear()
                t.done = t.errors = 0
            before = server_ack_buckets(server)
            elapsed, lat = await phase
            inside = server_quantiles(before, server_ack_buckets(server))
            done = sum(t.done for t in traders)
            errors = sum(t.errors for t in traders)
            print(f"{label}: sustained {done / elapsed:,.0f} orders/s, ack {percentiles(lat)}  "
                  f"({done:,} requests, {errors} rejected); inside the server "
                  f"(submit -> journaled reply): {inside}", flush=True)
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with ServerProcess(messages_per_s_max=1_000_000, message_burst_max=1_000_000,
                       send_queue_max=100_000, velocity_orders_max=0) as server:
        print(f"e2e bench: {args.clients} clients, server pid {server.pid}, "
              f"embedded redis appendfsync=always, persister on")
        import uvloop

        uvloop.run(bench(server, args))


if __name__ == "__main__":
    main()

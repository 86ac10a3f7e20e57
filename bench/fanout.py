"""Fan-out benchmark: many subscribers on one busy market.

Starts the real server (embedded Redis, AOF always), subscribes `--subscribers` connections
(default 1,000) to one market, and drives `--rate` matches/s (default 1,000) into it: the house
quotes the market with a large liability limit and a driver backs 1.00 at a time, so every
order is exactly one match. Each subscriber checks that its deltas' seq rises by one (no gaps:
every conflated delta arrives) and records when each delta arrived and how many orders it
reflects (the selection's traded total). Prints market-data messages delivered per second and
two delays, p50/p99: from the send of the newest order a delta reflects to its arrival (how
fresh a delta is), and from the send of every order to the arrival of the first delta that
reflects it (which adds the wait for the next conflation flush, up to `conflation_ms`).
Subscribers are lean Sans-I/O connections (`harness.Subscriber`) so that the bench's own
process, reading 1,000 of them, does not become the delay it measures.

    python bench/fanout.py [--subscribers 1000] [--rate 1000] [--seconds 10]
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import Client, ServerProcess, Subscriber, percentiles  # noqa: E402
from engine.money import parse_money  # noqa: E402

STAKE = "1.00"


class Watcher:
    def __init__(self) -> None:
        self.seq = 0
        self.deltas = 0
        self.gaps = 0
        self.arrivals: list[tuple[float, int]] = []  # (arrived at, orders matched so far)

    def on_push(self, msg: dict) -> None:
        if msg.get("op") != "mkt":
            return
        now = time.perf_counter()
        if self.seq and msg["seq"] != self.seq + 1:
            self.gaps += 1
        self.seq = msg["seq"]
        if msg.get("img"):
            return
        self.deltas += 1
        for sel in msg.get("selections", ()):
            if sel["id"] == "a" and "traded" in sel:
                self.arrivals.append((now, parse_money(sel["traded"]) // 100))  # 1.00 each

    def delays(self, sent_at: list[float]) -> tuple[list[float], list[float]]:
        """(newest, every): per delta, the delay from the send of the newest order it
        reflects; and per match, the delay until this subscriber saw a delta reflecting it,
        which includes the wait for the next conflation flush."""
        newest, every = [], []
        seen = 0
        for now, matched in self.arrivals:
            matched = min(matched, len(sent_at))
            if matched > seen:
                newest.append(now - sent_at[matched - 1])
                every.extend(now - t for t in sent_at[seen:matched])
                seen = matched
        return newest, every


async def bench(server: ServerProcess, args) -> None:
    trader = Client(server.ws_url, server.token("fan-trader", "trader"))
    await trader.__aenter__()
    for msg in ({"op": "market.create", "market": "busy", "event": "e", "name": "busy",
                 "selections": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]},
                {"op": "limits.set", "market": "busy", "max_liability": "100000000.00"},
                {"op": "market.status", "market": "busy", "status": "open"},
                {"op": "prices.set", "market": "busy", "prices": {"a": "2.00", "b": "2.00"},
                 "margin": "0.02"}):
        reply = await trader.rpc(msg)
        assert reply["op"] != "error", reply
    server.deposit("driver", "10000000.00", "fan-driver")
    sent_at: list[float] = []
    watchers = [Watcher() for _ in range(args.subscribers)]
    subscribers = []
    for i, w in enumerate(watchers):
        sub = await Subscriber.open(server.ws_url, server.token(f"watch{i}", "bettor"),
                                    w.on_push)
        await sub.rpc({"op": "subscribe", "markets": ["busy"], "depth": 3})
        subscribers.append(sub)
    driver = Client(server.ws_url, server.token("driver", "bettor"))
    await driver.__aenter__()
    print(f"{args.subscribers} subscribers connected")
    interval = 1 / args.rate
    start = time.perf_counter()
    pending = []
    n = 0
    while time.perf_counter() - start < args.seconds:
        due = start + n * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at.append(time.perf_counter())
        pending.append(driver.send({"op": "place", "market": "busy", "selection": "a",
                                    "side": "back", "price": "1.01", "size": STAKE}))
        n += 1
    replies = await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.5)  # the last conflated delta
    errors = sum(1 for _, r in replies if r["op"] == "error")
    deltas = sum(w.deltas for w in watchers)
    gaps = sum(w.gaps for w in watchers)
    newest, every = [], []
    for w in watchers:
        a, b = w.delays(sent_at)
        newest.extend(a)
        every.extend(b)
    print(f"fan-out: {n:,} orders ({n / elapsed:,.0f}/s, {errors} rejected) -> "
          f"{deltas:,} deltas to {args.subscribers} subscribers = {deltas / elapsed:,.0f} "
          f"messages/s ({deltas / args.subscribers / elapsed:.1f}/s each); seq gaps: {gaps}")
    print(f"newest match in a delta -> delivery: {percentiles(newest)}")
    print(f"every match -> delivery (incl. the wait for the next flush): {percentiles(every)}")
    for sub in subscribers:
        sub.close()
    for c in (driver, trader):
        await c.__aexit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with ServerProcess(messages_per_s_max=1_000_000, message_burst_max=1_000_000,
                       velocity_orders_max=0, connections_max=20_000) as server:
        import uvloop

        uvloop.run(bench(server, args))


if __name__ == "__main__":
    main()

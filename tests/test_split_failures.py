"""kill -9 in the split shape, under load (docs/scale-out.md "Failure"): real clients trade
through real gateways into two real shards while one process is killed.

- A gateway: its clients lose their connections and carry on through the other gateway; every
  order they were told about is there; the dead-man switch of a cancel_on_disconnect client on
  it fires (its shard notices the gateway is gone); the supervisor starts the gateway again on
  its port.
- A shard: its connections are closed (1012) and requests for it refused while it is down; the
  supervisor restarts it, it recovers from its newest snapshot and its journal (every event
  verified), clients carry on, every order they were told about is there and no money appeared
  or vanished across the shards.
"""

import asyncio
import itertools
import os
import re
import signal

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures", "tests.split_fixtures")

from tests.split_fixtures import money_outside, split_exchange  # noqa: E402
from tests.ws_fixtures import Client, Harness, minor, place  # noqa: E402

ENV = {"BACKLAY_PEER_TIMEOUT_S": "2.0", "BACKLAY_SNAPSHOT_EVERY_COMMANDS": "30",
       "BACKLAY_VELOCITY_ORDERS_MAX": "0"}
FUNDS = "100000.00"  # each trader's: far more than a slow machine's load rests (1.00 an order)


class Trading:
    """One bettor placing small resting orders one after another on a market, through a
    gateway, reconnecting to the next gateway whenever the connection goes."""

    def __init__(self, h: Harness, user: str, market: str, urls: list[str]) -> None:
        self.h, self.user, self.market = h, user, market
        self.urls = itertools.cycle(urls)
        self.acked: list[str] = []  # order ids the exchange said it placed
        self.refused = 0  # requests answered with an error while a shard was down
        self.reconnects = -1
        self.client: Client | None = None

    async def connect(self) -> Client:
        while True:
            try:
                self.client = await self.h.client(self.user, "bettor", url=next(self.urls))
                self.reconnects += 1
                return self.client
            except Exception:  # the gateway it tried is down: the next one
                await asyncio.sleep(0.05)

    async def run(self, stop: asyncio.Event) -> None:
        client = await self.connect()
        while not stop.is_set():
            if client.closed.is_set():
                client = await self.connect()
            try:
                reply = await client.rpc(place(self.market, price="5.00", size="1.00"),
                                         timeout=10)
            except (ConnectionError, TimeoutError):
                continue  # its outcome is unknown: only acknowledged orders count
            if reply["op"] == "placed":
                self.acked.append(reply["order"]["order"])
            else:
                assert reply["code"] == "INTERNAL", reply  # its shard is down
                self.refused += 1
                await asyncio.sleep(0.05)

    async def orders(self) -> dict[str, dict]:
        """The bettor's orders on every shard (once every shard answers again)."""
        for _ in range(100):
            client = await self.connect()
            try:
                reply = await client.rpc({"op": "orders"})
            except ConnectionError:
                continue
            if reply["op"] == "orders":
                return {o["order"]: o for o in reply["orders"]}
            assert reply["code"] == "INTERNAL", reply
            await asyncio.sleep(0.1)
        raise AssertionError("a shard never came back")


async def _until(predicate, what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


def test_clients_of_a_killed_gateway_carry_on_through_another_and_lose_no_order(
        redis_url, migrated_database_url, run):
    with split_exchange(redis_url, migrated_database_url, env=ENV) as x:
        async def scenario():
            h = Harness(x.server)
            g1, g2 = x.server.ws_urls
            try:
                markets = [await h.market(market=h.market_id(k)) for k in x.shards.all]
                traders = [Trading(h, await h.funded_user(f"t{i}", FUNDS), markets[i % 2],
                                   [g1, g2]) for i in range(4)]
                # a dead-man client on the gateway that dies, its orders resting on both shards
                careful = await h.bettor("careful", "100.00", cancel_on_disconnect=True,
                                         url=g1)
                resting = [(await careful.ok(place(m, price="9.00", size="2.00"), "placed"))[
                    "order"]["order"] for m in markets]
                stop = asyncio.Event()
                load = [asyncio.create_task(t.run(stop)) for t in traders]
                await _until(lambda: all(len(t.acked) >= 5 for t in traders), "orders flow")
                killed = x.pid("g1")
                os.kill(killed, signal.SIGKILL)
                await careful.wait_closed()
                await _until(lambda: all(t.reconnects >= 1 for t in traders) and all(
                    len(t.acked) >= 15 for t in traders), "everyone carried on elsewhere")
                await _until(lambda: x.starts("g1") == 2, "the supervisor restarts g1")
                stop.set()
                await asyncio.gather(*load)
                for t in traders:  # every order the exchange told them about is there
                    listed = await t.orders()
                    assert set(t.acked) <= set(listed)
                    assert all(listed[o]["remaining"] == "1.00" for o in t.acked)
                # the dead-man switch fired when the shards saw g1 gone
                watcher = Trading(h, careful.user, markets[0], [g2])
                for _ in range(100):
                    orders = await watcher.orders()
                    if all(orders[o]["status"] == "EXECUTION_COMPLETE" for o in resting):
                        break
                    await asyncio.sleep(0.1)
                assert all(orders[o]["cancelled"] == "2.00" for o in resting), orders
                # and g1 takes connections again, on its port
                again = await h.client(careful.user, "bettor", url=g1)
                assert (await again.ok({"op": "wallet"}, "wallet"))["held"] == "0.00"
                assert x.pid("g1") != killed
            finally:
                await h.close()

        run(scenario(), timeout_s=120)


def test_a_killed_shard_recovers_from_its_snapshot_and_journal_and_loses_no_order(
        redis_url, migrated_database_url, run):
    with split_exchange(redis_url, migrated_database_url, env=ENV) as x:
        async def scenario():
            h = Harness(x.server)
            urls = x.server.ws_urls
            try:
                markets = [await h.market(market=h.market_id(k)) for k in x.shards.all]
                traders = [Trading(h, await h.funded_user(f"t{i}", FUNDS), markets[i % 2],
                                   urls[i % 2:] + urls[:i % 2]) for i in range(4)]
                stop = asyncio.Event()
                load = [asyncio.create_task(t.run(stop)) for t in traders]
                # enough that shard 1 has snapshotted before it dies
                await _until(lambda: all(len(t.acked) >= 25 for t in traders), "orders flow")
                await _until(lambda: any("[s1]" in line and "snapshot at seq" in line
                                         for line in x.server.log), "shard 1 snapshots")
                os.kill(x.pid("s1"), signal.SIGKILL)
                await _until(lambda: x.starts("s1") == 2, "the supervisor restarts s1")
                on_s1 = [t for t in traders if x.shards.of_market(t.market) == 1]
                counts = {id(t): len(t.acked) for t in on_s1}
                await _until(lambda: all(len(t.acked) >= counts[id(t)] + 10 for t in on_s1),
                             "orders flow to the restarted shard")
                stop.set()
                await asyncio.gather(*load)
                assert any(t.reconnects for t in on_s1), "nobody's connection was closed"
                for t in traders:
                    listed = await t.orders()
                    assert set(t.acked) <= set(listed), set(t.acked) - set(listed)
                restart = [line for line in x.server.log if "[s1]" in line and "recovered" in line]
                loaded = int(re.search(r"\(snapshot (\d+) loaded", restart[-1]).group(1))
                assert loaded > 10**12, restart[-1]  # from its own snapshot, then its journal
                engines = await x.engines()
                for engine in engines:
                    engine.validate()
                assert money_outside(engines) == 4 * minor(FUNDS)
            finally:
                await h.close()

        run(scenario(), timeout_s=150)

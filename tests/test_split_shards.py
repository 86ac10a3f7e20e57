"""Two real engine shards behind two gateways (gateway/split/, docs/scale-out.md): each shard
journals to its own stream, snapshots into and persists to its own Postgres schema, and a
bettor's money follows them from shard to shard by transfers; however the trading goes, no money
appears or vanishes, across the shards, and every bettor's wallet is the sum of their shards'.
"""

import asyncio
import random

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures", "tests.split_fixtures")

from engine.engine import EXTERNAL  # noqa: E402
from gateway.split.shards import SEQ_SPAN, base_seq  # noqa: E402
from tests.split_fixtures import (money_outside, split_exchange, transit,  # noqa: E402
                                  whole_wallet)
from tests.ws_fixtures import Harness, minor, place  # noqa: E402

SETTLE_TIMEOUT_S = 20.0


async def _quiet(x, predicate, what: str):
    """The shards' engines once `predicate(engines)` holds (transfers arrive asynchronously)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
    while True:
        engines = await x.engines()
        if predicate(engines):
            return engines
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.2)


def test_money_is_conserved_across_two_real_shards_whatever_the_trading(
        redis_url, migrated_database_url, run):
    rng = random.Random(19)
    with split_exchange(redis_url, migrated_database_url,
                        env={"BACKLAY_SNAPSHOT_EVERY_COMMANDS": "40",
                             "BACKLAY_VELOCITY_ORDERS_MAX": "0"}) as x:
        async def scenario():
            h = Harness(x.server)
            try:
                trader = await h.trader()
                markets = [await h.market(trader, market=h.market_id(k))
                           for k in x.shards.all for _ in range(2)]
                bettors = [await h.bettor(f"b{i}", "200.00") for i in range(6)]
                for b in bettors:
                    await b.ok({"op": "orders"}, "orders")  # wallet pushes from now on
                deposited = 6 * 200_00
                placed = []
                for _ in range(60):  # crossing backs and lays on every shard
                    bettor = rng.choice(bettors)
                    reply = await bettor.rpc(place(
                        rng.choice(markets), selection=rng.choice(["s1", "s2"]),
                        side=rng.choice(["back", "lay"]),
                        price=rng.choice(["1.90", "2.00", "2.10"]),
                        size=rng.choice(["5.00", "20.00", "35.00"])))
                    assert reply["op"] in ("placed", "error"), reply
                    if reply["op"] == "placed":
                        placed.append(reply["order"]["order"])
                    else:
                        assert reply["code"] == "INSUFFICIENT_FUNDS", reply
                assert {x.shards.of_seq(int(o[1:])) for o in placed} == set(x.shards.all)
                # a withdrawal leaves from the home shard: the money comes back there first
                engines = await x.engines()
                rich = max(bettors, key=lambda b: whole_wallet(engines, b.user)[0]
                           - whole_wallet(engines, b.user)[1])
                balance, held = whole_wallet(engines, rich.user)
                withdrawn = balance - held
                http = await h.http()
                async with http.post("/wallet/withdrawals", json={"amount": _text(withdrawn)},
                                     headers={"Authorization": "Bearer " + h.token(
                                         rich.user, "bettor")}) as resp:
                    requested = await resp.json()
                    assert resp.status == 201, requested
                # settle every market, one winner each
                for market in markets:
                    await trader.ok({"op": "market.settle", "market": market,
                                     "winners": [rng.choice(["s1", "s2"])]}, "market")
                engines = await _quiet(x, lambda es: transit(es) == 0
                                       and not any(e.transfers.pending for e in es),
                                       "every transfer arrived and was confirmed")
                # conservation: deposits in, nothing out yet (the withdrawal is only held)
                assert money_outside(engines) == deposited
                assert sum(w.balance for e in engines for (a, c), w in e.wallets.items()
                           if a == EXTERNAL) == -deposited
                for e in engines:
                    e.validate()
                assert any(e.transfers.credited for e in engines), "no transfer was needed"
                # every bettor's wallet, as their gateway reports it, is their shards' sum
                for b in bettors:
                    reply = await b.ok({"op": "wallet"}, "wallet")
                    balance, held = whole_wallet(engines, b.user)
                    assert (minor(reply["balance"]), minor(reply["held"])) == (balance, held)
                    assert held == (withdrawn if b is rich else 0)
                # each shard's own journal, snapshots and read model
                for k in x.shards.all:
                    assert base_seq(k) < engines[k].last_seq < base_seq(k) + SEQ_SPAN
                    snaps = await _snapshots(x, k)
                    assert all(base_seq(k) < seq < base_seq(k) + SEQ_SPAN for seq in snaps)
                    await _persisted(x, k, engines[k].last_seq)
                    rows = await x.read_model(k, "SELECT user_id, currency, balance_minor, "
                                                 "held_minor FROM wallets")
                    assert {(r["user_id"], r["currency"]): (r["balance_minor"], r["held_minor"])
                            for r in rows} == {key: (w.balance, w.held)
                                               for key, w in engines[k].wallets.items()}
            finally:
                await h.close()

        run(scenario(), timeout_s=240)


def _text(minor_units: int) -> str:
    return f"{minor_units // 100}.{minor_units % 100:02d}"


async def _snapshots(x, shard: int) -> list[int]:
    """The shard's snapshots (it takes one within a second of `snapshot_every_commands`)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
    while not (rows := await x.read_model(shard, "SELECT seq FROM snapshots")):
        assert asyncio.get_running_loop().time() < deadline, f"shard {shard} took no snapshot"
        await asyncio.sleep(0.2)
    return [row["seq"] for row in rows]


async def _persisted(x, shard: int, seq: int) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
    while (await x.read_model(shard, "SELECT seq FROM persisted"))[0]["seq"] < seq:
        assert asyncio.get_running_loop().time() < deadline, f"shard {shard} never persisted"
        await asyncio.sleep(0.1)


def test_a_bettors_money_follows_them_to_the_shard_of_the_market_and_back_home(
        redis_url, migrated_database_url, run):
    with split_exchange(redis_url, migrated_database_url) as x:
        async def scenario():
            h = Harness(x.server)
            try:
                alice = await h.bettor("alice", "100.00")
                home = x.shards.of_user(alice.user)
                away = await h.market(market=h.market_id(1 - home))
                await alice.ok({"op": "orders"}, "orders")
                order = (await alice.ok(place(away, price="3.00", size="60.00"),
                                        "placed"))["order"]
                assert x.shards.of_seq(order["placed_seq"]) == 1 - home
                # one wallet, wherever the money is: no push said otherwise
                wallet = await alice.ok({"op": "wallet"}, "wallet")
                assert (wallet["balance"], wallet["held"], wallet["available"]) == (
                    "100.00", "60.00", "40.00")
                pushes = [p for p in alice.pushes if p["op"] == "wallet"]
                assert pushes and all(p["balance"] == "100.00" for p in pushes), pushes
                engines = await _quiet(x, lambda es: es[home].transfers.net.get(
                    (alice.user, "BDT")) == 100_00, "the money moved to the market's shard")
                assert engines[1 - home].wallets[(alice.user, "BDT")].balance == 100_00
                # a withdrawal from home brings the money back first
                await alice.ok({"op": "cancel", "order": order["order"]}, "cancelled")
                http = await h.http()
                async with http.post("/wallet/withdrawals", json={"amount": "100.00"},
                                     headers={"Authorization": "Bearer " + h.token(
                                         alice.user, "bettor")}) as resp:
                    body = await resp.json()
                    assert resp.status == 201, body
                assert body["wallet"] == {"currency": "BDT", "balance": "100.00",
                                          "held": "100.00", "available": "0.00"}
                engines = await _quiet(x, lambda es: not any(e.transfers.pending for e in es),
                                       "the transfer home was confirmed")
                assert whole_wallet(engines, alice.user) == (100_00, 100_00)
                assert money_outside(engines) == 100_00 and transit(engines) == 0
            finally:
                await h.close()

        run(scenario(), timeout_s=120)

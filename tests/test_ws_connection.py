"""Connection life: heartbeats, the cancel_on_disconnect dead-man switch, graceful shutdown."""

import asyncio
import os
import re
import signal
import time

import orjson
import pytest
from websockets.asyncio.client import connect

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import (HEARTBEAT_S, Harness, place, placed,  # noqa: E402
                               scratch_dir, start_server, stop_server, unique)

pytest_plugins = ["tests.ws_fixtures"]


def test_idle_connection_gets_heartbeats(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("idle"))
        await asyncio.sleep(HEARTBEAT_S * 2.5)
        assert len(client.heartbeats) >= 1
        for hb in client.heartbeats:
            assert set(hb) == {"op", "ts"} and isinstance(hb["ts"], int)
            assert abs(hb["ts"] - time.time() * 1000) < 10_000  # milliseconds, now-ish
        assert client.pushes == []
    ws(scenario)


def test_heartbeats_come_about_every_interval_not_more(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("idle"))
        await asyncio.sleep(HEARTBEAT_S * 3.2)
        # one per interval, give or take the check period (interval / 2)
        assert 2 <= len(client.heartbeats) <= 4, client.heartbeats
        stamps = [hb["ts"] for hb in client.heartbeats]
        assert stamps == sorted(stamps)
    ws(scenario)


def test_busy_connection_gets_no_heartbeats(ws):
    async def scenario(h: Harness):
        client = await h.client(unique("busy"))
        end = time.monotonic() + HEARTBEAT_S * 2.5
        while time.monotonic() < end:
            await client.rpc({"op": "wallet"})
            await asyncio.sleep(HEARTBEAT_S / 5)
        assert client.heartbeats == []
    ws(scenario)


async def _resting(client) -> dict[str, str]:
    orders = (await client.ok({"op": "orders"}, "orders"))["orders"]
    return {o["order"]: o["remaining"] for o in orders}


def test_dead_man_cancels_the_dropped_connections_resting_orders_within_a_second(ws):
    async def scenario(h: Harness):
        market = await h.market()
        user = await h.funded_user("dm", "1000.00")
        armed = await h.client(user, cancel_on_disconnect=True)
        plain = await h.client(user)  # same user, no dead-man
        other = await h.bettor("other")
        watcher = await h.client(unique("w"))
        doomed = [await placed(armed, market, price=p, size="10.00") for p in ("3.00", "3.05")]
        kept_same_user = await placed(plain, market, price="4.00", size="10.00")
        kept_other = await placed(other, market, price="3.00", size="10.00")
        await watcher.ok({"op": "subscribe", "markets": [market], "depth": 10}, "subscribed")
        image = await watcher.take("mkt")
        assert image["selections"][0]["to_lay"] == [["3.00", "20.00"], ["3.05", "10.00"],
                                                    ["4.00", "10.00"]]
        armed.ws.transport.abort()  # the connection drops: no close handshake
        dropped = time.monotonic()
        delta = await watcher.take("mkt", timeout=2)
        assert time.monotonic() - dropped < 1.0
        # the book loses exactly the dropped connection's orders
        assert sorted(delta["selections"][0]["to_lay"]) == [["3.00", "10.00"], ["3.05", "0.00"]]
        resting = await _resting(plain)
        assert {o["order"]: resting[o["order"]] for o in doomed} == {
            o["order"]: "0.00" for o in doomed}
        assert resting[kept_same_user["order"]] == "10.00"
        assert (await _resting(other))[kept_other["order"]] == "10.00"
        wallet = await plain.ok({"op": "wallet"}, "wallet")
        assert wallet["held"] == "10.00"  # only the surviving order's stake
    ws(scenario)


def test_dead_man_on_a_clean_close_too(ws):
    async def scenario(h: Harness):
        market = await h.market()
        user = await h.funded_user("dm", "100.00")
        armed = await h.client(user, cancel_on_disconnect=True)
        order = await placed(armed, market, price="3.00", size="10.00")
        await armed.close()
        checker = await h.client(user)
        deadline = time.monotonic() + 1.0
        while (await _resting(checker))[order["order"]] != "0.00":
            assert time.monotonic() < deadline, "not cancelled within 1 s"
            await asyncio.sleep(0.05)
    ws(scenario)


def test_dead_man_keeps_what_was_matched(ws):
    async def scenario(h: Harness):
        market = await h.market()
        user = await h.funded_user("dm", "100.00")
        armed = await h.client(user, cancel_on_disconnect=True)
        layer = await h.bettor("layer")
        order = await placed(armed, market, price="2.00", size="10.00")
        await placed(layer, market, side="lay", price="2.00", size="4.00")
        armed.ws.transport.abort()
        checker = await h.client(user)
        await asyncio.sleep(1.0)
        (after,) = (await checker.ok({"op": "orders"}, "orders"))["orders"]
        assert (after["order"], after["matched"], after["cancelled"], after["remaining"]) == (
            order["order"], "4.00", "6.00", "0.00")
        assert (await checker.ok({"op": "wallet"}, "wallet"))["held"] == "4.00"
    ws(scenario)


def test_dead_man_notices_a_connection_that_went_silent(ws):
    """No FIN, no RST: the client just stops answering (its reading is paused, so pings go
    unanswered). The dead-man switch must still fire within about a second."""
    async def scenario(h: Harness):
        market = await h.market()
        user = await h.funded_user("frozen", "100.00")
        frozen = await connect(h.ws_url, max_queue=1, ping_interval=None, open_timeout=5)
        try:
            await frozen.send(orjson.dumps({"op": "auth", "id": 1, "token": h.token(user),
                                            "cancel_on_disconnect": True}).decode())
            assert orjson.loads(await frozen.recv())["op"] == "authed"
            await frozen.send(orjson.dumps(place(market, price="3.00", size="10.00")).decode())
            order = orjson.loads(await frozen.recv())["order"]
            for _ in range(3):  # replies it never reads: its reading pauses, pings pile up
                await frozen.send(orjson.dumps({"op": "wallet"}).decode())
            froze = time.monotonic()
            checker = await h.client(user)
            while (await _resting(checker))[order["order"]] != "0.00":
                assert time.monotonic() - froze < 2.0, "a silent connection kept its orders"
                await asyncio.sleep(0.1)
        finally:
            frozen.transport.abort()
    ws(scenario)


def test_without_cancel_on_disconnect_orders_survive_a_drop(ws):
    async def scenario(h: Harness):
        market = await h.market()
        user = await h.funded_user("plain", "100.00")
        client = await h.client(user, cancel_on_disconnect=False)
        order = await placed(client, market, price="3.00", size="10.00")
        client.ws.transport.abort()
        await asyncio.sleep(1.0)
        checker = await h.client(user)
        assert (await _resting(checker))[order["order"]] == "10.00"
    ws(scenario)


@pytest.mark.slow
def test_sigterm_closes_connections_with_1001_and_exits_0():
    """Its own server (the session one must keep running): SIGTERM -> clients see 1001 (going
    away) after their pending replies, the process exits 0, and a restart recovers the state."""
    with scratch_dir("backlay-ws-shutdown-") as base:
        server = start_server(base / "var")
        try:
            async def before(h: Harness):
                try:
                    market = await h.market()
                    alice = await h.bettor("alice", "100.00")
                    order = await placed(alice, market, price="3.00", size="10.00")
                    server.proc.send_signal(signal.SIGTERM)
                    code = await alice.wait_closed(10)
                    return alice.user, order, code
                finally:
                    await h.close()

            user, order, code = asyncio.run(before(Harness(server)))
            assert code == 1001
        finally:
            rc = stop_server(server)
        assert rc == 0, server.log_tail()

        restarted = start_server(base / "var")
        try:
            async def after(h: Harness):
                try:
                    alice = await h.client(user)
                    orders = (await alice.ok({"op": "orders"}, "orders"))["orders"]
                    wallet = await alice.ok({"op": "wallet"}, "wallet")
                    return orders, wallet
                finally:
                    await h.close()

            orders, wallet = asyncio.run(after(Harness(restarted)))
            assert [o["order"] for o in orders] == [order["order"]]
            assert orders[0]["remaining"] == "10.00"
            assert (wallet["balance"], wallet["held"]) == ("100.00", "10.00")
        finally:
            assert stop_server(restarted) == 0, restarted.log_tail()


def _persister_pid(server_pid: int) -> int | None:
    import psutil

    for child in psutil.Process(server_pid).children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.slow
def test_a_killed_persister_is_started_again_and_catches_up_while_trading_goes_on():
    """Its own server. SIGKILL its persister process: /ready turns 503 naming
    persister_running, trading goes on (the journal holds it), a new persister is started and
    folds what happened meanwhile into Postgres, and /ready is 200 again."""
    with scratch_dir("backlay-ws-persister-") as base:
        server = start_server(base / "var")
        try:
            async def scenario(h: Harness):
                try:
                    http = await h.http()

                    async def ready() -> tuple[int, dict]:
                        async with http.get("/ready") as resp:
                            return resp.status, (await resp.json())["checks"]

                    async def metric(name: str) -> float:
                        async with http.get("/metrics") as resp:
                            text = await resp.text()
                        return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))

                    assert (await ready())[0] == 200
                    first = _persister_pid(server.pid)
                    assert first is not None
                    os.kill(first, signal.SIGKILL)
                    await h.deposit("while-down", "25.00")  # journaled; no persister to fold it
                    seen_down = None
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        status, checks = await ready()
                        if status == 503:
                            seen_down = checks
                        elif seen_down is not None:
                            break
                        await asyncio.sleep(0.05)
                    second = _persister_pid(server.pid)
                    while await metric("backlay_persister_lag_entries") and \
                            time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                    return (first, second, seen_down, await ready(),
                            await metric("backlay_persister_restarts_total"),
                            await metric("backlay_persister_lag_entries"))
                finally:
                    await h.close()

            first, second, seen_down, (status, checks), restarts, lag = asyncio.run(
                scenario(Harness(server)))
        finally:
            assert stop_server(server) == 0, server.log_tail()
        assert seen_down is not None and seen_down["persister_running"] is False
        assert second is not None and second != first
        assert status == 200 and checks["persister_running"] is True
        assert restarts == 1.0
        assert lag == 0.0  # the deposit made while it was down is in Postgres
        assert any("persister process exited" in line for line in server.log)

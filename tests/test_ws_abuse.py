"""Hostile and broken clients (DESIGN.md §5 bounds): bad frames get errors and the connection
keeps working; oversize frames, floods and clients that stop reading are cut off or have their
market data dropped, without hurting the server or anyone else."""

import asyncio
import random
import re
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import (FRAME_BYTES_MAX, MESSAGE_BURST_MAX,  # noqa: E402
                               MESSAGES_PER_S_MAX, SUBSCRIPTIONS_MAX, Harness,
                               minor, place, placed, small_socket, unique)

pytest_plugins = ["tests.ws_fixtures"]


async def _works(client) -> None:
    reply = await client.rpc({"op": "wallet"})
    assert reply["op"] == "wallet", reply
    assert not client.closed.is_set()


async def _error_push(client, code: str) -> dict:
    push = await client.take("error")
    assert push["code"] == code and push["message"], push
    return push


@pytest.mark.parametrize("frame", ["not json", "{", "", "null", "[1, 2]", '"op"', "42",
                                   "[" * 5000 + "]" * 5000, b"\x00\xff binary junk"],
                         ids=["text", "truncated", "empty", "null", "array", "string", "number",
                              "deep-nesting", "binary"])
def test_frame_that_is_not_a_json_object_is_bad_request_and_the_connection_stays(ws, frame):
    async def scenario(h: Harness):
        client = await h.bettor("junk")
        await client.send_raw(frame)
        push = await _error_push(client, "BAD_REQUEST")
        assert push["id"] is None
        await _works(client)
    ws(scenario)


def test_unknown_op_is_bad_request_with_the_id_echoed(ws):
    async def scenario(h: Harness):
        client = await h.bettor("junk")
        reply = await client.error({"op": "drop_tables", "id": "x1"}, "BAD_REQUEST")
        assert "drop_tables" in reply["message"]
        await _works(client)
    ws(scenario)


@pytest.mark.parametrize("request_,code", [
    ({"op": "subscribe", "markets": "m1"}, "BAD_REQUEST"),
    ({"op": "subscribe", "markets": [1, 2]}, "BAD_REQUEST"),
    ({"op": "subscribe", "markets": ["m1"], "depth": "3"}, "BAD_REQUEST"),
    ({"op": "subscribe", "markets": ["m1"], "depth": 2.5}, "BAD_REQUEST"),
    ({"op": "subscribe", "markets": ["m1"], "depth": True}, "BAD_REQUEST"),
    ({"op": "place", "market": "m1", "selection": "s1", "side": 1, "price": "2.00",
      "size": "1.00"}, "BAD_REQUEST"),
    ({"op": "place", "market": ["m1"], "selection": "s1", "side": "back", "price": "2.00",
      "size": "1.00"}, "BAD_REQUEST"),
    ({"op": "place", "market": "m1", "selection": "s1", "side": "back", "price": 2.0,
      "size": "1.00"}, "INVALID_ODDS"),
    ({"op": "place", "market": "m1", "selection": "s1", "side": "back", "price": "2.00",
      "size": 1}, "INVALID_SIZE"),
    ({"op": "place", "market": "m1", "selection": "s1", "side": "back", "price": "2.00",
      "size": None}, "INVALID_SIZE"),
    ({"op": "cancel", "order": 17}, "BAD_REQUEST"),
    ({"op": "slip.set", "legs": {"market": "m1"}}, "BAD_REQUEST"),
    ({"op": "slip.set", "legs": [{"market": "m1", "selection": "s1", "side": "back",
                                  "stake": 10}]}, "INVALID_SIZE"),
    ({"op": "unsubscribe", "markets": "all"}, "BAD_REQUEST"),
    ({"op": 7}, "BAD_REQUEST"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_wrong_types_are_errors_and_the_connection_stays(ws, request_, code):
    async def scenario(h: Harness):
        client = await h.bettor("junk")
        await client.error(request_, code)
        await _works(client)
    ws(scenario)


def test_three_decimal_money_is_invalid_size_and_nothing_is_placed(ws):
    async def scenario(h: Harness):
        market = await h.market()
        client = await h.bettor("junk", "100.00")
        for size in ("1.001", "10.000", "0.005"):
            reply = await client.error(place(market, size=size), "INVALID_SIZE")
            assert size in reply["message"] or "two decimals" in reply["message"]
        assert (await client.ok({"op": "orders"}, "orders"))["orders"] == []
        await _works(client)
    ws(scenario)


def test_off_ladder_odds_are_invalid_odds_and_nothing_is_placed(ws):
    async def scenario(h: Harness):
        market = await h.market()
        client = await h.bettor("junk", "100.00")
        for price in ("2.01", "3.03", "4.05", "2.505", "1000.01"):
            await client.error(place(market, price=price), "INVALID_ODDS")
        assert (await client.ok({"op": "orders"}, "orders"))["orders"] == []
        await _works(client)
    ws(scenario)


def test_many_bad_frames_in_a_row_do_not_close_the_connection(ws):
    async def scenario(h: Harness):
        client = await h.bettor("junk")
        for i in range(MESSAGE_BURST_MAX // 2):
            await client.send_raw(f"garbage {i}")
        for _ in range(MESSAGE_BURST_MAX // 2):
            await _error_push(client, "BAD_REQUEST")
        await asyncio.sleep(MESSAGE_BURST_MAX / MESSAGES_PER_S_MAX)  # tokens back
        await _works(client)
    ws(scenario)


def test_a_text_frame_that_is_not_utf8_closes_1007_and_ascii_and_utf8_ones_are_read(ws):
    """RFC 6455 8.1: a text message must be UTF-8. The server skips decoding frames that are
    ASCII (nearly all of them): a multi-byte UTF-8 one is still read, a malformed one closes."""
    async def scenario(h: Harness):
        client = await h.bettor("utf8")
        assert (await client.rpc({"op": "wallet", "id": "ü-é"}))["op"] == "wallet"
        await client.ws.send(b'{"op":"wallet","id":"\xff"}', text=True)
        assert await client.wait_closed(5) == 1007
        await _works(await h.bettor("after"))
    ws(scenario)


def test_oversize_frame_closes_1009(ws):
    async def scenario(h: Harness):
        client = await h.bettor("big")
        await client.send_raw(orjson.dumps({"op": "wallet", "pad": "x" * FRAME_BYTES_MAX})
                              .decode())
        assert await client.wait_closed(5) == 1009
        # the server is fine: others connect and work
        await _works(await h.bettor("next"))
    ws(scenario)


def test_frame_just_under_the_limit_is_read_and_answered(ws):
    async def scenario(h: Harness):
        client = await h.bettor("big")
        frame = orjson.dumps({"op": "wallet", "pad": ""}).decode()
        frame = frame.replace('"pad":""', '"pad":"' + "x" * (FRAME_BYTES_MAX - len(frame) - 10)
                              + '"')
        assert len(frame) < FRAME_BYTES_MAX
        await client.send_raw(frame)
        reply = await client.take("error")  # unknown field: a bad request, not a close
        assert reply["code"] == "BAD_REQUEST"
        await _works(client)
    ws(scenario)


def test_a_burst_within_the_limit_is_all_answered(ws):
    async def scenario(h: Harness):
        client = await h.bettor("bursty")
        ids = [await client.send({"op": "wallet"}) for _ in range(MESSAGE_BURST_MAX - 5)]
        replies = [await client.reply(rid) for rid in ids]
        assert all(r["op"] == "wallet" for r in replies)
        assert client.take_all("error") == []
    ws(scenario)


def test_flooding_past_the_rate_limit_gets_rate_limited_then_close_4029(ws):
    async def scenario(h: Harness):
        client = await h.bettor("flood")
        frame = orjson.dumps({"op": "wallet"}).decode()
        sent = 0
        try:
            for _ in range(MESSAGE_BURST_MAX * 6):
                await client.send_raw(frame)
                sent += 1
                if sent % 20 == 0:
                    await asyncio.sleep(0)  # let replies and errors in, as a real client would
        except ConnectionClosed:
            pass
        assert await client.wait_closed(5) == 4029
        limited = [p for p in client.pushes if p.get("code") == "RATE_LIMITED"]
        assert limited, "no RATE_LIMITED error before the close"
        assert all(p["op"] == "error" and p["id"] is None for p in limited)
        answered = list(client.replies.values()) + [p for p in client.pushes
                                                    if p["op"] == "wallet"]
        assert len(answered) >= MESSAGE_BURST_MAX * 0.9  # the burst itself was served
        await _works(await h.client(client.user))  # the user may reconnect
    ws(scenario)


def test_rate_limit_is_per_connection(ws):
    async def scenario(h: Harness):
        flood = await h.bettor("flood")
        calm = await h.client(flood.user)
        frame = orjson.dumps({"op": "wallet"}).decode()
        try:
            for i in range(MESSAGE_BURST_MAX * 6):
                await flood.send_raw(frame)
                if i % 20 == 0:
                    await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        assert await flood.wait_closed(5) == 4029
        started = time.monotonic()
        await _works(calm)
        assert time.monotonic() - started < 0.5
        assert [p for p in calm.pushes if p["op"] == "error"] == []
    ws(scenario)


def _short_ids(n: int) -> list[str]:
    """n distinct market ids of at most 3 characters."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return [a + b + c for a in alphabet for b in alphabet for c in alphabet][:n]


def test_subscribing_to_10000_markets_is_refused_and_the_connection_stays(ws):
    async def scenario(h: Harness):
        market = await h.market()
        client = await h.bettor("greedy")
        names = _short_ids(10_000)  # the frame stays under the frame size limit
        reply = await client.error({"op": "subscribe", "markets": names}, "LIMIT_EXCEEDED")
        assert str(SUBSCRIPTIONS_MAX) in reply["message"]
        assert await client.settle(0.2, "mkt") == []
        await client.ok({"op": "subscribe", "markets": [market]}, "subscribed")
        assert (await client.take("mkt"))["img"] is True
    ws(scenario)


def test_subscribing_to_more_than_10000_markets_is_bad_request(ws):
    async def scenario(h: Harness):
        client = await h.bettor("greedy")
        names = _short_ids(10_001)
        await client.error({"op": "subscribe", "markets": names}, "BAD_REQUEST")
        await _works(client)
    ws(scenario)


def test_subscriptions_per_connection_are_bounded(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        markets = [await h.market(trader) for _ in range(SUBSCRIPTIONS_MAX + 1)]
        client = await h.bettor("greedy")
        await client.ok({"op": "subscribe", "markets": markets[:-1]}, "subscribed")
        await client.error({"op": "subscribe", "markets": markets[-1:]}, "LIMIT_EXCEEDED")
        # re-subscribing to one already held is fine, and unsubscribing frees a slot
        await client.ok({"op": "subscribe", "markets": markets[:1]}, "subscribed")
        await client.ok({"op": "unsubscribe", "markets": markets[:1]}, "unsubscribed")
        await client.ok({"op": "subscribe", "markets": markets[-1:]}, "subscribed")
    ws(scenario, timeout_s=60)


# -- clients that never read ------------------------------------------------------------------


async def _metric(h: Harness, name: str) -> float:
    status, text = await h.get("/metrics")
    assert status == 200
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def _non_reader(h: Harness, user: str, markets: list[str], *, orders: bool):
    """A raw connection with tiny socket buffers that authenticates, subscribes (depth 10),
    optionally watches its orders, and then never reads again."""
    host, port = h.ws_url.split("//")[1].split("/")[0].split(":")
    sock = small_socket()
    sock.connect((host, int(port)))
    sock.setblocking(False)
    ws = await connect(h.ws_url, sock=sock, max_queue=1, open_timeout=5)
    await ws.send(orjson.dumps({"op": "auth", "id": 1, "token": h.token(user)}).decode())
    assert orjson.loads(await ws.recv())["op"] == "authed"
    await ws.send(orjson.dumps({"op": "subscribe", "id": 2, "markets": markets,
                                "depth": 10}).decode())
    if orders:
        await ws.send(orjson.dumps({"op": "orders", "id": 3}).decode())
    return ws


async def _read_all(ws, quiet_s: float = 1.0) -> tuple[list[dict], int | None]:
    """Read what the server still sends (until quiet or closed): (frames, close code)."""
    frames = []
    try:
        while True:
            async with asyncio.timeout(quiet_s):
                frames.append(orjson.loads(await ws.recv()))
    except TimeoutError:
        return frames, None
    except ConnectionClosed:
        return frames, ws.close_code


def _apply(book: dict, msg: dict) -> None:
    """Apply an image or delta to a client-side book {(market, sel, side): {price: size}}."""
    market = msg["market"]
    for sel in msg.get("selections", []):
        for side in ("to_back", "to_lay"):
            key = (market, sel["id"], side)
            if msg.get("img"):
                book[key] = {}
            for price, size in sel.get(side, []):
                if size == "0.00":
                    book.setdefault(key, {}).pop(price, None)
                else:
                    book.setdefault(key, {})[price] = size


def _assert_contiguous(frames: list[dict]) -> set[str]:
    """Per market, seq rises by one from frame to frame; returns the markets that got a fresh
    image after their first (a resync after dropped data)."""
    last: dict[str, int] = {}
    resynced = set()
    for f in frames:
        if f.get("op") != "mkt":
            continue
        market = f["market"]
        if market in last:
            assert f["seq"] == last[market] + 1, f"gap in {market}: {last[market]} -> {f['seq']}"
            if f.get("img"):
                resynced.add(market)
        last[market] = f["seq"]
    return resynced


@pytest.mark.slow
def test_clients_that_never_read_cannot_hurt_the_server_or_anyone_else(ws):
    """Two clients stop reading while 20 markets they subscribe to trade heavily: one only
    listens, the other keeps sending requests whose replies it never reads. (For the listener
    alone the server's kernel send buffer, autotuned up to tcp_wmem's max, absorbs minutes of
    this market data before the gateway's own queue fills, so only the talker overflows it
    within a test's time.) The server stays up and bounded, everyone else is served promptly
    with complete market data, the listener's data stays gap-free, the talker gets its market
    data dropped and is cut off (1008), and every order and wallet stays consistent."""
    async def scenario(h: Harness):
        trader = await h.trader()
        markets = list(await asyncio.gather(*(h.market(trader) for _ in range(20))))
        deposit = "5000.00"
        bots = list(await asyncio.gather(*(h.bettor(f"bot{i}", deposit) for i in range(16))))
        listener_user = await h.funded_user("silent-listener", deposit)
        talker_user = await h.funded_user("silent-talker", deposit)
        for user in (listener_user, talker_user):  # resting lays that the bots will hit
            c = await h.client(user)
            for market in markets[:5]:
                await placed(c, market, side="lay", price="2.00", size="100.00",
                             persistence="persist")
        listener = await _non_reader(h, listener_user, markets, orders=False)
        talker = await _non_reader(h, talker_user, markets, orders=True)

        reader = await h.client(unique("reader"))  # a normal subscriber
        await reader.ok({"op": "subscribe", "markets": markets, "depth": 10}, "subscribed")
        canary = await h.bettor("canary")  # keeps asking for its wallet
        await asyncio.sleep(0.3)
        drops_before = await _metric(h, "backlay_ws_dropped_total")
        rss_before = h.server.rss_kb()

        stop = time.monotonic() + 4.0
        rng = random.Random(7)
        prices = ["1.96", "1.98", "2.00", "2.02", "2.04"]

        async def bot(client):
            while time.monotonic() < stop:
                reply = await client.rpc(place(rng.choice(markets), rng.choice(("s1", "s2")),
                                               rng.choice(("back", "lay")), rng.choice(prices),
                                               f"{rng.randint(1, 5)}.00"))
                assert reply["op"] == "placed" or reply.get("code") == "RATE_LIMITED", reply
                await asyncio.sleep(1 / 15)  # under the engine's 20 orders/user/s

        async def talk():
            """Re-subscribe (20 images per request) under the rate limit, never reading."""
            frame = orjson.dumps({"op": "subscribe", "markets": markets, "depth": 10}).decode()
            try:
                while time.monotonic() < stop:
                    await talker.send(frame)
                    talked.append(1)
                    await asyncio.sleep(1.5 / MESSAGES_PER_S_MAX)
            except ConnectionClosed:
                pass

        talked: list[int] = []
        latencies = []

        async def probe():
            while time.monotonic() < stop:
                started = time.monotonic()
                await canary.ok({"op": "wallet"}, "wallet")
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)

        await asyncio.gather(*(bot(b) for b in bots), talk(), probe())
        await asyncio.sleep(0.3)
        rss_after = h.server.rss_kb()
        drops = await _metric(h, "backlay_ws_dropped_total") - drops_before

        # the server is up, bounded, and served everyone else promptly
        assert h.server.alive()
        assert len(latencies) > 20 and max(latencies) < 1.0, max(latencies)
        assert rss_after - rss_before < 200 * 1024, (rss_before, rss_after)

        # the reader's deltas were complete: its book equals a fresh image of every market
        frames = reader.take_all("mkt")
        assert not _assert_contiguous(frames)  # it kept up: never needed a fresh image
        book: dict = {}
        for msg in frames:
            _apply(book, msg)
        check = await h.client(unique("check"))
        await check.ok({"op": "subscribe", "markets": markets, "depth": 10}, "subscribed")
        fresh: dict = {}
        traded: dict[tuple[str, str], str] = {}
        for _ in markets:
            image = await check.take("mkt")
            _apply(fresh, image)
            traded.update({(image["market"], s["id"]): s["traded"] for s in image["selections"]})
        assert {k: v for k, v in book.items() if v} == {k: v for k, v in fresh.items() if v}

        # the talker overflowed its bounded send queue: market data dropped, then cut off
        talker_frames, talker_code = await _read_all(talker)
        assert drops > 0
        assert talker_code == 1008, talker_code
        # not everything it asked for reached it: the rest was never queued
        answered = sum(1 for f in talker_frames if f["op"] == "subscribed")
        assert answered < len(talked), (answered, len(talked))
        # the listener (market data only) was never cut off and its data has no gaps
        listener_frames, listener_code = await _read_all(listener)
        assert listener_code is None
        _assert_contiguous(listener_frames)
        await listener.close()

        # nothing was lost: every order adds up, matched backs equal matched lays equal the
        # traded volume, and voiding every market returns every deposit
        owners = [*bots, await h.client(listener_user), await h.client(talker_user)]
        matched: dict[tuple[str, str, str], int] = {}
        for c in owners:
            for o in (await c.ok({"op": "orders"}, "orders"))["orders"]:
                key = (o["market"], o["selection"], o["side"])
                matched[key] = matched.get(key, 0) + minor(o["matched"])
                assert minor(o["size"]) == (minor(o["matched"]) + minor(o["remaining"])
                                            + minor(o["cancelled"]) + minor(o["lapsed"])), o
        for market in markets:
            for sel in ("s1", "s2"):
                backs = matched.get((market, sel, "back"), 0)
                lays = matched.get((market, sel, "lay"), 0)
                assert backs == lays == minor(traded[(market, sel)]), (market, sel, backs, lays)
        for market in markets:
            await trader.ok({"op": "market.void", "market": market}, "market")
        for c in owners:
            wallet = await c.ok({"op": "wallet"}, "wallet")
            assert (wallet["balance"], wallet["held"]) == (deposit, "0.00"), (c.user, wallet)
    ws(scenario, timeout_s=60)

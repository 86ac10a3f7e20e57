"""How the trading socket reads requests (gateway/connection.py, on either library): every
message is handled as it is parsed, fragmented ones once whole, requests that arrived with the
auth frame first, and a pipelined burst past the in-flight bound is answered whole and in
order (reading pauses meanwhile; nothing is dropped)."""

import asyncio

import orjson
import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from gateway.session import INFLIGHT_MAX  # noqa: E402
from tests.ws_fixtures import Harness  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def test_a_fragmented_request_is_answered_once_whole(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("fragments", "10.00")
        alice._sent.add("frag")
        alice._waiting["frag"] = asyncio.get_running_loop().create_future()
        await alice.ws.send(['{"op":"wal', 'let","id":', '"frag"}'])  # three frames, one message
        reply = await alice.reply("frag")
        assert reply["op"] == "wallet" and reply["balance"] == "10.00"
    ws(scenario)


def test_requests_sent_with_the_auth_frame_are_answered_in_order(ws):
    async def scenario(h: Harness):
        user = await h.funded_user("eager", "50.00")
        client = await h.connect()
        frames = [{"op": "auth", "id": "auth", "token": h.token(user, "bettor")},
                  {"op": "wallet", "id": "w1"}, {"op": "orders", "id": "o1"},
                  {"op": "wallet", "id": "w2"}]
        for f in frames:
            client._sent.add(f["id"])
            client._waiting[f["id"]] = asyncio.get_running_loop().create_future()
        # one write: the server reads them in one go, auth and all
        client.ws.transport.write(b"".join(
            client.ws.protocol.send_text(orjson.dumps(f)) or b"".join(
                client.ws.protocol.data_to_send()) for f in frames))
        replies = [await client.reply(f["id"]) for f in frames]
        assert [r["op"] for r in replies] == ["authed", "wallet", "orders", "wallet"]
        ids = [f.get("id") for f in client.frames]
        assert ids == ["auth", "w1", "o1", "w2"]
    ws(scenario)


def test_a_burst_past_the_in_flight_bound_is_answered_whole_and_in_order(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("burst", "10.00")
        count = INFLIGHT_MAX + 26  # within the rate limit's burst, past the in-flight bound
        # cancels of orders that do not exist: each one a journaled command on the order path,
        # answered UNKNOWN_ORDER, with no velocity limit to hit
        rids = [await alice.send({"op": "cancel", "order": f"o-none-{i}"}) for i in range(count)]
        replies = [await alice.reply(rid) for rid in rids]
        assert [r.get("code") for r in replies] == ["UNKNOWN_ORDER"] * count
        assert all(f"o-none-{i}" in r["message"] for i, r in enumerate(replies))
        answered = [f["id"] for f in alice.frames if f.get("id") in set(rids)]
        assert answered == rids
    ws(scenario)

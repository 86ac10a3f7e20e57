"""The operator's live exposure channel over the WebSocket (PROTOCOL.md "Operator ops")."""

import asyncio
import time

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import EXPOSURE_PUSH_MS, Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def _market(push: dict, market: str) -> dict | None:
    return next((m for m in push["markets"] if m["market"] == market), None)


async def _operator(h: Harness, *roles: str):
    op = await h.client(unique("ops"), *(roles or ("operator",)))
    reply = await op.rpc({"op": "subscribe", "id": "x", "channel": "exposure"})
    assert reply == {"op": "subscribed", "id": "x", "channel": "exposure"}
    snapshot = await op.take("exposure")  # the current picture right away
    return op, snapshot


def test_subscribe_exposure_sends_the_current_picture(ws):
    async def scenario(h: Harness):
        market = await h.market()
        bettor = await h.bettor("b")
        await placed(bettor, market, price="3.00", size="10.00")
        op, snapshot = await _operator(h)
        entry = _market(snapshot, market)
        assert set(entry) >= {"market", "house_liability", "selections", "top_users"}
        assert [s["id"] for s in entry["selections"]] == ["s1", "s2"]
        assert all(set(s) == {"id", "house_pnl"} for s in entry["selections"])
        assert entry["top_users"] == [{"user": bettor.user, "exposure": "10.00"}]
        assert entry["house_liability"] == "0.00"
    ws(scenario)


def test_exposure_is_pushed_within_half_a_second_of_a_bet(ws):
    async def scenario(h: Harness):
        market = await h.market()
        big = await h.bettor("big")
        small = await h.bettor("small")
        op, _ = await _operator(h)
        await placed(small, market, price="3.00", size="5.00")
        await placed(big, market, side="lay", price="1.50", size="100.00")  # liability 50.00
        placed_at = time.monotonic()
        push = await op.take("exposure", lambda p: (_market(p, market) or {}).get("top_users")
                             == [{"user": big.user, "exposure": "50.00"},
                                 {"user": small.user, "exposure": "5.00"}], timeout=3)
        assert time.monotonic() - placed_at < 0.5 + EXPOSURE_PUSH_MS / 1000
        assert "id" not in push
    ws(scenario)


def test_exposure_shows_the_house_position_after_bettors_hit_its_quotes(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.ok({"op": "prices.set", "market": market,
                         "prices": {"s1": "2.00", "s2": "2.00"}, "margin": "0"}, "market")
        op, snapshot = await _operator(h)
        assert _market(snapshot, market)["house_liability"] != "0.00"  # resting quotes
        bettor = await h.bettor("b")
        await placed(bettor, market, price="2.00", size="10.00")
        push = await op.take("exposure", lambda p: any(
            s["house_pnl"] != "0.00" for s in (_market(p, market) or {}).get("selections", [])))
        pnl = {s["id"]: s["house_pnl"] for s in _market(push, market)["selections"]}
        assert pnl == {"s1": "-10.00", "s2": "10.00"}
    ws(scenario)


def test_exposure_pushes_come_at_most_every_interval(ws):
    async def scenario(h: Harness):
        market = await h.market()
        bettors = [await h.bettor(f"b{i}", "10000.00") for i in range(3)]
        op, _ = await _operator(h)
        start = time.monotonic()
        bets = 0
        while time.monotonic() - start < 1.5:  # something changes every ~30 ms
            await placed(bettors[bets % 3], market, price="3.00", size="1.00")
            bets += 1
            await asyncio.sleep(0.03)
        await op.settle(EXPOSURE_PUSH_MS / 1000 + 0.1)
        times = [t for f, t in zip(op.frames, op.arrivals)
                 if f["op"] == "exposure" and "id" not in f]
        assert 3 <= len(times) <= 1.6 / (EXPOSURE_PUSH_MS / 1000) + 2 < bets, (len(times), bets)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) > 0.6 * EXPOSURE_PUSH_MS / 1000, gaps
    ws(scenario)


def test_exposure_is_not_pushed_while_nothing_changes(ws):
    async def scenario(h: Harness):
        op, _ = await _operator(h)
        await op.settle(0.4)  # let pushes for earlier activity through
        assert await op.settle(3 * EXPOSURE_PUSH_MS / 1000, "exposure") == []
    ws(scenario)


def test_unsubscribe_exposure_stops_the_pushes(ws):
    async def scenario(h: Harness):
        market = await h.market()
        bettor = await h.bettor("b")
        op, _ = await _operator(h)
        reply = await op.rpc({"op": "unsubscribe", "id": "u", "channel": "exposure"})
        assert reply == {"op": "unsubscribed", "id": "u", "channel": "exposure"}
        await op.settle(0.3)
        await placed(bettor, market, price="3.00")
        assert await op.settle(2 * EXPOSURE_PUSH_MS / 1000 + 0.2, "exposure") == []
    ws(scenario)


def test_admin_may_subscribe_to_exposure(ws):
    async def scenario(h: Harness):
        _, snapshot = await _operator(h, "admin")
        assert isinstance(snapshot["markets"], list)
    ws(scenario)


@pytest.mark.parametrize("role", ["bettor", "trader"])
def test_exposure_channel_without_the_operator_role_is_forbidden(ws, role):
    async def scenario(h: Harness):
        market = await h.market()
        client = await h.client(unique("u"), role)
        await client.error({"op": "subscribe", "channel": "exposure"}, "FORBIDDEN")
        bettor = await h.bettor("b")
        await placed(bettor, market, price="3.00")
        assert await client.settle(2 * EXPOSURE_PUSH_MS / 1000 + 0.2, "exposure") == []
    ws(scenario)

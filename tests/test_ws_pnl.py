"""A bettor's own P&L per selection over the WebSocket: `pnl` replies with what they win or
lose on each outcome (matched, and with the worst case of their unmatched orders), then pushes
it whenever one of their fills or order changes moves it."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def _sel(sid: str, if_win: str, with_unmatched: str | None = None) -> dict:
    return {"id": sid, "if_win": if_win, "if_win_with_unmatched": with_unmatched or if_win}


def test_pnl_shows_matched_and_with_unmatched_outcomes_per_selection(ws):
    async def scenario(h: Harness):
        market = await h.market(selections=("s1", "s2", "s3"))
        bob, alice = await h.bettor("bob"), await h.bettor("alice")
        await placed(bob, market, side="lay", price="3.00", size="10.00")
        await placed(alice, market, side="back", price="3.00", size="10.00")
        await placed(alice, market, selection="s2", side="lay", price="2.50", size="10.00")
        reply = await alice.ok({"op": "pnl", "id": "p", "market": market}, "pnl")
        assert reply == {"op": "pnl", "id": "p", "market": market, "selections": [
            _sel("s1", "20.00"), _sel("s2", "-10.00", "-25.00"), _sel("s3", "-10.00")]}
        fresh = await h.bettor("fresh")
        flat = await fresh.ok({"op": "pnl", "market": market}, "pnl")
        assert flat["selections"] == [_sel(s, "0.00") for s in ("s1", "s2", "s3")]
    ws(scenario)


def test_pnl_is_pushed_when_a_resting_order_is_matched_and_when_it_is_cancelled(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice, bob = await h.bettor("alice"), await h.bettor("bob")
        await alice.ok({"op": "pnl", "market": market}, "pnl")
        order = await placed(alice, market, side="back", price="2.00", size="10.00")
        rested = await alice.take("pnl")
        assert "id" not in rested
        assert rested == {"op": "pnl", "market": market, "selections": [
            _sel("s1", "0.00"), _sel("s2", "0.00", "-10.00")]}  # unmatched: its worst case
        await placed(bob, market, side="lay", price="2.00", size="4.00")  # bob takes 4.00
        matched = await alice.take("pnl")
        assert matched["selections"] == [_sel("s1", "4.00"),
                                         _sel("s2", "-4.00", "-10.00")]
        await alice.ok({"op": "cancel", "order": order["order"]}, "cancelled")
        cancelled = await alice.take("pnl")
        assert cancelled["selections"] == [_sel("s1", "4.00"), _sel("s2", "-4.00")]
        assert bob.take_all("pnl") == [], "bob never asked"
    ws(scenario)


def test_the_push_follows_the_reply_of_the_command_that_caused_it(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await alice.ok({"op": "pnl", "market": market}, "pnl")
        rid = await alice.send({"op": "place", "market": market, "selection": "s1",
                                "side": "back", "price": "2.00", "size": "10.00"})
        await alice.reply(rid)
        await alice.take("pnl")
        ops = [f.get("op") for f in alice.frames]
        assert ops.index("placed") < len(ops) - 1 - ops[::-1].index("pnl")
    ws(scenario)


def test_others_trading_the_market_pushes_nothing_and_watch_false_stops_the_pushes(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice, bob, carol = (await h.bettor("alice"), await h.bettor("bob"),
                             await h.bettor("carol"))
        await alice.ok({"op": "pnl", "market": market}, "pnl")
        await placed(bob, market, side="lay", price="2.00", size="5.00")
        await placed(carol, market, side="back", price="2.00", size="5.00")
        assert await alice.settle(0.3, "pnl") == []
        await placed(alice, market, side="back", price="2.00", size="5.00")
        await alice.take("pnl")
        stopped = await alice.ok({"op": "pnl", "market": market, "watch": False}, "pnl")
        assert stopped["selections"][1]["if_win_with_unmatched"] == "-5.00"
        await placed(alice, market, side="back", price="2.00", size="5.00")
        assert await alice.settle(0.3, "pnl") == []
    ws(scenario)


def test_pnl_refuses_unknown_pool_settled_markets_and_bad_requests(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        alice = await h.bettor("alice")
        await alice.error({"op": "pnl", "market": unique("m")}, "UNKNOWN_MARKET")
        await alice.error({"op": "pnl"}, "BAD_REQUEST")
        await alice.error({"op": "pnl", "market": "m1", "watch": "no"}, "BAD_REQUEST")
        await alice.error({"op": "pnl", "market": "m1", "user": "bob"}, "BAD_REQUEST")
        pool = await h.market(type="pool")
        await alice.error({"op": "pnl", "market": pool}, "BAD_REQUEST")
        market = await h.market()
        await alice.ok({"op": "pnl", "market": market}, "pnl")
        await trader.ok({"op": "market.settle", "market": market, "winners": ["s1"]})
        await alice.error({"op": "pnl", "market": market}, "MARKET_NOT_OPEN")
    ws(scenario)

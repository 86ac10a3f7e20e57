"""Cash out over the WebSocket: `cashout.quote` shows the orders that level a bettor's P&L at
the current prices and what they lock in; `cashout` executes them as FOK orders in one step of
the exchange, refusing (and changing nothing) when prices moved beyond the bettor's tolerance;
`fraction` cashes out part of the position."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


async def _winning_back(h: Harness, lay_at: str = "2.00"):
    """alice backed s1 at 3.00 for 10.00; s1 is now `lay_at` to lay (carol's resting back)."""
    market = await h.market(selections=("s1", "s2", "s3"))
    bob, carol, alice = await h.bettor("bob"), await h.bettor("carol"), await h.bettor("alice")
    await placed(bob, market, side="lay", price="3.00", size="10.00")
    await placed(alice, market, side="back", price="3.00", size="10.00")
    back = await placed(carol, market, side="back", price=lay_at, size="50.00")
    return market, alice, carol, back


def _level(amount: str) -> list[dict]:
    return [{"id": s, "if_win": amount, "if_win_with_unmatched": amount}
            for s in ("s1", "s2", "s3")]


def test_a_quote_shows_the_orders_and_the_pnl_they_lock_in_and_changes_nothing(ws):
    async def scenario(h: Harness):
        market, alice, _, _ = await _winning_back(h)
        wallet = await alice.ok({"op": "wallet"}, "wallet")
        quote = await alice.ok({"op": "cashout.quote", "id": "q", "market": market},
                               "cashout.quote")
        assert quote == {
            "op": "cashout.quote", "id": "q", "market": market, "fraction": "1",
            "orders": [{"selection": "s1", "side": "lay", "price": "2.00", "size": "15.00",
                        "fills": [["2.00", "15.00"]]}],
            "cancels": [],
            "selections": [{"id": "s1", "if_win": "20.00", "if_win_after": "5.00"},
                           {"id": "s2", "if_win": "-10.00", "if_win_after": "5.00"},
                           {"id": "s3", "if_win": "-10.00", "if_win_after": "5.00"}],
            "locked": "5.00"}
        after = await alice.ok({"op": "wallet"}, "wallet")
        assert {k: v for k, v in after.items() if k != "id"} == {
            k: v for k, v in wallet.items() if k != "id"}
    ws(scenario)


def test_cashing_out_leaves_exactly_the_quoted_pnl_on_every_outcome(ws):
    async def scenario(h: Harness):
        market, alice, _, _ = await _winning_back(h)
        quote = await alice.ok({"op": "cashout.quote", "market": market}, "cashout.quote")
        prices = {o["selection"]: o["price"] for o in quote["orders"]}
        done = await alice.ok({"op": "cashout", "id": "c", "market": market, "prices": prices},
                              "cashed_out")
        assert done["id"] == "c" and done["cancelled"] == [] and done["refused"] == []
        (order,) = done["orders"]
        assert (order["selection"], order["side"], order["price"], order["matched"],
                order["status"]) == ("s1", "lay", "2.00", "15.00", "EXECUTION_COMPLETE")
        assert done["selections"] == _level("5.00") and done["locked"] == "5.00"
        assert [s["if_win_after"] for s in quote["selections"]] == ["5.00"] * 3
        pnl = await alice.ok({"op": "pnl", "market": market, "watch": False}, "pnl")
        assert pnl["selections"] == done["selections"]
        wallet = await alice.ok({"op": "wallet"}, "wallet")
        assert wallet["held"] == "0.00"  # 5.00 whatever wins: nothing left at risk
    ws(scenario)


def test_a_cash_out_whose_price_moved_beyond_the_tolerance_is_refused_and_changes_nothing(ws):
    async def scenario(h: Harness):
        market, alice, carol, back = await _winning_back(h)
        quote = await alice.ok({"op": "cashout.quote", "market": market}, "cashout.quote")
        prices = {o["selection"]: o["price"] for o in quote["orders"]}  # lay s1 at 2.00
        await carol.ok({"op": "cancel", "order": back["order"]}, "cancelled")
        await placed(carol, market, side="back", price="2.10", size="50.00")  # 5 ticks worse
        own = await placed(alice, market, selection="s2", side="back", price="5.00",
                           size="1.00")
        before = await alice.ok({"op": "pnl", "market": market, "watch": False})
        moved = await alice.error({"op": "cashout", "market": market, "prices": prices,
                                   "tolerance": 4}, "CASHOUT_MOVED")
        assert "5 ticks worse" in moved["message"]
        after = await alice.ok({"op": "pnl", "market": market, "watch": False})
        assert after["selections"] == before["selections"]
        assert (await alice.ok({"op": "orders"}))["orders"][-1]["remaining"] == "1.00"
        done = await alice.ok({"op": "cashout", "market": market, "prices": prices,
                               "tolerance": 5}, "cashed_out")
        assert [o["order"] for o in done["cancelled"]] == [own["order"]]
        assert done["orders"][0]["price"] == "2.10"
        assert len({s["if_win"] for s in done["selections"]}) <= 2  # level to the cent or two
    ws(scenario)


def test_a_better_price_than_quoted_is_always_taken(ws):
    async def scenario(h: Harness):
        market, alice, carol, _ = await _winning_back(h)
        await placed(carol, market, side="back", price="1.90", size="50.00")  # better to lay
        done = await alice.ok({"op": "cashout", "market": market, "prices": {"s1": "2.00"}},
                              "cashed_out")
        assert done["orders"][0]["price"] == "1.90"
    ws(scenario)


def test_a_half_cash_out_trades_half_and_leaves_the_rest_riding(ws):
    async def scenario(h: Harness):
        market, alice, _, _ = await _winning_back(h)
        quote = await alice.ok({"op": "cashout.quote", "market": market, "fraction": "0.5"})
        assert quote["fraction"] == "0.5" and quote["orders"][0]["size"] == "7.50"
        done = await alice.ok({"op": "cashout", "market": market, "fraction": "1/2"},
                              "cashed_out")
        assert [s["if_win"] for s in done["selections"]] == ["12.50", "-2.50", "-2.50"]
        assert [s["if_win_after"] for s in quote["selections"]] == ["12.50", "-2.50", "-2.50"]
    ws(scenario)


def test_bad_cash_outs_get_stable_codes(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market, alice, _, _ = await _winning_back(h)
        for op in ("cashout.quote", "cashout"):
            await alice.error({"op": op, "market": unique("m")}, "UNKNOWN_MARKET")
            await alice.error({"op": op, "market": market, "fraction": "0"}, "BAD_REQUEST")
            await alice.error({"op": op, "market": market, "fraction": "1.5"}, "BAD_REQUEST")
            await alice.error({"op": op, "market": market, "fraction": 1}, "BAD_REQUEST")
        await alice.error({"op": "cashout", "market": market, "tolerance": -1}, "BAD_REQUEST")
        await alice.error({"op": "cashout", "market": market, "prices": {"s1": "2.01"}},
                          "INVALID_ODDS")
        await alice.error({"op": "cashout", "market": market, "prices": {"s1": "1.9"},
                           "tolerance": 9}, "CASHOUT_MOVED")  # lay at 2.00: 10 ticks worse
        pool = await h.market(type="pool")
        await alice.error({"op": "cashout.quote", "market": pool}, "BAD_REQUEST")
        fresh = await h.bettor("fresh")
        await fresh.error({"op": "cashout", "market": market}, "BAD_REQUEST")  # no position
        await trader.ok({"op": "market.status", "market": market, "status": "suspended"})
        await alice.error({"op": "cashout.quote", "market": market}, "MARKET_SUSPENDED")
        await alice.error({"op": "cashout", "market": market}, "MARKET_SUSPENDED")
    ws(scenario)

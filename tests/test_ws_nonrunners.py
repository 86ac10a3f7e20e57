"""Non-runners over the WebSocket, end to end against a real server: a trader's
`selection.remove` lapses the selection's orders, voids its bets and reprices the earlier bets
on the others; bettors see it in their order, wallet, P&L and market data pushes and in the
catalogue, can no longer bet on it, and settlement pays the reduced odds. Bad removals get a
stable code and change nothing."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def _removal(market: str, selection: str, factor: str) -> dict:
    return {"op": "selection.remove", "market": market, "selection": selection,
            "reduction_factor": factor}


def test_a_non_runner_voids_its_bets_reprices_the_others_and_everyone_is_told(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, selections=("s1", "s2", "s3"))
        layer, backer = await h.bettor("layer"), await h.bettor("backer")
        watcher = await h.client(unique("watcher"))
        await watcher.ok({"op": "subscribe", "markets": [market]}, "subscribed")
        await watcher.take("mkt")
        await watcher.ok({"op": "subscribe", "channel": "catalogue"}, "subscribed")
        await placed(layer, market, "s1", "lay", "8.00", "10.00")
        back = await placed(backer, market, "s1", "back", "8.00", "10.00")  # wins 70.00
        await placed(layer, market, "s3", "lay", "3.00", "5.00")
        await placed(backer, market, "s3", "back", "3.00", "5.00")  # void once s3 is removed
        resting = await placed(backer, market, "s3", "back", "4.00", "2.00")  # lapses
        kept = await placed(backer, market, "s2", "back", "5.00", "1.00")  # a back: stays
        await backer.ok({"op": "orders"}, "orders")
        await backer.ok({"op": "pnl", "market": market}, "pnl")
        await layer.ok({"op": "orders"}, "orders")
        # the layer's worst case: s1 wins, 70.00 lost less the 5.00 won on s3
        assert (await layer.ok({"op": "wallet"}))["held"] == "65.00"

        reply = await trader.ok(_removal(market, "s3", "0.25"), "market")
        (s3,) = [s for s in reply["market"]["selections"] if s["id"] == "s3"]
        assert s3["removed"]["reduction_factor"] == "0.25" and s3["removed"]["ts"] > 0
        assert all(s["removed"] is None for s in reply["market"]["selections"] if s is not s3)

        # the lapsed order and the repriced one, pushed to their owner
        lapsed = await backer.take("ord", lambda f: f["order"]["order"] == resting["order"]
                                   and f["order"]["lapsed"] == "2.00")
        assert lapsed["order"]["status"] == "EXECUTION_COMPLETE"
        repriced = await backer.take("ord", lambda f: f["order"]["order"] == back["order"]
                                     and f["order"]["avg_price_matched"] == "6.00")
        assert repriced["order"]["matched"] == "10.00"
        # 8.00 less 25% is 6.00: the layer's liability on s1 is 50.00 now, the s3 bet is void
        await layer.take("wallet", lambda f: f["held"] == "50.00")
        pnl = await backer.take("pnl", lambda f: len(f["selections"]) == 2)
        assert pnl["selections"] == [
            {"id": "s1", "if_win": "50.00", "if_win_with_unmatched": "49.00"},
            {"id": "s2", "if_win": "-10.00", "if_win_with_unmatched": "-10.00"}]
        delta = await watcher.take("mkt", lambda f: any(
            s.get("removed") for s in f.get("selections", [])))
        (change,) = [s for s in delta["selections"] if s["id"] == "s3"]
        assert change["removed"]["reduction_factor"] == "0.25"
        listed = await watcher.take("catalogue", lambda f: any(
            m["market"] == market for m in f["markets"]))
        (entry,) = [m for m in listed["markets"] if m["market"] == market]
        assert [s["removed"] is not None for s in entry["selections"]] == [False, False, True]

        # a removed selection takes no orders, and cannot win
        await backer.error({"op": "place", "market": market, "selection": "s3", "side": "back",
                            "price": "3.00", "size": "1.00"}, "SELECTION_REMOVED")
        await backer.error({"op": "preview", "market": market, "selection": "s3",
                            "side": "lay", "price": "3.00", "size": "1.00"},
                           "SELECTION_REMOVED")
        await trader.error({"op": "market.settle", "market": market, "winners": ["s3"]},
                           "SELECTION_REMOVED")
        orders = (await backer.ok({"op": "orders"}, "orders"))["orders"]
        assert [o["remaining"] for o in orders if o["order"] == kept["order"]] == ["1.00"]

        await trader.ok({"op": "market.settle", "market": market, "winners": ["s1"]}, "market")
        # 50.00 won at the reduced odds, less 5% commission; the s3 bet void, the s2 back lapsed
        await backer.take("wallet", lambda f: f["balance"] == "1047.50" and f["held"] == "0.00")
        await layer.take("wallet", lambda f: f["balance"] == "950.00" and f["held"] == "0.00")
    ws(scenario)


def test_a_material_factor_lapses_the_lays_on_the_others_and_a_small_one_does_not(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, selections=("s1", "s2", "s3", "s4"))
        layer = await h.bettor("layer")
        lay = await placed(layer, market, "s1", "lay", "3.00", "10.00")
        await trader.ok(_removal(market, "s4", "0.02"), "market")
        orders = (await layer.ok({"op": "orders"}, "orders"))["orders"]
        assert [o["remaining"] for o in orders if o["order"] == lay["order"]] == ["10.00"]
        await trader.ok(_removal(market, "s3", "0.025"), "market")
        orders = (await layer.ok({"op": "orders"}, "orders"))["orders"]
        assert [(o["lapsed"], o["status"]) for o in orders if o["order"] == lay["order"]] == [
            ("10.00", "EXECUTION_COMPLETE")]
    ws(scenario)


def test_bad_removals_get_stable_codes_and_change_nothing(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, selections=("s1", "s2"))
        pool = await h.market(trader, selections=("a", "b"), type="pool")
        bettor = await h.bettor("bettor")
        before = await trader.ok({"op": "limits.set", "market": market}, "market")
        await bettor.error(_removal(market, "s2", "0.1"), "FORBIDDEN")
        await trader.error(_removal(market, "s2", "1"), "BAD_REQUEST")  # a factor below 1
        await trader.error(_removal(market, "s2", "0.12345"), "BAD_REQUEST")  # 4 decimals
        await trader.error(_removal(market, "s2", 0.1), "BAD_REQUEST")  # a string, not a float
        await trader.error({"op": "selection.remove", "market": market, "selection": "s2"},
                           "BAD_REQUEST")  # the factor is required: 0 is a choice too
        await trader.error(_removal(unique("m"), "s2", "0.1"), "UNKNOWN_MARKET")
        await trader.error(_removal(market, "s9", "0.1"), "UNKNOWN_SELECTION")
        await trader.error(_removal(pool, "a", "0.1"), "BAD_REQUEST")
        after = await trader.ok({"op": "limits.set", "market": market}, "market")
        assert after["market"] == before["market"]
        await trader.ok(_removal(market, "s2", "0"), "market")
        await trader.error(_removal(market, "s2", "0"), "SELECTION_REMOVED")
        await trader.error(_removal(market, "s1", "0"), "BAD_REQUEST")  # the last runner
        await trader.ok({"op": "market.void", "market": market}, "market")
        await trader.error(_removal(market, "s1", "0"), "MARKET_NOT_OPEN")
    ws(scenario)


def test_the_catalogue_shows_start_times_filters_and_sorts_by_them(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        event = unique("e")
        late = await h.market(trader, event=event, start_ts=1_767_232_800_000)
        untimed = await h.market(trader, event=event)
        early = await h.market(trader, event=event, start_ts=1_767_225_600_000)
        alice = await h.bettor("alice")

        async def listing(**more) -> list[tuple[str, int | None]]:
            reply = await alice.ok({"op": "catalogue", "event": event, **more}, "catalogue")
            return [(m["market"], m["start_ts"]) for m in reply["markets"]]

        starts = {late: 1_767_232_800_000, untimed: None, early: 1_767_225_600_000}
        assert await listing() == [(m, starts[m]) for m in h.listing_order([late, untimed,
                                                                            early])]
        assert await listing(sort="start") == [(early, 1_767_225_600_000),
                                               (late, 1_767_232_800_000), (untimed, None)]
        assert await listing(start_from=1_767_225_600_001) == [(late, 1_767_232_800_000)]
        assert await listing(start_to=1_767_232_800_000) == [(early, 1_767_225_600_000)]
        page = await alice.ok({"op": "catalogue", "event": event, "sort": "start", "limit": 1,
                               "after": early}, "catalogue")
        assert [m["market"] for m in page["markets"]] == [late] and page["next"] == late
        await alice.error({"op": "catalogue", "start_from": -1}, "BAD_REQUEST")
        await alice.error({"op": "catalogue", "sort": "name"}, "BAD_REQUEST")
        await trader.error({"op": "market.create", "market": unique("m"), "event": event,
                            "name": "n", "selections": [{"id": "a", "name": "A"}],
                            "start_ts": "2026-01-01"}, "BAD_REQUEST")
    ws(scenario)

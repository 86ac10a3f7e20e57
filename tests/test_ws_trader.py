"""Trader ops over the WebSocket (PROTOCOL.md "Trader ops"): market.create, market.status,
prices.set, limits.set (market and user), market.settle, market.void; and FORBIDDEN for
everyone without the trader (or admin) role."""

import asyncio
import time

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, place, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


async def _wallet(client) -> tuple[str, str]:
    reply = await client.ok({"op": "wallet"}, "wallet")
    return reply["balance"], reply["held"]


async def _image(h: Harness, market: str, depth: int = 3) -> dict:
    watcher = await h.client(unique("watcher"))
    await watcher.ok({"op": "subscribe", "markets": [market], "depth": depth}, "subscribed")
    return await watcher.take("mkt")


def test_market_create_replies_with_an_inactive_market(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market, event = unique("m"), unique("e")
        reply = await trader.rpc({"op": "market.create", "id": "mc", "market": market,
                                  "event": event, "name": "Match Odds", "type": "exchange",
                                  "currency": "BDT",
                                  "selections": [{"id": "home", "name": "Home"},
                                                 {"id": "away", "name": "Away"}]})
        assert reply["op"] == "market" and reply["id"] == "mc"
        assert reply["market"] == {
            "market": market, "event": event, "name": "Match Odds", "type": "exchange",
            "currency": "BDT", "status": "INACTIVE", "in_play": False, "bet_delay_ms": 0,
            "start_ts": None,
            "selections": [
                {"id": "home", "name": "Home", "offered": None, "suspended": False,
                 "traded": "0.00", "removed": None},
                {"id": "away", "name": "Away", "offered": None, "suspended": False,
                 "traded": "0.00", "removed": None}],
            "limits": {"max_liability": None, "selection_max_liability": None,
                       "min_stake": None, "max_stake": None}}
        bettor = await h.bettor("b")
        await bettor.error(place(market, "home"), "MARKET_NOT_OPEN")
    ws(scenario)


def test_market_create_with_an_existing_id_is_bad_request(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.error({"op": "market.create", "market": market, "event": "e",
                            "name": "again", "selections": [{"id": "s1", "name": "S1"}]},
                           "BAD_REQUEST")
    ws(scenario)


def test_market_create_with_duplicate_selections_is_bad_request(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        await trader.error({"op": "market.create", "market": unique("m"), "event": "e",
                            "name": "dup", "selections": [{"id": "s1", "name": "A"},
                                                          {"id": "s1", "name": "B"}]},
                           "BAD_REQUEST")
    ws(scenario)


def test_market_status_open_lets_bettors_place(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, status=None)
        reply = await trader.ok({"op": "market.status", "market": market, "status": "open"},
                                "market")
        assert reply["market"]["status"] == "OPEN"
        bettor = await h.bettor("b")
        await placed(bettor, market)
    ws(scenario)


def test_market_status_suspended_refuses_new_orders_and_keeps_resting_ones(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b")
        resting = await placed(bettor, market, price="3.00")
        reply = await trader.ok({"op": "market.status", "market": market,
                                 "status": "suspended"}, "market")
        assert reply["market"]["status"] == "SUSPENDED"
        await bettor.error(place(market), "MARKET_SUSPENDED")
        orders = (await bettor.ok({"op": "orders"}, "orders"))["orders"]
        assert [(o["order"], o["remaining"]) for o in orders] == [(resting["order"], "10.00")]
        await trader.ok({"op": "market.status", "market": market, "status": "open"}, "market")
        await placed(bettor, market)
    ws(scenario)


def test_market_status_closed_lapses_resting_orders_and_refuses_new_ones(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b", "100.00")
        await placed(bettor, market, price="3.00", persistence="persist")
        await trader.ok({"op": "market.status", "market": market, "status": "closed"},
                        "market")
        (order,) = (await bettor.ok({"op": "orders"}, "orders"))["orders"]
        assert (order["lapsed"], order["remaining"]) == ("10.00", "0.00")
        assert await _wallet(bettor) == ("100.00", "0.00")
        await bettor.error(place(market), "MARKET_NOT_OPEN")
        await trader.error({"op": "market.status", "market": market, "status": "open"},
                           "MARKET_NOT_OPEN")
    ws(scenario)


def test_going_in_play_lapses_lapse_orders_and_keeps_persist_orders(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b", "100.00")
        await bettor.ok({"op": "orders"}, "orders")
        lapse = await placed(bettor, market, price="3.00", size="10.00")
        persist = await placed(bettor, market, price="3.05", size="5.00", persistence="persist")
        reply = await trader.ok({"op": "market.status", "market": market, "in_play": True,
                                 "bet_delay_ms": 0}, "market")
        assert reply["market"]["in_play"] is True
        push = await bettor.take("ord", lambda m: m["order"]["order"] == lapse["order"]
                                 and m["order"]["lapsed"] != "0.00")
        assert (push["order"]["lapsed"], push["order"]["remaining"],
                push["order"]["status"]) == ("10.00", "0.00", "EXECUTION_COMPLETE")
        orders = {o["order"]: o for o in (await bettor.ok({"op": "orders"}, "orders"))["orders"]}
        assert orders[persist["order"]]["remaining"] == "5.00"
        assert await _wallet(bettor) == ("100.00", "5.00")
        image = await _image(h, market)
        assert image["in_play"] is True
        assert image["selections"][0]["to_lay"] == [["3.05", "5.00"]]
    ws(scenario)


def test_in_play_bet_delay_holds_orders_before_they_reach_the_book(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        layer = await h.bettor("layer")
        backer = await h.bettor("backer")
        await placed(layer, market, side="lay", price="2.00", size="10.00",
                     persistence="persist")
        await trader.ok({"op": "market.status", "market": market, "in_play": True,
                         "bet_delay_ms": 500}, "market")
        preview = await backer.ok({"op": "preview", "market": market, "selection": "s1",
                                   "side": "back", "price": "2.00", "size": "4.00"}, "preview")
        assert preview["bet_delay_ms"] == 500
        await backer.ok({"op": "orders"}, "orders")
        sent = time.monotonic()
        order = await placed(backer, market, price="2.00", size="4.00")
        assert (order["matched"], order["remaining"], order["status"]) == (
            "0.00", "4.00", "EXECUTABLE")
        fill = await backer.take("fill", timeout=5)
        waited = time.monotonic() - sent
        assert fill["order"] == order["order"] and fill["size"] == "4.00"
        assert 0.4 <= waited < 3.0, waited
    ws(scenario)


def test_delayed_orders_are_cancelled_if_the_market_suspends_meanwhile(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        layer = await h.bettor("layer")
        backer = await h.bettor("backer", "100.00")
        await placed(layer, market, side="lay", price="2.00", size="10.00",
                     persistence="persist")
        await trader.ok({"op": "market.status", "market": market, "in_play": True,
                         "bet_delay_ms": 2000}, "market")
        order = await placed(backer, market, price="2.00", size="4.00")
        await trader.ok({"op": "market.status", "market": market, "status": "suspended"},
                        "market")
        (after,) = (await backer.ok({"op": "orders"}, "orders"))["orders"]
        assert (after["order"], after["matched"], after["cancelled"]) == (
            order["order"], "0.00", "4.00")
        assert await _wallet(backer) == ("100.00", "0.00")
    ws(scenario)


def test_a_market_cannot_leave_in_play(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.ok({"op": "market.status", "market": market, "in_play": True}, "market")
        await trader.error({"op": "market.status", "market": market, "in_play": False},
                           "BAD_REQUEST")
    ws(scenario)


def test_prices_set_posts_house_quotes_visible_in_the_image(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        reply = await trader.ok({"op": "prices.set", "market": market,
                                 "prices": {"s1": "2.10", "s2": "1.90"}, "margin": "0.05"},
                                "market")
        offered = {s["id"]: s["offered"] for s in reply["market"]["selections"]}
        assert all(offered.values())
        # the margin only shortens the odds
        assert float(offered["s1"]) < 2.10 and float(offered["s2"]) < 1.90
        image = await _image(h, market)
        for sel in image["selections"]:
            best = sel["to_back"][0]
            assert best[0] == offered[sel["id"]]  # the house lays at its offered odds
            assert float(best[1]) > 0
        # a bettor can back into the house quote
        bettor = await h.bettor("b")
        order = await placed(bettor, market, price=offered["s1"], size="10.00")
        assert order["matched"] == "10.00"
    ws(scenario)


def test_prices_set_must_price_every_selection(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.error({"op": "prices.set", "market": market, "prices": {"s1": "2.00"}},
                           "BAD_REQUEST")
        await trader.error({"op": "prices.set", "market": market,
                            "prices": {"s1": "2.00", "nope": "2.00"}}, "UNKNOWN_SELECTION")
    ws(scenario)


def test_limits_set_market_stakes_refuse_too_low_and_too_high(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        reply = await trader.ok({"op": "limits.set", "market": market, "min_stake": "2.00",
                                 "max_stake": "50.00", "max_liability": "500.00"}, "market")
        assert reply["market"]["limits"] == {"max_liability": "500.00",
                                             "selection_max_liability": None,
                                             "min_stake": "2.00", "max_stake": "50.00"}
        bettor = await h.bettor("b")
        await bettor.error(place(market, size="1.99"), "STAKE_TOO_LOW")
        await bettor.error(place(market, size="50.01"), "STAKE_TOO_HIGH")
        await placed(bettor, market, size="2.00")
        await placed(bettor, market, size="50.00")
    ws(scenario)


def test_limits_set_market_min_above_max_is_bad_request(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.error({"op": "limits.set", "market": market, "min_stake": "10.00",
                            "max_stake": "5.00"}, "BAD_REQUEST")
    ws(scenario)


def test_limits_set_needs_exactly_one_of_market_or_user(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.error({"op": "limits.set", "max_stake": "5.00"}, "BAD_REQUEST")
        await trader.error({"op": "limits.set", "market": market, "user": "u",
                            "max_stake": "5.00"}, "BAD_REQUEST")
        await trader.error({"op": "limits.set", "market": market, "daily_stake": "5.00"},
                           "BAD_REQUEST")
        await trader.error({"op": "limits.set", "user": "u", "min_stake": "5.00"},
                           "BAD_REQUEST")
    ws(scenario)


def test_limits_set_user_replies_limits_and_caps_the_stake(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b")
        reply = await trader.rpc({"op": "limits.set", "id": "ul", "user": bettor.user,
                                  "max_stake": "20.00"})
        assert reply == {"op": "limits", "id": "ul", "user": bettor.user,
                         "limits": {"max_stake": "20.00", "daily_stake": None,
                                    "weekly_stake": None, "max_exposure": None,
                                    "stake_factor": None}}
        await bettor.error(place(market, size="20.01"), "STAKE_TOO_HIGH")
        await placed(bettor, market, size="20.00")
    ws(scenario)


def test_limits_set_user_daily_stake_is_limit_exceeded(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b")
        await trader.ok({"op": "limits.set", "user": bettor.user, "daily_stake": "30.00"},
                        "limits")
        await placed(bettor, market, size="20.00")
        await bettor.error(place(market, size="10.01"), "LIMIT_EXCEEDED")
        await placed(bettor, market, size="10.00")
    ws(scenario)


def test_limits_set_user_max_exposure_is_limit_exceeded(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b")
        await trader.ok({"op": "limits.set", "user": bettor.user, "max_exposure": "15.00"},
                        "limits")
        await bettor.error(place(market, side="lay", price="3.00", size="10.00"),
                           "LIMIT_EXCEEDED")  # liability 20.00
        await placed(bettor, market, side="lay", price="2.50", size="10.00")  # 15.00
    ws(scenario)


def test_limits_set_user_stake_factor_scales_the_market_maximum(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        bettor = await h.bettor("b")
        await trader.ok({"op": "limits.set", "market": market, "max_stake": "40.00"}, "market")
        reply = await trader.ok({"op": "limits.set", "user": bettor.user,
                                 "stake_factor": "0.5"}, "limits")
        assert reply["limits"]["stake_factor"] == "0.5"
        await bettor.error(place(market, size="20.01"), "STAKE_TOO_HIGH")
        await placed(bettor, market, size="20.00")
    ws(scenario)


def test_house_at_its_liability_limit_refuses_with_liability_limit(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.ok({"op": "limits.set", "market": market, "max_liability": "10.00"},
                        "market")
        await trader.ok({"op": "prices.set", "market": market,
                         "prices": {"s1": "2.00", "s2": "2.00"}, "margin": "0"}, "market")
        bettor = await h.bettor("b")
        taken = await placed(bettor, market, price="1.01", size="100.00")
        assert taken["matched"] != "0.00"
        reply = await trader.ok({"op": "limits.set", "market": market, "min_stake": "0.01"},
                                "market")
        s1 = reply["market"]["selections"][0]
        assert s1["suspended"] is True and s1["offered"] is None
        await bettor.error(place(market, price="1.01", size="1.00"), "LIABILITY_LIMIT")
    ws(scenario)


def test_market_settle_pays_winners_less_commission_and_releases_holds(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        backer = await h.bettor("backer", "100.00")
        layer = await h.bettor("layer", "100.00")
        await placed(backer, market, side="back", price="2.00", size="10.00")
        await placed(layer, market, side="lay", price="2.00", size="10.00")
        await placed(backer, market, selection="s2", price="5.00", size="2.00")  # unmatched
        # worst case: s2 wins (-10.00 on s1; the s2 back can only gain)
        assert await _wallet(backer) == ("100.00", "10.00")
        reply = await trader.rpc({"op": "market.settle", "id": "st", "market": market,
                                  "winners": ["s1"]})
        assert reply["op"] == "market" and reply["id"] == "st"
        assert reply["market"]["status"] == "SETTLED"
        # backer wins 10.00, less 5% commission on the market's net win
        assert await _wallet(backer) == ("109.50", "0.00")
        assert await _wallet(layer) == ("90.00", "0.00")
        await backer.error(place(market), "MARKET_NOT_OPEN")
        await trader.error({"op": "market.settle", "market": market, "winners": ["s1"]},
                           "MARKET_NOT_OPEN")
    ws(scenario)


def test_market_settle_with_a_dead_heat_pays_the_share(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, selections=("s1", "s2", "s3"), commission="0")
        backer = await h.bettor("backer", "100.00")
        layer = await h.bettor("layer", "100.00")
        await placed(backer, market, side="back", price="3.00", size="10.00")
        await placed(layer, market, side="lay", price="3.00", size="10.00")
        await trader.ok({"op": "market.settle", "market": market, "winners": ["s1", "s2"],
                         "dead_heat": {"s1": "0.5", "s2": "0.5"}}, "market")
        # half of +20.00 and half of -10.00
        assert await _wallet(backer) == ("105.00", "0.00")
        assert await _wallet(layer) == ("95.00", "0.00")
    ws(scenario)


def test_market_settle_with_an_unknown_winner_is_unknown_selection(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await trader.error({"op": "market.settle", "market": market, "winners": ["nope"]},
                           "UNKNOWN_SELECTION")
    ws(scenario)


def test_market_void_returns_every_stake(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        backer = await h.bettor("backer", "100.00")
        layer = await h.bettor("layer", "100.00")
        await placed(backer, market, side="back", price="4.00", size="10.00")
        await placed(layer, market, side="lay", price="4.00", size="6.00")
        await placed(layer, market, selection="s2", side="lay", price="1.50", size="4.00")
        reply = await trader.rpc({"op": "market.void", "id": "v", "market": market})
        assert reply["op"] == "market" and reply["id"] == "v"
        assert reply["market"]["status"] == "VOIDED"
        assert await _wallet(backer) == ("100.00", "0.00")
        assert await _wallet(layer) == ("100.00", "0.00")
        await trader.error({"op": "market.void", "market": market}, "MARKET_NOT_OPEN")
    ws(scenario)


def test_settled_market_pushes_its_final_status_to_subscribers(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        watcher = await h.client(unique("w"))
        await watcher.ok({"op": "subscribe", "markets": [market]}, "subscribed")
        await watcher.take("mkt")
        await trader.ok({"op": "market.settle", "market": market, "winners": ["s2"]}, "market")
        delta = await watcher.take("mkt")
        assert delta["status"] == "SETTLED"
    ws(scenario)


TRADER_REQUESTS = [
    {"op": "market.create", "market": "forbidden-m", "event": "e", "name": "n",
     "selections": [{"id": "s1", "name": "S1"}]},
    {"op": "market.status", "market": "MARKET", "status": "suspended"},
    {"op": "prices.set", "market": "MARKET", "prices": {"s1": "2.00", "s2": "2.00"}},
    {"op": "limits.set", "market": "MARKET", "max_stake": "1.00"},
    {"op": "limits.set", "user": "someone", "max_stake": "1.00"},
    {"op": "market.settle", "market": "MARKET", "winners": ["s1"]},
    {"op": "market.void", "market": "MARKET"},
]


@pytest.mark.parametrize("request_", TRADER_REQUESTS,
                         ids=[f"{r['op']}-{'user' if 'user' in r else 'market'}"
                              for r in TRADER_REQUESTS])
@pytest.mark.parametrize("roles", [("bettor",), ("operator",)])
def test_trader_ops_without_the_trader_role_are_forbidden(ws, request_, roles):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        other = await h.client(unique("u"), *roles)
        msg = {k: (market if v == "MARKET" else v) for k, v in request_.items()}
        await other.error(msg, "FORBIDDEN")
        # nothing changed: the market is still open and unpriced
        reply = await trader.ok({"op": "limits.set", "market": market}, "market")
        assert reply["market"]["status"] == "OPEN"
        assert reply["market"]["limits"]["max_stake"] is None
        assert all(s["offered"] is None for s in reply["market"]["selections"])
    ws(scenario)


def test_admin_may_use_trader_ops(ws):
    async def scenario(h: Harness):
        admin = await h.client(unique("admin"), "admin")
        market = await h.market(admin)
        reply = await admin.ok({"op": "market.void", "market": market}, "market")
        assert reply["market"]["status"] == "VOIDED"
    ws(scenario)


def test_trader_ops_on_an_unknown_market_are_unknown_market(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        missing = unique("missing")
        results = await asyncio.gather(
            trader.rpc({"op": "market.status", "market": missing, "status": "open"}),
            trader.rpc({"op": "prices.set", "market": missing, "prices": {"s1": "2.00"}}),
            trader.rpc({"op": "limits.set", "market": missing, "max_stake": "1.00"}),
            trader.rpc({"op": "market.settle", "market": missing, "winners": ["s1"]}),
            trader.rpc({"op": "market.void", "market": missing}))
        assert [r.get("code") for r in results] == ["UNKNOWN_MARKET"] * 5
    ws(scenario)

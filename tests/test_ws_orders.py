"""Bettor order ops over the WebSocket (PROTOCOL.md "Bettor ops"): place, cancel, replace,
cancel_all, orders (+ ord/fill/wallet pushes to the owner only), preview, wallet."""

import asyncio

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, place, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

ORDER_FIELDS = {"order", "market", "selection", "side", "price", "size", "matched", "remaining",
                "cancelled", "lapsed", "avg_price_matched", "status", "persistence", "ref",
                "placed_seq", "queue_ahead"}


async def _wallet(client) -> dict:
    reply = await client.ok({"op": "wallet"}, "wallet")
    del reply["id"]
    return reply


async def _orders(client) -> dict[str, dict]:
    reply = await client.ok({"op": "orders"}, "orders")
    return {o["order"]: o for o in reply["orders"]}


def test_place_replies_placed_with_the_order_fields_of_the_protocol(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        reply = await alice.rpc({"op": "place", "id": "p1", "market": market, "selection": "s1",
                                 "side": "back", "price": "2.50", "size": "10.00",
                                 "persistence": "persist", "ref": "my-ref-1"})
        assert reply["op"] == "placed" and reply["id"] == "p1"
        assert set(reply) == {"op", "id", "order"}
        order = reply["order"]
        assert set(order) == ORDER_FIELDS
        assert isinstance(order["order"], str) and order["order"]
        assert isinstance(order["placed_seq"], int) and order["placed_seq"] > 0
        assert {k: v for k, v in order.items() if k not in ("order", "placed_seq")} == {
            "market": market, "selection": "s1", "side": "back", "price": "2.50",
            "size": "10.00", "matched": "0.00", "remaining": "10.00", "cancelled": "0.00",
            "lapsed": "0.00", "avg_price_matched": "0.00", "status": "EXECUTABLE",
            "persistence": "persist", "ref": "my-ref-1", "queue_ahead": "0.00"}
    ws(scenario)


def test_place_defaults_to_lapse_and_no_ref(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        order = await placed(alice, market, side="lay", price="1.50", size="2.00")
        assert order["persistence"] == "lapse" and order["ref"] is None
        assert order["side"] == "lay" and order["status"] == "EXECUTABLE"
    ws(scenario)


def test_place_that_matches_reports_matched_and_average_price(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        backer = await h.bettor("backer")
        await placed(layer, market, side="lay", price="2.60", size="4.00")
        await placed(layer, market, side="lay", price="2.50", size="10.00")
        order = await placed(backer, market, side="back", price="2.50", size="10.00")
        assert (order["matched"], order["remaining"]) == ("10.00", "0.00")
        # 4 @ 2.60 + 6 @ 2.50 -> 2.54
        assert order["avg_price_matched"] == "2.54"
        assert order["status"] == "EXECUTION_COMPLETE"
    ws(scenario)


def test_queue_ahead_is_the_size_resting_ahead_at_the_price(ws):
    async def scenario(h: Harness):
        market = await h.market()
        first, second, third = [await h.bettor(n) for n in ("first", "second", "third")]
        await placed(first, market, side="back", price="3.00", size="35.00")
        await placed(second, market, side="back", price="3.00", size="5.00")
        order = await placed(third, market, side="back", price="3.00", size="1.00")
        assert order["queue_ahead"] == "40.00"
        other_price = await placed(third, market, side="back", price="3.05", size="1.00")
        assert other_price["queue_ahead"] == "0.00"
    ws(scenario)


def test_place_with_a_repeated_ref_returns_the_same_order(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "100.00")
        request = place(market, price="3.00", size="10.00", ref="once")
        first = (await alice.ok(request, "placed"))["order"]
        wallet = await _wallet(alice)
        second = (await alice.ok(request, "placed"))["order"]
        assert second["order"] == first["order"]
        assert second == first
        assert await _wallet(alice) == wallet  # held once
        assert list(await _orders(alice)) == [first["order"]]
    ws(scenario)


def test_same_ref_from_another_user_is_a_different_order(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        a = await placed(alice, market, price="3.00", ref="shared")
        b = await placed(bob, market, price="3.00", ref="shared")
        assert a["order"] != b["order"]
    ws(scenario)


def test_place_with_a_ref_used_for_other_fields_is_duplicate_ref(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        first = await placed(alice, market, price="3.00", size="10.00", ref="r1")
        await alice.error(place(market, price="3.00", size="11.00", ref="r1"), "DUPLICATE_REF")
        await alice.error(place(market, price="3.05", size="10.00", ref="r1"), "DUPLICATE_REF")
        assert list(await _orders(alice)) == [first["order"]]
    ws(scenario)


def test_a_repeat_after_settlement_replies_placed_with_the_original_order_in_its_final_state(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, commission="0")
        alice = await h.bettor("alice", "100.00")
        bob = await h.bettor("bob", "100.00")
        request = place(market, price="3.00", size="10.00", ref="kept")
        first = (await alice.ok(request, "placed"))["order"]
        await placed(bob, market, side="lay", price="3.00", size="6.00")
        await trader.ok({"op": "market.settle", "market": market, "winners": ["s1"]}, "market")
        wallet = await _wallet(alice)
        again = (await alice.ok(request, "placed"))["order"]
        assert again == {**first, "matched": "6.00", "remaining": "0.00", "lapsed": "4.00",
                         "avg_price_matched": "3.00", "status": "EXECUTION_COMPLETE",
                         "queue_ahead": "0.00"}
        assert await _wallet(alice) == wallet  # nothing placed, nothing held
        # (a ref is the user's on each shard: docs/scale-out.md)
        other = await h.market(trader, market=h.market_id(h.shards.of_market(market)))
        await alice.error(place(other, price="3.00", size="10.00", ref="kept"), "DUPLICATE_REF")
        assert await _wallet(alice) == wallet
    ws(scenario)


def test_cancel_without_size_reduction_cancels_all_that_remains(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "100.00")
        order = await placed(alice, market, side="back", price="3.00", size="10.00")
        assert (await _wallet(alice))["held"] == "10.00"
        reply = await alice.rpc({"op": "cancel", "id": "c1", "order": order["order"]})
        assert reply["op"] == "cancelled" and reply["id"] == "c1"
        cancelled = reply["order"]
        assert set(cancelled) == ORDER_FIELDS
        assert (cancelled["order"], cancelled["remaining"], cancelled["cancelled"],
                cancelled["status"]) == (order["order"], "0.00", "10.00", "EXECUTION_COMPLETE")
        wallet = await _wallet(alice)
        assert (wallet["held"], wallet["available"]) == ("0.00", "100.00")
    ws(scenario)


def test_cancel_with_size_reduction_reduces_the_remainder(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "100.00")
        order = await placed(alice, market, side="back", price="3.00", size="10.00")
        reduced = (await alice.ok({"op": "cancel", "order": order["order"],
                                   "size_reduction": "4.00"}, "cancelled"))["order"]
        assert (reduced["size"], reduced["remaining"], reduced["cancelled"],
                reduced["status"]) == ("10.00", "6.00", "4.00", "EXECUTABLE")
        assert (await _wallet(alice))["held"] == "6.00"
        # a reduction beyond what remains cancels the rest
        rest = (await alice.ok({"op": "cancel", "order": order["order"],
                                "size_reduction": "50.00"}, "cancelled"))["order"]
        assert (rest["remaining"], rest["cancelled"]) == ("0.00", "10.00")
    ws(scenario)


def test_cancel_of_a_partly_matched_order_keeps_the_matched_part(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        order = await placed(alice, market, side="back", price="2.00", size="10.00")
        await placed(bob, market, side="lay", price="2.00", size="3.00")
        cancelled = (await alice.ok({"op": "cancel", "order": order["order"]},
                                    "cancelled"))["order"]
        assert (cancelled["matched"], cancelled["cancelled"], cancelled["remaining"]) == (
            "3.00", "7.00", "0.00")
        assert (await _wallet(alice))["held"] == "3.00"  # the matched stake stays at risk
    ws(scenario)


def test_replace_moves_the_remainder_to_a_new_price_behind_the_queue(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        order = await placed(alice, market, side="back", price="3.00", size="10.00")
        await placed(bob, market, side="back", price="3.10", size="20.00")
        reply = await alice.rpc({"op": "replace", "id": "x", "order": order["order"],
                                 "price": "3.10"})
        assert reply["op"] == "replaced" and reply["id"] == "x"
        old, new = reply["cancelled"], reply["order"]
        assert set(old) == set(new) == ORDER_FIELDS
        assert old["order"] == order["order"]
        assert (old["remaining"], old["cancelled"], old["status"]) == (
            "0.00", "10.00", "EXECUTION_COMPLETE")
        assert new["order"] != old["order"]
        assert (new["price"], new["size"], new["remaining"], new["side"], new["persistence"]) == (
            "3.10", "10.00", "10.00", "back", "lapse")
        assert new["queue_ahead"] == "20.00"  # behind bob, who was there first
        orders = await _orders(alice)
        assert set(orders) == {old["order"], new["order"]}
    ws(scenario)


def test_replace_of_a_partly_matched_order_moves_only_the_remainder(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        order = await placed(alice, market, side="back", price="2.00", size="10.00")
        await placed(bob, market, side="lay", price="2.00", size="4.00")
        reply = await alice.ok({"op": "replace", "order": order["order"], "price": "2.20"},
                               "replaced")
        assert reply["cancelled"]["matched"] == "4.00"
        assert reply["order"]["size"] == "6.00" and reply["order"]["price"] == "2.20"
    ws(scenario)


def test_cancel_all_in_one_market_leaves_other_markets(ws):
    async def scenario(h: Harness):
        m1, m2 = await h.market(), await h.market()
        alice = await h.bettor("alice")
        a = await placed(alice, m1, price="3.00")
        b = await placed(alice, m1, selection="s2", side="lay", price="1.50")
        c = await placed(alice, m2, price="3.00")
        reply = await alice.rpc({"op": "cancel_all", "id": 5, "market": m1})
        assert reply["op"] == "cancelled_all" and reply["id"] == 5
        assert sorted(o["order"] for o in reply["orders"]) == sorted([a["order"], b["order"]])
        assert all(set(o) == ORDER_FIELDS and o["remaining"] == "0.00" for o in reply["orders"])
        orders = await _orders(alice)
        assert orders[c["order"]]["remaining"] == "10.00"
    ws(scenario)


def test_cancel_all_without_market_cancels_everywhere_and_only_mine(ws):
    async def scenario(h: Harness):
        m1, m2 = await h.market(), await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        mine = [await placed(alice, m, price="3.00") for m in (m1, m2)]
        theirs = await placed(bob, m1, price="3.00")
        reply = await alice.ok({"op": "cancel_all"}, "cancelled_all")
        assert sorted(o["order"] for o in reply["orders"]) == sorted(o["order"] for o in mine)
        assert (await _wallet(alice))["held"] == "0.00"
        assert (await _orders(bob))[theirs["order"]]["remaining"] == "10.00"
        # nothing left: an empty list, not an error
        assert (await alice.ok({"op": "cancel_all"}, "cancelled_all"))["orders"] == []
    ws(scenario)


def test_orders_lists_my_orders(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        mine = [await placed(alice, market, price=p) for p in ("3.00", "3.05")]
        await placed(bob, market, price="3.00")
        reply = await alice.rpc({"op": "orders", "id": "o"})
        assert reply["op"] == "orders" and reply["id"] == "o"
        assert sorted(o["order"] for o in reply["orders"]) == sorted(o["order"] for o in mine)
        assert all(set(o) == ORDER_FIELDS for o in reply["orders"])
    ws(scenario)


def test_orders_then_ord_fill_and_wallet_pushes_go_to_the_owner_only(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "100.00")
        bob = await h.bettor("bob", "100.00")
        await alice.ok({"op": "orders"}, "orders")
        await bob.ok({"op": "orders"}, "orders")
        order = await placed(alice, market, side="back", price="2.00", size="10.00")
        ord_push = await alice.take("ord", lambda m: m["order"]["order"] == order["order"])
        assert set(ord_push) == {"op", "order"} and set(ord_push["order"]) == ORDER_FIELDS
        wallet = await alice.take("wallet")
        assert wallet == {"op": "wallet", "currency": "BDT", "balance": "100.00",
                          "held": "10.00", "available": "90.00"}
        # bob's lay matches alice's back: both get fills, each only their own
        lay = await placed(bob, market, side="lay", price="2.00", size="4.00")
        fill = await alice.take("fill")
        assert {k: fill[k] for k in ("op", "order", "price", "size")} == {
            "op": "fill", "order": order["order"], "price": "2.00", "size": "4.00"}
        assert isinstance(fill["seq"], int)
        updated = await alice.take("ord", lambda m: m["order"]["matched"] == "4.00")
        assert updated["order"]["remaining"] == "6.00"
        bob_fill = await bob.take("fill")
        assert bob_fill["order"] == lay["order"]
        await asyncio.sleep(0.3)
        alice_orders = {p["order"]["order"] for p in alice.pushes if p["op"] == "ord"}
        bob_orders = {p["order"]["order"] for p in bob.pushes if p["op"] == "ord"}
        assert alice_orders == {order["order"]}
        assert bob_orders == {lay["order"]}
        assert [p["order"] for p in alice.pushes if p["op"] == "fill"] == [order["order"]]
        assert [p["order"] for p in bob.pushes if p["op"] == "fill"] == [lay["order"]]
        # alice's wallet pushes show only alice's money (100 deposited, back stake held)
        for w in (p for p in alice.pushes if p["op"] == "wallet"):
            assert w["balance"] == "100.00"
    ws(scenario)


def test_a_second_user_watching_orders_sees_none_of_mine(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        eve = await h.bettor("eve")
        await eve.ok({"op": "orders"}, "orders")
        order = await placed(alice, market, price="3.00")
        await alice.ok({"op": "cancel", "order": order["order"]}, "cancelled")
        assert await eve.settle(0.4) == []
    ws(scenario)


def test_no_order_pushes_without_the_orders_op(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await placed(alice, market, price="3.00")
        assert await alice.settle(0.3) == []
    ws(scenario)


def test_order_pushes_reach_every_connection_of_the_owner(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        second = await h.client(alice.user)
        await second.ok({"op": "orders"}, "orders")
        order = await placed(alice, market, price="3.00")
        push = await second.take("ord")
        assert push["order"]["order"] == order["order"]
    ws(scenario)


def test_preview_reports_fills_rest_and_wallet_after_without_changing_anything(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        alice = await h.bettor("alice", "100.00")
        await placed(layer, market, side="lay", price="2.52", size="6.00")
        watcher = await h.client(unique("watcher"))
        await watcher.ok({"op": "subscribe", "markets": [market]}, "subscribed")
        image = await watcher.take("mkt")
        reply = await alice.rpc({"op": "preview", "id": "pv", "market": market,
                                 "selection": "s1", "side": "back", "price": "2.50",
                                 "size": "10.00"})
        assert reply == {"op": "preview", "id": "pv", "fills": [["2.52", "6.00"]],
                         "rest": "4.00", "bet_delay_ms": 0,
                         "wallet_after": {"currency": "BDT", "balance": "100.00",
                                          "held": "10.00", "available": "90.00"},
                         "exposure_after": "10.00"}
        wallet = await _wallet(alice)
        assert (wallet["held"], wallet["available"]) == ("0.00", "100.00")
        assert await _orders(alice) == {}
        assert await watcher.settle(0.3, "mkt") == []  # the book did not move
        assert image["selections"][0]["to_back"] == [["2.52", "6.00"]]
    ws(scenario)


def test_preview_reports_the_rejection_a_place_would_get(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "5.00")
        await alice.error({"op": "preview", "market": market, "selection": "s1", "side": "back",
                           "price": "2.50", "size": "10.00"}, "INSUFFICIENT_FUNDS")
    ws(scenario)


def test_preview_with_a_used_ref_does_not_place(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await alice.ok({"op": "preview", "market": market, "selection": "s1", "side": "back",
                        "price": "3.00", "size": "10.00", "ref": "later"}, "preview")
        assert await _orders(alice) == {}
        order = await placed(alice, market, price="3.00", ref="later")
        assert order["ref"] == "later"
    ws(scenario)


def test_wallet_replies_balance_held_available(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice", "123.45")
        reply = await alice.rpc({"op": "wallet", "id": 42})
        bdt = {"currency": "BDT", "balance": "123.45", "held": "0.00", "available": "123.45"}
        usd = {"currency": "USD", "balance": "0.00", "held": "0.00", "available": "0.00"}
        # the v1 fields: the default currency's wallet; `wallets`: every configured currency
        assert reply == {"op": "wallet", "id": 42, **bdt, "wallets": [bdt, usd]}
    ws(scenario)


def test_wallet_of_a_user_never_funded_is_zero(ws):
    async def scenario(h: Harness):
        nobody = await h.bettor("nobody", "0.00")
        reply = await _wallet(nobody)
        assert (reply["balance"], reply["held"], reply["available"]) == ("0.00", "0.00", "0.00")
    ws(scenario)


def test_lay_holds_the_liability(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "100.00")
        await placed(alice, market, side="lay", price="3.00", size="10.00")
        assert (await _wallet(alice))["held"] == "20.00"
    ws(scenario)


def test_fok_fills_whole_or_is_refused(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        alice = await h.bettor("alice")
        await placed(layer, market, side="lay", price="2.00", size="6.00")
        await alice.error(place(market, price="2.00", size="10.00", tif="fok"),
                          "FOK_NOT_FILLED")
        partial = await placed(alice, market, price="2.00", size="10.00", tif="fok",
                               min_fill="5.00")
        assert (partial["matched"], partial["remaining"], partial["cancelled"]) == (
            "6.00", "0.00", "4.00")
        assert await _orders(alice) == {partial["order"]: partial}
    ws(scenario)


@pytest.mark.parametrize("tif", ["gtc", None])
def test_min_fill_without_fok_is_bad_request(ws, tif):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        extra = {"tif": tif} if tif else {}
        await alice.error(place(market, min_fill="1.00", **extra), "BAD_REQUEST")
    ws(scenario)


def test_requests_are_answered_in_the_order_sent(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice", "1000.00")
        ids = [await alice.send(place(market, price="3.00", size="1.00")) for _ in range(15)]
        orders = [(await alice.reply(rid))["order"] for rid in ids]
        seqs = [o["placed_seq"] for o in orders]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # each later order is queued behind the ones before it
        assert [o["queue_ahead"] for o in orders] == [f"{i}.00" for i in range(15)]
    ws(scenario)


def test_settlement_pushes_the_new_wallet_to_an_owner_watching_orders(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader, commission="0")
        backer = await h.bettor("backer", "100.00")
        layer = await h.bettor("layer", "100.00")
        await placed(backer, market, price="3.00", size="10.00")
        await placed(layer, market, side="lay", price="3.00", size="10.00")
        await backer.ok({"op": "orders"}, "orders")
        await trader.ok({"op": "market.settle", "market": market, "winners": ["s1"]}, "market")
        wallet = await backer.take("wallet", lambda w: w["held"] == "0.00")
        assert (wallet["balance"], wallet["available"]) == ("120.00", "120.00")
    ws(scenario)


def test_subscribing_with_a_market_listed_twice_sends_one_image(ws):
    async def scenario(h: Harness):
        market = await h.market()
        watcher = await h.client(unique("watcher"))
        reply = await watcher.ok({"op": "subscribe", "markets": [market, market]}, "subscribed")
        assert reply["markets"] == [market]
        assert len(await watcher.settle(0.3, "mkt")) == 1
    ws(scenario)


def test_a_zero_size_reduction_is_refused_and_the_order_stays(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("zero-reduce")
        order = await placed(alice, market, side="back", price="3.00", size="10.00")
        error = await alice.rpc({"op": "cancel", "order": order["order"],
                                 "size_reduction": "0.00"})
        assert error["op"] == "error" and error["code"] == "INVALID_SIZE"
        after = (await _orders(alice))[order["order"]]
        assert after["remaining"] == "10.00" and after["cancelled"] == "0.00"
    ws(scenario)

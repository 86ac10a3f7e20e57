"""The order of frames a client sees (docs/protocol.md "Frame order"): a request's reply reaches
its client before any push that reports a later state of the same order, for every op, delayed
or not, even when the later state comes from a command journaled in the same batch.

Each scenario pipelines a request and a second command that changes the same order again on
one connection (a user holding both the bettor and the trader role), so that both usually land
in one sequencer batch, and repeats it a few times: a client applying frames in arrival order
must end with the order's real state.
"""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Client, Harness, place, placed  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

ROUNDS = 6


async def _trading_trader(h: Harness, name: str) -> Client:
    """A funded user who may both bet and run markets, watching its own orders."""
    user = await h.funded_user(name, "1000.00")
    client = await h.client(user, "bettor", "trader")
    await client.ok({"op": "orders"}, "orders")
    return client


def _index(client: Client, pred) -> int:
    return next(i for i, f in enumerate(client.frames) if pred(f))


def _assert_reply_first(client: Client, reply: dict, order_id: str, later) -> None:
    """The reply comes before every `ord` push of `order_id` in a state `later` says is later."""
    at = client.frames.index(reply)
    early = [f for f in client.frames[:at]
             if f.get("op") == "ord" and f["order"]["order"] == order_id and later(f["order"])]
    assert not early, f"pushed {early} before the reply {reply}"


def test_a_delayed_place_is_answered_before_the_suspension_cancels_it(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "delayed")
        for _ in range(ROUNDS):
            market = await h.market(me)
            await me.ok({"op": "market.status", "market": market, "in_play": True,
                         "bet_delay_ms": 1000}, "market")
            rid = await me.send(place(market, price="3.00", size="10.00"))
            await me.send({"op": "market.status", "market": market, "status": "suspended"})
            reply = await me.reply(rid)
            assert reply["op"] == "placed", reply
            order = reply["order"]
            assert (order["status"], order["remaining"]) == ("EXECUTABLE", "10.00")
            cancelled = await me.take("ord", lambda f, oid=order["order"]: (
                f["order"]["order"] == oid and f["order"]["status"] == "EXECUTION_COMPLETE"))
            assert cancelled["order"]["cancelled"] == "10.00"
            assert client_order(me, order["order"]) == cancelled["order"]
            _assert_reply_first(me, reply, order["order"],
                                lambda o: o["status"] == "EXECUTION_COMPLETE")
    ws(scenario)


def client_order(client: Client, order_id: str) -> dict:
    """The order as a client that applies every frame in arrival order last saw it."""
    seen = None
    for f in client.frames:
        if f.get("op") in ("placed", "cancelled", "ord") and f.get("order", {}) and \
                isinstance(f["order"], dict) and f["order"]["order"] == order_id:
            seen = f["order"]
        elif f.get("op") == "replaced":
            for key in ("cancelled", "order"):
                if f[key]["order"] == order_id:
                    seen = f[key]
        elif f.get("op") == "slip.placed":
            for r in f["results"]:
                if "order" in r and r["order"]["order"] == order_id:
                    seen = r["order"]
    return seen


def test_a_place_is_answered_before_a_cancel_in_the_same_batch_is_pushed(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "placecancel")
        market = await h.market(me)
        for _ in range(ROUNDS):
            rid = await me.send(place(market, price="3.00", size="10.00"))
            await me.send({"op": "cancel_all", "market": market})
            reply = await me.reply(rid)
            order = reply["order"]
            await me.take("ord", lambda f, oid=order["order"]: (
                f["order"]["order"] == oid and f["order"]["cancelled"] == "10.00"))
            _assert_reply_first(me, reply, order["order"], lambda o: o["cancelled"] == "10.00")
            assert client_order(me, order["order"])["cancelled"] == "10.00"
    ws(scenario)


def test_a_cancel_is_answered_before_a_later_cancel_is_pushed(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "cancels")
        market = await h.market(me)
        for _ in range(ROUNDS):
            order = await placed(me, market, price="3.00", size="10.00")
            rid = await me.send({"op": "cancel", "order": order["order"],
                                 "size_reduction": "4.00"})
            await me.send({"op": "cancel", "order": order["order"]})
            reply = await me.reply(rid)
            assert reply["op"] == "cancelled" and reply["order"]["remaining"] == "6.00", reply
            await me.take("ord", lambda f, oid=order["order"]: (
                f["order"]["order"] == oid and f["order"]["cancelled"] == "10.00"))
            _assert_reply_first(me, reply, order["order"], lambda o: o["cancelled"] == "10.00")
            assert client_order(me, order["order"])["cancelled"] == "10.00"
    ws(scenario)


def test_a_replace_is_answered_before_the_new_order_is_cancelled_by_a_later_command(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "replaces")
        market = await h.market(me)
        for _ in range(ROUNDS):
            order = await placed(me, market, price="3.00", size="10.00")
            rid = await me.send({"op": "replace", "order": order["order"], "price": "3.05"})
            await me.send({"op": "cancel_all", "market": market})
            reply = await me.reply(rid)
            assert reply["op"] == "replaced", reply
            new = reply["order"]
            assert new["remaining"] == "10.00"
            await me.take("ord", lambda f, oid=new["order"]: (
                f["order"]["order"] == oid and f["order"]["cancelled"] == "10.00"))
            _assert_reply_first(me, reply, new["order"], lambda o: o["cancelled"] == "10.00")
            assert client_order(me, new["order"])["cancelled"] == "10.00"
    ws(scenario)


def test_a_delayed_slip_place_is_answered_before_the_suspension_cancels_it(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "slips")
        maker = await h.bettor("slipmaker", "1000.00")
        for _ in range(ROUNDS):
            market = await h.market(me)
            await placed(maker, market, side="lay", price="2.50", size="50.00",
                         persistence="persist")
            await me.ok({"op": "market.status", "market": market, "in_play": True,
                         "bet_delay_ms": 1000}, "market")
            shown = await me.ok({"op": "slip.set", "legs": [
                {"market": market, "selection": "s1", "side": "back", "stake": "10.00"}]},
                "slip")
            assert shown["legs"][0]["price"] == "2.50", shown
            rid = await me.send({"op": "slip.place", "accept": "better"})
            await me.send({"op": "market.status", "market": market, "status": "suspended"})
            reply = await me.reply(rid)
            (result,) = reply["results"]
            assert "order" in result, reply
            oid = result["order"]["order"]
            assert result["order"]["status"] == "EXECUTABLE"
            await me.take("ord", lambda f, oid=oid: (
                f["order"]["order"] == oid and f["order"]["status"] == "EXECUTION_COMPLETE"))
            _assert_reply_first(me, reply, oid, lambda o: o["status"] == "EXECUTION_COMPLETE")
            assert client_order(me, oid)["status"] == "EXECUTION_COMPLETE"
    ws(scenario)


def test_the_wallet_reply_is_never_older_than_a_wallet_push_before_it(ws):
    async def scenario(h: Harness):
        me = await _trading_trader(h, "wallets")
        market = await h.market(me)
        for _ in range(ROUNDS):
            start = len(me.frames)  # the last round's push was taken: all before this is older
            rid = await me.send({"op": "wallet"})
            await me.send(place(market, price="3.00", size="10.00"))
            reply = await me.reply(rid)
            at = me.frames.index(reply)
            pushed_before = [f for f in me.frames[start:at] if f.get("op") == "wallet"
                             and "id" not in f and f["held"] != reply["held"]]
            assert not pushed_before, (pushed_before, reply)
            await me.take("wallet", lambda f: "id" not in f)
    ws(scenario)

"""Market data over the WebSocket (PROTOCOL.md "Pushes"): subscribe, images, deltas with a
per-subscription seq, depth, conflation, unsubscribe."""

import asyncio

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import CONFLATION_MS, Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]


def _sel(msg: dict, sid: str) -> dict:
    return next(s for s in msg["selections"] if s["id"] == sid)


async def _subscribe(client, market: str, **more) -> dict:
    """Subscribe to one market; the image that follows the reply."""
    reply = await client.ok({"op": "subscribe", "markets": [market], **more}, "subscribed")
    assert reply["markets"] == [market]
    return await client.take("mkt", lambda m: m["market"] == market)


def test_subscribe_replies_subscribed_then_an_image_with_seq_1(ws):
    async def scenario(h: Harness):
        market = await h.market(selections=("s1", "s2"))
        watcher = await h.client(unique("watcher"))
        reply = await watcher.rpc({"op": "subscribe", "id": "sub-1", "markets": [market]})
        assert reply == {"op": "subscribed", "id": "sub-1", "markets": [market]}
        image = await watcher.take("mkt")
        assert image == {
            "op": "mkt", "market": market, "seq": 1, "img": True, "status": "OPEN",
            "in_play": False, "bet_delay_ms": 0,
            "selections": [
                {"id": "s1", "to_back": [], "to_lay": [], "ltp": None, "traded": "0.00",
                 "removed": None},
                {"id": "s2", "to_back": [], "to_lay": [], "ltp": None, "traded": "0.00",
                 "removed": None}]}
        assert "id" not in image
    ws(scenario)


def test_image_shows_resting_orders_best_first(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        backer = await h.bettor("backer")
        for price in ("2.40", "2.50", "2.44"):  # lays: what a backer can take
            await placed(layer, market, side="lay", price=price, size="5.00")
        for price in ("2.70", "2.60", "2.76"):  # backs: what a layer can take
            await placed(backer, market, side="back", price=price, size="7.00")
        image = await _subscribe(await h.client(unique("watcher")), market)
        s1 = _sel(image, "s1")
        # a backer wants the highest odds; a layer the lowest
        assert s1["to_back"] == [["2.50", "5.00"], ["2.44", "5.00"], ["2.40", "5.00"]]
        assert s1["to_lay"] == [["2.60", "7.00"], ["2.70", "7.00"], ["2.76", "7.00"]]
    ws(scenario)


def test_depth_limits_levels_in_image_and_deltas(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        for price in ("2.00", "2.02", "2.04", "2.06", "2.08"):
            await placed(layer, market, side="lay", price=price, size="5.00")
        shallow = await h.client(unique("shallow"))
        deep = await h.client(unique("deep"))
        default = await h.client(unique("default"))
        img1 = await _subscribe(shallow, market, depth=1)
        img5 = await _subscribe(deep, market, depth=5)
        img3 = await _subscribe(default, market)
        assert _sel(img1, "s1")["to_back"] == [["2.08", "5.00"]]
        assert [p for p, _ in _sel(img5, "s1")["to_back"]] == ["2.08", "2.06", "2.04", "2.02",
                                                              "2.00"]
        assert len(_sel(img3, "s1")["to_back"]) == 3  # depth 3 by default
        # a change at the 4th level is visible only to the deep subscriber
        await placed(layer, market, side="lay", price="2.02", size="1.00")
        d5 = await deep.take("mkt")
        assert _sel(d5, "s1")["to_back"] == [["2.02", "6.00"]]
        assert await shallow.settle(0.2, "mkt") == []
        assert await default.settle(0.0, "mkt") == []
    ws(scenario)


@pytest.mark.parametrize("depth", [0, 11, "3"])
def test_depth_outside_1_to_10_is_bad_request(ws, depth):
    async def scenario(h: Harness):
        market = await h.market()
        client = await h.client(unique("watcher"))
        await client.error({"op": "subscribe", "markets": [market], "depth": depth},
                           "BAD_REQUEST")
        assert client.take_all("mkt") == []
    ws(scenario)


def test_trade_sends_a_delta_with_the_next_seq_and_only_changes(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        backer = await h.bettor("backer")
        await placed(layer, market, side="lay", price="2.50", size="20.00")
        await placed(layer, market, side="lay", price="2.40", size="20.00")
        watcher = await h.client(unique("watcher"))
        image = await _subscribe(watcher, market)
        assert image["seq"] == 1
        await placed(backer, market, side="back", price="2.50", size="8.00")
        delta = await watcher.take("mkt")
        assert delta == {"op": "mkt", "market": market, "seq": 2,
                         "selections": [{"id": "s1", "to_back": [["2.50", "12.00"]],
                                         "ltp": "2.50", "traded": "8.00"}]}
        # taking the rest of the level removes it with size 0.00
        await placed(backer, market, side="back", price="2.50", size="12.00")
        delta = await watcher.take("mkt")
        assert delta["seq"] == 3 and "img" not in delta
        assert _sel(delta, "s1")["to_back"] == [["2.50", "0.00"]]
        assert _sel(delta, "s1")["traded"] == "20.00"
    ws(scenario)


def test_many_matches_in_one_interval_are_one_delta(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layers = [await h.bettor(f"layer{i}") for i in range(6)]
        backer = await h.bettor("backer")
        for i, layer in enumerate(layers):
            await placed(layer, market, side="lay", price="3.00" if i % 2 else "2.90",
                         size="5.00")
        watcher = await h.client(unique("watcher"))
        await _subscribe(watcher, market)
        order = await placed(backer, market, side="back", price="2.90", size="30.00")
        assert order["matched"] == "30.00"  # six matches in one command
        deltas = await watcher.settle(0.3, "mkt")
        assert len(deltas) == 1, deltas
        assert deltas[0]["seq"] == 2
        s1 = _sel(deltas[0], "s1")
        assert sorted(s1["to_back"]) == [["2.90", "0.00"], ["3.00", "0.00"]]
        assert s1["traded"] == "30.00" and s1["ltp"] == "2.90"
    ws(scenario)


def test_a_burst_of_trades_is_conflated_into_fewer_deltas(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer", "5000.00")
        backers = [await h.bettor(f"backer{i}") for i in range(4)]
        await placed(layer, market, side="lay", price="2.00", size="1000.00",
                     persistence="persist")
        watcher = await h.client(unique("watcher"))
        await _subscribe(watcher, market)
        trades = 40
        # pipelined: all requests go out before any reply is read
        ids = [await backers[i % 4].send({"op": "place", "market": market, "selection": "s1",
                                          "side": "back", "price": "2.00", "size": "1.00"})
               for i in range(trades)]
        for i, rid in enumerate(ids):
            reply = await backers[i % 4].reply(rid)
            assert reply["op"] == "placed" and reply["order"]["matched"] == "1.00", reply
        deltas = await watcher.settle(max(0.3, CONFLATION_MS * 5 / 1000), "mkt")
        assert 1 <= len(deltas) < trades
        assert [d["seq"] for d in deltas] == list(range(2, 2 + len(deltas)))
        last = _sel(deltas[-1], "s1")
        assert last["traded"] == f"{trades}.00"
        assert last["to_back"] == [["2.00", f"{1000 - trades}.00"]]
    ws(scenario)


def test_status_change_is_a_delta(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        watcher = await h.client(unique("watcher"))
        await _subscribe(watcher, market)
        await trader.ok({"op": "market.status", "market": market, "status": "suspended"})
        delta = await watcher.take("mkt")
        assert delta == {"op": "mkt", "market": market, "seq": 2, "status": "SUSPENDED"}
        await trader.ok({"op": "market.status", "market": market, "status": "open",
                         "in_play": True, "bet_delay_ms": 1000})
        delta = await watcher.take("mkt")
        assert delta == {"op": "mkt", "market": market, "seq": 3, "status": "OPEN",
                         "in_play": True, "bet_delay_ms": 1000}
    ws(scenario)


def test_subscribe_to_several_markets_gives_one_image_each(ws):
    async def scenario(h: Harness):
        markets = [await h.market() for _ in range(3)]
        watcher = await h.client(unique("watcher"))
        reply = await watcher.ok({"op": "subscribe", "markets": markets}, "subscribed")
        assert reply["markets"] == markets
        images = [await watcher.take("mkt") for _ in markets]
        assert [i["market"] for i in images] == markets
        assert all(i["img"] is True and i["seq"] == 1 for i in images)
    ws(scenario)


def test_subscribing_again_sends_a_fresh_image_with_the_next_seq(ws):
    async def scenario(h: Harness):
        market = await h.market()
        watcher = await h.client(unique("watcher"))
        await _subscribe(watcher, market)
        again = await _subscribe(watcher, market, depth=1)
        assert again["img"] is True and again["seq"] == 2
    ws(scenario)


def test_unsubscribe_stops_market_data(ws):
    async def scenario(h: Harness):
        market = await h.market()
        other = await h.market()
        layer = await h.bettor("layer")
        watcher = await h.client(unique("watcher"))
        await _subscribe(watcher, market)
        await _subscribe(watcher, other)
        reply = await watcher.rpc({"op": "unsubscribe", "id": 9, "markets": [market]})
        assert reply == {"op": "unsubscribed", "id": 9, "markets": [market]}
        await placed(layer, market, side="lay", price="2.00", size="5.00")
        await placed(layer, other, side="lay", price="2.00", size="5.00")
        pushes = await watcher.settle(0.3, "mkt")
        assert [p["market"] for p in pushes] == [other]
    ws(scenario)


def test_unsubscribe_without_markets_drops_every_subscription(ws):
    async def scenario(h: Harness):
        markets = [await h.market() for _ in range(2)]
        layer = await h.bettor("layer")
        watcher = await h.client(unique("watcher"))
        await watcher.ok({"op": "subscribe", "markets": markets}, "subscribed")
        await watcher.settle(0.1, "mkt")
        reply = await watcher.ok({"op": "unsubscribe"}, "unsubscribed")
        assert sorted(reply["markets"]) == sorted(markets)
        for market in markets:
            await placed(layer, market, side="lay", price="2.00", size="5.00")
        assert await watcher.settle(0.3, "mkt") == []
    ws(scenario)


def test_subscribers_each_get_their_own_seq(ws):
    async def scenario(h: Harness):
        market = await h.market()
        layer = await h.bettor("layer")
        early = await h.client(unique("early"))
        await _subscribe(early, market)
        await placed(layer, market, side="lay", price="2.00", size="5.00")
        assert (await early.take("mkt"))["seq"] == 2
        late = await h.client(unique("late"))
        image = await _subscribe(late, market)
        assert image["seq"] == 1 and _sel(image, "s1")["to_back"] == [["2.00", "5.00"]]
        await placed(layer, market, side="lay", price="2.00", size="1.00")
        d_early, d_late = await asyncio.gather(early.take("mkt"), late.take("mkt"))
        assert (d_early["seq"], d_late["seq"]) == (3, 2)
        assert _sel(d_early, "s1") == _sel(d_late, "s1") == {"id": "s1",
                                                             "to_back": [["2.00", "6.00"]]}
    ws(scenario)

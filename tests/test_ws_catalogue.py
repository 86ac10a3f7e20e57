"""The catalogue over the WebSocket: `catalogue` lists markets with names, status, in-play,
start time and matched volume, filtered by event, status and in-play and paged; the
`catalogue` channel pushes each market created or changed in status."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, placed, unique  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

ENTRY_KEYS = {"market", "event", "name", "type", "currency", "status", "in_play",
              "bet_delay_ms", "start_ts", "traded", "selections"}


async def _event_markets(h: Harness, n: int, **create) -> tuple[str, list[str]]:
    event = unique("e")
    markets = [await h.market(event=event, **create) for _ in range(n)]
    return event, markets


async def _walk(client, request: dict) -> list[str]:
    """Every market the pages list, following `next` until it is null (at most 20 pages)."""
    seen = []
    for _ in range(20):
        reply = await client.ok(request, "catalogue")
        seen += [m["market"] for m in reply["markets"]]
        if reply["next"] is None:
            return seen
        request = {**request, "after": reply["next"]}
    raise AssertionError(f"the pages did not end: {seen}")


def test_catalogue_lists_an_events_markets_with_names_status_and_matched_volume(ws):
    async def scenario(h: Harness):
        event, (m1, m2) = await _event_markets(h, 2)
        maker, taker = await h.bettor("maker"), await h.bettor("taker")
        await placed(maker, m1, side="lay", price="2.00", size="30.00")
        await placed(taker, m1, side="back", price="2.00", size="12.50")
        alice = await h.bettor("alice")
        reply = await alice.ok({"op": "catalogue", "id": "c", "event": event}, "catalogue")
        assert reply["id"] == "c" and reply["next"] is None
        assert [m["market"] for m in reply["markets"]] == h.listing_order([m1, m2])
        first = next(m for m in reply["markets"] if m["market"] == m1)
        assert set(first) == ENTRY_KEYS
        assert first == {"market": m1, "event": event, "name": "Match Odds",
                         "type": "exchange", "currency": "BDT", "status": "OPEN",
                         "in_play": False, "bet_delay_ms": 0, "start_ts": None,
                         "traded": "12.50",
                         "selections": [{"id": "s1", "name": "S1", "traded": "12.50",
                                         "removed": None},
                                        {"id": "s2", "name": "S2", "traded": "0.00",
                                         "removed": None}]}
        assert next(m for m in reply["markets"] if m["market"] == m2)["traded"] == "0.00"
    ws(scenario)


def test_catalogue_filters_by_status_and_in_play(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        event, (live, quiet, later) = await _event_markets(h, 3)
        await trader.ok({"op": "market.status", "market": live, "in_play": True})
        await trader.ok({"op": "market.status", "market": quiet, "status": "suspended"})
        await trader.ok({"op": "market.create", "market": (new := unique("m")), "event": event,
                         "name": "Next Goal", "selections": [{"id": "a", "name": "A"}]})
        alice = await h.bettor("alice")

        async def ids(**filters) -> list[str]:
            reply = await alice.ok({"op": "catalogue", "event": event, **filters}, "catalogue")
            return [m["market"] for m in reply["markets"]]

        assert await ids(status=["open"]) == h.listing_order([live, later])
        assert await ids(status=["suspended", "inactive"]) == h.listing_order([quiet, new])
        assert await ids(in_play=True) == [live]
        assert await ids(status=["open"], in_play=False) == [later]
        assert await ids(status=["settled"]) == []
    ws(scenario)


def test_catalogue_pages_with_the_next_cursor_until_it_is_null(ws):
    async def scenario(h: Harness):
        event, markets = await _event_markets(h, 5, status=None)
        alice = await h.bettor("alice")
        assert await _walk(alice, {"op": "catalogue", "event": event, "limit": 2}) == \
            h.listing_order(markets)
        whole = await alice.ok({"op": "catalogue", "event": event, "limit": 5}, "catalogue")
        assert len(whole["markets"]) == 5 and whole["next"] is None
    ws(scenario)


def test_pages_by_start_time_walk_every_market_once_in_start_order(ws):
    """Ties in start time keep creation order; markets without one come last. With several
    shards the markets alternate between them and the order is one over all of them (ties by
    shard first): the pages merge every shard's, and a cursor on one shard carries on in the
    others."""
    async def scenario(h: Harness):
        trader = await h.trader()
        event = unique("e")
        starts = [1_767_232_800_000, 1_767_225_600_000, None, 1_767_225_600_000,
                  1_767_240_000_000, None, 1_767_232_800_000]
        markets = [await h.market(trader, event=event, status=None,
                                  market=h.market_id(i % h.shards.count),
                                  **({} if start is None else {"start_ts": start}))
                   for i, start in enumerate(starts)]
        order = {m: i for i, m in enumerate(markets)}  # creation order
        expected = sorted(markets, key=lambda m: (starts[order[m]] is None,
                                                  starts[order[m]] or 0,
                                                  h.shards.of_market(m), order[m]))
        alice = await h.bettor("alice")
        assert await _walk(alice, {"op": "catalogue", "event": event, "sort": "start",
                                   "limit": 2}) == expected
        timed = await alice.ok({"op": "catalogue", "event": event, "sort": "start",
                                "start_from": 1_767_225_600_001}, "catalogue")
        assert [m["market"] for m in timed["markets"]] == [
            m for m in expected if (starts[order[m]] or 0) >= 1_767_225_600_001]
    ws(scenario)


def test_bad_catalogue_requests_get_stable_codes(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        await alice.error({"op": "catalogue", "after": unique("m")}, "UNKNOWN_MARKET")
        await alice.error({"op": "catalogue", "limit": 0}, "BAD_REQUEST")
        await alice.error({"op": "catalogue", "limit": 201}, "BAD_REQUEST")
        await alice.error({"op": "catalogue", "status": ["running"]}, "BAD_REQUEST")
        await alice.error({"op": "catalogue", "status": "open"}, "BAD_REQUEST")
        await alice.error({"op": "catalogue", "in_play": "yes"}, "BAD_REQUEST")
        await alice.error({"op": "subscribe", "channel": "markets"}, "BAD_REQUEST")
    ws(scenario)


def test_the_catalogue_channel_pushes_markets_created_and_status_changes(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        alice = await h.bettor("alice")
        reply = await alice.ok({"op": "subscribe", "id": "cat", "channel": "catalogue"})
        assert reply == {"op": "subscribed", "id": "cat", "channel": "catalogue"}
        event = unique("e")
        market = await h.market(trader, event=event, status=None)

        def about(status):
            return lambda f: any(m["market"] == market and m["status"] == status
                                 for m in f["markets"])

        created = await alice.take("catalogue", about("INACTIVE"))
        assert "id" not in created
        (entry,) = [m for m in created["markets"] if m["market"] == market]
        assert entry["event"] == event and entry["selections"][0]["name"] == "S1"
        await trader.ok({"op": "market.status", "market": market, "status": "open"})
        await alice.take("catalogue", about("OPEN"))
        await trader.ok({"op": "market.status", "market": market, "in_play": True})
        live = await alice.take("catalogue", about("OPEN"))
        assert [m["in_play"] for m in live["markets"] if m["market"] == market] == [True]

        await alice.ok({"op": "unsubscribe", "channel": "catalogue"}, "unsubscribed")
        await trader.ok({"op": "market.status", "market": market, "status": "suspended"})
        assert await alice.settle(0.3, "catalogue") == []
    ws(scenario)

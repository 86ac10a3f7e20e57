"""Server-side bet slips over the WebSocket (PROTOCOL.md "Bettor ops": slip.set, slip.place
and the `slip` pushes)."""

import pytest

pytest.register_assert_rewrite("tests.ws_fixtures")

from tests.ws_fixtures import Harness, place, placed  # noqa: E402

pytest_plugins = ["tests.ws_fixtures"]

LEG_FIELDS = {"market", "selection", "side", "stake", "price", "available", "potential_return",
              "status"}


def _leg(market: str, selection: str = "s1", side: str = "back", stake: str = "10.00") -> dict:
    return {"market": market, "selection": selection, "side": side, "stake": stake}


async def _book(h: Harness, market: str, *levels: tuple[str, str], side: str = "lay"):
    """A maker resting `levels` (price, size); returns the maker's client."""
    maker = await h.bettor("maker", "10000.00")
    for price, size in levels:
        await placed(maker, market, side=side, price=price, size=size, persistence="persist")
    return maker


def test_slip_set_prices_each_leg(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "6.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice")
        reply = await alice.rpc({"op": "slip.set", "id": "s", "legs": [
            _leg(market, stake="5.00"), _leg(market, stake="10.00")]})
        assert reply["op"] == "slip" and reply["id"] == "s"
        first, second = reply["legs"]
        assert set(first) == set(second) == LEG_FIELDS
        # 5.00 fits at 2.50; 10.00 needs the 2.40 level too
        assert first == {"market": market, "selection": "s1", "side": "back", "stake": "5.00",
                         "price": "2.50", "available": "6.00", "potential_return": "12.50",
                         "status": "OK"}
        assert second == {"market": market, "selection": "s1", "side": "back",
                          "stake": "10.00", "price": "2.40", "available": "106.00",
                          "potential_return": "24.00", "status": "OK"}
    ws(scenario)


def test_slip_lay_leg_is_priced_from_resting_backs(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("3.00", "20.00"), side="back")
        alice = await h.bettor("alice")
        reply = await alice.ok({"op": "slip.set", "legs": [_leg(market, side="lay")]}, "slip")
        leg = reply["legs"][0]
        assert (leg["price"], leg["available"], leg["status"]) == ("3.00", "20.00", "OK")
    ws(scenario)


def test_slip_leg_without_enough_liquidity_is_insufficient_liquidity(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "3.00"))
        alice = await h.bettor("alice")
        reply = await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]},
                               "slip")
        leg = reply["legs"][0]
        assert (leg["status"], leg["price"], leg["available"], leg["potential_return"]) == (
            "INSUFFICIENT_LIQUIDITY", None, "3.00", None)
    ws(scenario)


def test_slip_leg_on_an_unknown_market_is_closed(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        reply = await alice.ok({"op": "slip.set", "legs": [_leg("no-such-market")]}, "slip")
        assert reply["legs"][0]["status"] == "CLOSED"
    ws(scenario)


def test_slip_push_price_changed_when_the_price_moves(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "10.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        reply = await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        assert reply["legs"][0]["price"] == "2.50"
        await placed(bob, market, side="back", price="2.50", size="3.00")  # takes part of 2.50
        push = await alice.take("slip")
        assert set(push) == {"op", "legs"}
        leg = push["legs"][0]
        assert (leg["status"], leg["price"], leg["available"], leg["potential_return"]) == (
            "PRICE_CHANGED", "2.40", "107.00", "24.00")
    ws(scenario)


def test_slip_push_ok_again_when_the_price_holds(ws):
    async def scenario(h: Harness):
        market = await h.market()
        maker = await _book(h, market, ("2.50", "10.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice")
        bob = await h.bettor("bob")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        await placed(bob, market, side="back", price="2.50", size="3.00")
        assert (await alice.take("slip"))["legs"][0]["status"] == "PRICE_CHANGED"
        # more at 2.40: the price stays 2.40, available grows, status back to OK
        await placed(maker, market, side="lay", price="2.40", size="5.00")
        leg = (await alice.take("slip"))["legs"][0]
        assert (leg["status"], leg["price"], leg["available"]) == ("OK", "2.40", "112.00")
    ws(scenario)


def test_slip_push_suspended_when_the_market_suspends(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await _book(h, market, ("2.50", "100.00"))
        alice = await h.bettor("alice")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        await trader.ok({"op": "market.status", "market": market, "status": "suspended"})
        leg = (await alice.take("slip"))["legs"][0]
        assert leg["status"] == "SUSPENDED"
        await trader.ok({"op": "market.status", "market": market, "status": "open"})
        leg = (await alice.take("slip"))["legs"][0]
        assert leg["status"] == "OK" and leg["price"] == "2.50"
    ws(scenario)


def test_slip_push_insufficient_liquidity_when_the_book_empties(ws):
    async def scenario(h: Harness):
        market = await h.market()
        maker = await _book(h, market, ("2.50", "20.00"))
        alice = await h.bettor("alice")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        await maker.ok({"op": "cancel_all", "market": market}, "cancelled_all")
        leg = (await alice.take("slip"))["legs"][0]
        assert (leg["status"], leg["price"], leg["available"]) == (
            "INSUFFICIENT_LIQUIDITY", None, "0.00")
    ws(scenario)


def test_slip_push_closed_when_the_market_closes(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        market = await h.market(trader)
        await _book(h, market, ("2.50", "20.00"))
        alice = await h.bettor("alice")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        await trader.ok({"op": "market.status", "market": market, "status": "closed"})
        leg = (await alice.take("slip"))["legs"][0]
        assert leg["status"] == "CLOSED"
    ws(scenario)


def test_slip_changes_on_unrelated_markets_push_nothing(ws):
    async def scenario(h: Harness):
        market, other = await h.market(), await h.market()
        await _book(h, market, ("2.50", "20.00"))
        maker = await _book(h, other, ("2.50", "20.00"))
        alice = await h.bettor("alice")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
        await placed(maker, other, side="lay", price="2.60", size="5.00")
        assert await alice.settle(0.3, "slip") == []
    ws(scenario)


def test_slip_place_exact_places_fok_at_the_shown_price(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "12.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice", "100.00")
        await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]}, "slip")
        reply = await alice.rpc({"op": "slip.place", "id": "sp", "accept": "exact"})
        assert reply["op"] == "slip.placed" and reply["id"] == "sp"
        (result,) = reply["results"]
        assert result["leg"] == 0 and set(result) == {"leg", "order"}
        order = result["order"]
        assert (order["price"], order["matched"], order["remaining"], order["status"]) == (
            "2.50", "10.00", "0.00", "EXECUTION_COMPLETE")
        assert order["avg_price_matched"] == "2.50"
    ws(scenario)


def test_slip_place_exact_refuses_a_stake_that_would_match_at_more_than_the_shown_price(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "6.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice", "100.00")
        shown = await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]}, "slip")
        assert shown["legs"][0]["price"] == "2.40"  # the price that fills the whole stake
        (result,) = (await alice.ok({"op": "slip.place", "accept": "exact"},
                                    "slip.placed"))["results"]
        # 6 of it would match at 2.50: not the price shown
        assert result["error"]["code"] == "PRICE_CHANGED", result
        assert (await alice.ok({"op": "orders"}, "orders"))["orders"] == []
    ws(scenario)


def test_slip_place_exact_refuses_a_better_price_than_shown(ws):
    async def scenario(h: Harness):
        market = await h.market()
        maker = await _book(h, market, ("2.50", "100.00"))
        alice = await h.bettor("alice", "100.00")
        shown = await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]}, "slip")
        assert shown["legs"][0]["price"] == "2.50"
        # a better offer too small for the stake: the whole-stake price (and so the slip) stays
        # 2.50, but the best price available is now 2.60
        await placed(maker, market, side="lay", price="2.60", size="4.00", persistence="persist")
        (result,) = (await alice.ok({"op": "slip.place", "accept": "exact"},
                                    "slip.placed"))["results"]
        assert result["error"]["code"] == "PRICE_CHANGED", result
        assert "2.50" in result["error"]["message"]
        # `better` is the mode that takes the improvement
        (result,) = (await alice.ok({"op": "slip.place", "accept": "better"},
                                    "slip.placed"))["results"]
        order = result["order"]
        assert (order["matched"], order["avg_price_matched"]) == ("10.00", "2.54")
    ws(scenario)


async def _place_after_the_price_moved(h: Harness, accept: str) -> dict | None:
    """Show a slip leg at 2.50, then, pipelined on the same connection, move the price to 2.40
    and send slip.place: the result, or None when a slip push showing the new price got in
    between (the server's conflated slip update raced the request; then the server placed,
    or refused, against the price it had pushed, which this checks, and the caller tries
    again)."""
    market = await h.market()
    await _book(h, market, ("2.50", "10.00"), ("2.40", "100.00"))
    alice = await h.bettor("alice", "100.00")
    shown = await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")
    assert shown["legs"][0]["price"] == "2.50"
    moved = await alice.send(place(market, price="2.50", size="5.00"))  # 5 left at 2.50
    attempt = await alice.send({"op": "slip.place", "accept": accept})
    assert (await alice.reply(moved))["op"] == "placed"
    reply = await alice.reply(attempt)
    (result,) = reply["results"]
    if "error" in result:
        # refused against 2.40: the slip push had already moved the shown price (at 2.40 the
        # best level, 2.50, is still not the shown one, so `exact` refuses that too)
        return None if result["error"]["message"].startswith("shown 2.40") else result
    before = alice.frames[:alice.frames.index(reply)]
    assert any(f["op"] == "slip" and f["legs"][0]["price"] == "2.40" for f in before), (
        f"placed at a price never shown: {result}")
    return None


async def _without_the_race(h: Harness, accept: str, attempts: int = 6) -> dict:
    for _ in range(attempts):
        result = await _place_after_the_price_moved(h, accept)
        if result is not None:
            return result
    raise AssertionError(f"a slip push raced slip.place {attempts} times in a row")


def test_slip_place_exact_refuses_a_changed_price_with_price_changed(ws):
    async def scenario(h: Harness):
        result = await _without_the_race(h, "exact")
        assert result["leg"] == 0 and result["error"]["code"] == "PRICE_CHANGED"
        assert "2.50" in result["error"]["message"] and "2.40" in result["error"]["message"]
    ws(scenario)


def test_slip_place_better_refuses_a_worse_price(ws):
    async def scenario(h: Harness):
        result = await _without_the_race(h, "better")
        assert result["error"]["code"] == "FOK_NOT_FILLED"  # only 5.00 left at 2.50 or better
    ws(scenario)


def test_slip_place_better_takes_the_shown_price_or_better(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "6.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice", "100.00")
        await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]}, "slip")
        (result,) = (await alice.ok({"op": "slip.place", "accept": "better"},
                                    "slip.placed"))["results"]
        order = result["order"]
        assert (order["price"], order["matched"]) == ("2.40", "10.00")
        assert order["avg_price_matched"] == "2.46"
    ws(scenario)


def test_slip_place_any_takes_the_best_available_even_if_worse(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.50", "10.00"), ("2.40", "100.00"))
        alice = await h.bettor("alice", "100.00")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")  # shown 2.50
        moved = await alice.send(place(market, price="2.50", size="5.00"))
        attempt = await alice.send({"op": "slip.place", "accept": "any"})
        assert (await alice.reply(moved))["op"] == "placed"
        (result,) = (await alice.reply(attempt))["results"]
        order = result["order"]
        assert (order["matched"], order["avg_price_matched"]) == ("10.00", "2.45")
    ws(scenario)


def test_slip_place_reports_each_leg_separately(ws):
    async def scenario(h: Harness):
        trader = await h.trader()
        good, shut = await h.market(trader), await h.market(trader)
        await _book(h, good, ("2.00", "100.00"))
        await _book(h, shut, ("2.00", "100.00"))
        alice = await h.bettor("alice", "100.00")
        await alice.ok({"op": "slip.set", "legs": [_leg(good), _leg(shut), _leg(good, "s2")]},
                       "slip")
        await trader.ok({"op": "market.status", "market": shut, "status": "suspended"})
        await alice.take("slip")
        reply = await alice.ok({"op": "slip.place", "accept": "any"}, "slip.placed")
        results = reply["results"]
        assert [r["leg"] for r in results] == [0, 1, 2]
        assert results[0]["order"]["matched"] == "10.00"
        assert results[1]["error"]["code"] == "MARKET_SUSPENDED"
        assert results[2]["error"]["code"] == "FOK_NOT_FILLED"  # nothing on s2
    ws(scenario)


def test_slip_place_without_a_slip_is_bad_request(ws):
    async def scenario(h: Harness):
        alice = await h.bettor("alice")
        await alice.error({"op": "slip.place", "accept": "any"}, "BAD_REQUEST")
    ws(scenario)


def test_slip_place_exact_with_no_price_shown_is_refused(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await alice.ok({"op": "slip.set", "legs": [_leg(market)]}, "slip")  # empty book
        (result,) = (await alice.ok({"op": "slip.place", "accept": "exact"},
                                    "slip.placed"))["results"]
        assert result["error"]["code"] == "FOK_NOT_FILLED"
    ws(scenario)


def test_slip_place_without_funds_is_insufficient_funds_per_leg(ws):
    async def scenario(h: Harness):
        market = await h.market()
        await _book(h, market, ("2.00", "100.00"))
        alice = await h.bettor("alice", "5.00")
        await alice.ok({"op": "slip.set", "legs": [_leg(market, stake="10.00")]}, "slip")
        (result,) = (await alice.ok({"op": "slip.place", "accept": "exact"},
                                    "slip.placed"))["results"]
        assert result["error"]["code"] == "INSUFFICIENT_FUNDS"
    ws(scenario)


def test_slip_with_too_many_legs_is_refused(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await alice.error({"op": "slip.set", "legs": [_leg(market)] * 21}, "BAD_REQUEST")
    ws(scenario)


def test_slip_stake_with_three_decimals_is_invalid_size(ws):
    async def scenario(h: Harness):
        market = await h.market()
        alice = await h.bettor("alice")
        await alice.error({"op": "slip.set", "legs": [_leg(market, stake="1.005")]},
                          "INVALID_SIZE")
    ws(scenario)
